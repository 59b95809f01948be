package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/internal/pki"
)

// Certificates: the operator signs its own serving certificate at start-up with a CA kept in a Secret
// (tidal-webhook-ca in the operator's namespace), so every replica serves a certificate the same caBundle
// trusts. The serving certificate is renewed when a third of its lifetime is left; the CA lives ten years.
const (
	caSecretName = "tidal-webhook-ca"
	caLifetime   = 10 * 365 * 24 * time.Hour
	certLifetime = 90 * 24 * time.Hour
)

// CA is the webhook's certificate authority.
type CA = pki.CA

// LoadOrCreateCA reads the CA Secret in namespace or creates it. Two replicas racing both end up with the
// Secret that won the create.
func LoadOrCreateCA(ctx context.Context, kube kubernetes.Interface, namespace string) (*CA, error) {
	secrets := kube.CoreV1().Secrets(namespace)
	for attempt := 0; attempt < 3; attempt++ {
		s, err := secrets.Get(ctx, caSecretName, metav1.GetOptions{})
		if err == nil {
			ca, err := pki.ParseCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
			if err != nil {
				return nil, fmt.Errorf("secret %s: %w", caSecretName, err)
			}
			return ca, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get secret %s/%s: %w", namespace, caSecretName, err)
		}
		ca, err := pki.NewCA(pki.Request{CommonName: "tidal-webhook-ca", Lifetime: caLifetime})
		if err != nil {
			return nil, err
		}
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: caSecretName, Labels: map[string]string{"app.kubernetes.io/managed-by": "tidal-operator"}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: ca.CertPEM, corev1.TLSPrivateKeyKey: keyPEM},
		}, metav1.CreateOptions{})
		if err == nil {
			return ca, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create secret %s/%s: %w", namespace, caSecretName, err)
		}
	}
	return nil, errors.New("webhook CA secret keeps changing")
}

// issue signs a serving certificate for hosts (DNS names or IPs).
func issue(ca *CA, hosts []string, now time.Time) (*tls.Certificate, error) {
	leaf, err := ca.Issue(pki.Request{CommonName: hosts[0], Hosts: hosts, Usage: x509.ExtKeyUsageServerAuth, Now: now, Lifetime: certLifetime})
	if err != nil {
		return nil, err
	}
	c := leaf.TLS()
	return &c, nil
}

// Rotator serves the current certificate and renews it before it expires.
type Rotator struct {
	ca    *CA
	hosts []string
	cur   atomic.Pointer[tls.Certificate]
}

// NewRotator issues the first certificate.
func NewRotator(ca *CA, hosts []string) (*Rotator, error) {
	if len(hosts) == 0 {
		return nil, errors.New("webhook: at least one host name for the serving certificate is required")
	}
	r := &Rotator{ca: ca, hosts: hosts}
	c, err := issue(ca, hosts, time.Now())
	if err != nil {
		return nil, err
	}
	r.cur.Store(c)
	return r, nil
}

// GetCertificate is for tls.Config; it renews when a third of the lifetime is left.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := r.cur.Load()
	if time.Until(c.Leaf.NotAfter) < certLifetime/3 {
		if fresh, err := issue(r.ca, r.hosts, time.Now()); err == nil {
			r.cur.Store(fresh)
			c = fresh
		}
	}
	return c, nil
}
