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
	FrontProxyCACert                           string
	FrontProxyClientCert, FrontProxyClientKey  string
	ServiceAccountKey, ServiceAccountPublicKey string
	admin, controllerManager, scheduler        clientCredentials
}

// clientCredentials is a PEM client certificate and key, kept in memory for embedding into kubeconfigs.
type clientCredentials struct {
	CertPEM, KeyPEM []byte
}

// generatePKI writes a fresh PKI into dir: a cluster CA that signs the apiserver serving certificate and the
// client certificates, a separate front-proxy CA for the aggregation layer (requestheader authentication of the
// apiserver towards aggregated API servers), and the service-account signing key pair.
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
		FrontProxyClientCert:    filepath.Join(dir, "front-proxy-client.crt"),
		FrontProxyClientKey:     filepath.Join(dir, "front-proxy-client.key"),
		ServiceAccountKey:       filepath.Join(dir, "sa.key"),
		ServiceAccountPublicKey: filepath.Join(dir, "sa.pub"),
	}

	ca, err := pki.NewCA(pki.Request{CommonName: "tidal-dev-ca", Now: now, Lifetime: certValidity})
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	caKeyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	if err := writeCertAndKey(f.CACert, f.CAKey, ca.CertPEM, caKeyPEM); err != nil {
		return nil, err
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

	frontProxyCA, err := pki.NewCA(pki.Request{CommonName: "tidal-dev-front-proxy-ca", Now: now, Lifetime: certValidity})
	if err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	if err := os.WriteFile(f.FrontProxyCACert, frontProxyCA.CertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write %q: %w", f.FrontProxyCACert, err)
	}
	fpClient, err := frontProxyCA.Issue(pki.Request{CommonName: frontProxyClientCN, Usage: x509.ExtKeyUsageClientAuth, Now: now, Lifetime: certValidity})
	if err != nil {
		return nil, fmt.Errorf("front-proxy client certificate: %w", err)
	}
	if err := writeCertAndKey(f.FrontProxyClientCert, f.FrontProxyClientKey, fpClient.CertPEM, fpClient.KeyPEM); err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
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

func writeCertAndKey(certPath, keyPath string, certPEM, keyPEM []byte) error {
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("write %q: %w", certPath, err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write %q: %w", keyPath, err)
	}
	return nil
}
