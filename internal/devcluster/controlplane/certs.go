package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tidalscale/tidal/internal/pki"
)

// certValidity is how long every generated certificate is valid. The dev cluster is short-lived, but a kept
// --data-dir may be inspected later, so a year avoids confusing expiry errors.
const certValidity = 365 * 24 * time.Hour

// Identities the control plane components authenticate as. They match the users the RBAC bootstrap policy binds
// (system:kube-controller-manager, system:kube-scheduler) and system:masters for the admin.
const (
	adminUser            = "tidal-dev-admin"
	adminGroup           = "system:masters"
	controllerManager    = "system:kube-controller-manager"
	schedulerUser        = "system:kube-scheduler"
	frontProxyClientCN   = "front-proxy-client"
	clusterName          = "tidal-dev"
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
)

// pkiFiles are the paths of every certificate and key the control plane uses, all under one directory.
type pkiFiles struct {
	CACert, CAKey                              string
	ServingCert, ServingKey                    string
	FrontProxyCACert, FrontProxyCAKey          string
	FrontProxyClientCert, FrontProxyClientKey  string
	ServiceAccountKey, ServiceAccountPublicKey string
	admin, controllerManager, scheduler        clientCredentials
}

// clientCredentials is a PEM client certificate and key, kept in memory for embedding into kubeconfigs.
type clientCredentials struct {
	CertPEM, KeyPEM []byte
}

// generatePKI writes the PKI into dir: a cluster CA that signs the apiserver serving certificate and the
// client certificates, a separate front-proxy CA for the aggregation layer (requestheader authentication of the
// apiserver towards aggregated API servers), and the service-account signing key pair. The CAs and the
// service-account key of a kept data dir are reused; the leaf certificates are issued anew on every start.
func generatePKI(dir string, now time.Time) (*pkiFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki dir %q: %w", dir, err)
	}
	f := &pkiFiles{
		CACert:                  filepath.Join(dir, "ca.crt"),
		CAKey:                   filepath.Join(dir, "ca.key"),
		ServingCert:             filepath.Join(dir, "apiserver.crt"),
		ServingKey:              filepath.Join(dir, "apiserver.key"),
		FrontProxyCACert:        filepath.Join(dir, "front-proxy-ca.crt"),
		FrontProxyCAKey:         filepath.Join(dir, "front-proxy-ca.key"),
		FrontProxyClientCert:    filepath.Join(dir, "front-proxy-client.crt"),
		FrontProxyClientKey:     filepath.Join(dir, "front-proxy-client.key"),
		ServiceAccountKey:       filepath.Join(dir, "sa.key"),
		ServiceAccountPublicKey: filepath.Join(dir, "sa.pub"),
	}

	ca, err := keptOrNewCA(f.CACert, f.CAKey, "tidal-dev-ca", now)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}

	serving, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver",
		Hosts: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
			"127.0.0.1", "::1", "10.96.0.1"},
		Usage: x509.ExtKeyUsageServerAuth, Now: now, Lifetime: certValidity,
	})
	if err != nil {
		return nil, fmt.Errorf("apiserver serving certificate: %w", err)
	}
	if err := writeCertAndKey(f.ServingCert, f.ServingKey, serving.CertPEM, serving.KeyPEM); err != nil {
		return nil, err
	}

	clients := []struct {
		into   *clientCredentials
		cn     string
		groups []string
	}{
		{&f.admin, adminUser, []string{adminGroup}},
		{&f.controllerManager, controllerManager, nil},
		{&f.scheduler, schedulerUser, nil},
	}
	for _, c := range clients {
		leaf, err := ca.Issue(pki.Request{CommonName: c.cn, Organizations: c.groups, Usage: x509.ExtKeyUsageClientAuth, Now: now, Lifetime: certValidity})
		if err != nil {
			return nil, fmt.Errorf("client certificate %q: %w", c.cn, err)
		}
		*c.into = clientCredentials{CertPEM: leaf.CertPEM, KeyPEM: leaf.KeyPEM}
	}

	frontProxyCA, err := keptOrNewCA(f.FrontProxyCACert, f.FrontProxyCAKey, "tidal-dev-front-proxy-ca", now)
	if err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	fpClient, err := frontProxyCA.Issue(pki.Request{CommonName: frontProxyClientCN, Usage: x509.ExtKeyUsageClientAuth, Now: now, Lifetime: certValidity})
	if err != nil {
		return nil, fmt.Errorf("front-proxy client certificate: %w", err)
	}
	if err := writeCertAndKey(f.FrontProxyClientCert, f.FrontProxyClientKey, fpClient.CertPEM, fpClient.KeyPEM); err != nil {
		return nil, err
	}

	saKey, err := keptOrNewKey(f.ServiceAccountKey)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	saKeyPEM, err := pki.EncodeKey(saKey)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, fmt.Errorf("service-account public key: %w", err)
	}
	if err := os.WriteFile(f.ServiceAccountKey, saKeyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write %q: %w", f.ServiceAccountKey, err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := os.WriteFile(f.ServiceAccountPublicKey, pubPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write %q: %w", f.ServiceAccountPublicKey, err)
	}
	return f, nil
}

// keptOrNewCA is the CA a kept data dir already holds (so a restarted cluster keeps its kubeconfigs and the
// trust of every client), or a new one written there when there is none or it no longer parses or is valid.
func keptOrNewCA(certPath, keyPath, name string, now time.Time) (*pki.CA, error) {
	certPEM, errC := os.ReadFile(certPath)
	keyPEM, errK := os.ReadFile(keyPath)
	if errC == nil && errK == nil {
		if ca, err := pki.ParseCA(certPEM, keyPEM); err == nil && now.Add(24*time.Hour).Before(ca.Cert.NotAfter) {
			return ca, nil
		}
	}
	ca, err := pki.NewCA(pki.Request{CommonName: name, Now: now, Lifetime: certValidity})
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	return ca, writeCertAndKey(certPath, keyPath, ca.CertPEM, caKeyPEM)
}

// keptOrNewKey is the EC key at path (the service-account signing key of a kept data dir: tokens issued before a
// restart stay valid), or a new one.
func keptOrNewKey(path string) (*ecdsa.PrivateKey, error) {
	if raw, err := os.ReadFile(path); err == nil {
		if b, _ := pem.Decode(raw); b != nil {
			if key, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
				return key, nil
			}
		}
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func writeCertAndKey(certPath, keyPath string, certPEM, keyPEM []byte) error {
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("write %q: %w", certPath, err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write %q: %w", keyPath, err)
	}
	return nil
}
