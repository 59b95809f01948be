package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
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

// signer is a CA certificate with its key.
type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
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

	ca, err := newCA("tidal-dev-ca", now)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	if err := writeCertAndKey(f.CACert, f.CAKey, ca.cert.Raw, ca.key); err != nil {
		return nil, err
	}

	serving, servingKey, err := ca.issue(certRequest{
		commonName: "kube-apiserver",
		dnsNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 96, 0, 1)},
		usage:      x509.ExtKeyUsageServerAuth,
	}, now)
	if err != nil {
		return nil, fmt.Errorf("apiserver serving certificate: %w", err)
	}
	if err := writeCertAndKey(f.ServingCert, f.ServingKey, serving, servingKey); err != nil {
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
		der, key, err := ca.issue(certRequest{commonName: c.cn, organizations: c.groups, usage: x509.ExtKeyUsageClientAuth}, now)
		if err != nil {
			return nil, fmt.Errorf("client certificate %q: %w", c.cn, err)
		}
		keyPEM, err := encodeKey(key)
		if err != nil {
			return nil, fmt.Errorf("client certificate %q: %w", c.cn, err)
		}
		*c.into = clientCredentials{CertPEM: encodeCert(der), KeyPEM: keyPEM}
	}

	frontProxyCA, err := newCA("tidal-dev-front-proxy-ca", now)
	if err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	if err := os.WriteFile(f.FrontProxyCACert, encodeCert(frontProxyCA.cert.Raw), 0o644); err != nil {
		return nil, fmt.Errorf("write %q: %w", f.FrontProxyCACert, err)
	}
	fpClient, fpKey, err := frontProxyCA.issue(certRequest{commonName: frontProxyClientCN, usage: x509.ExtKeyUsageClientAuth}, now)
	if err != nil {
		return nil, fmt.Errorf("front-proxy client certificate: %w", err)
	}
	if err := writeCertAndKey(f.FrontProxyClientCert, f.FrontProxyClientKey, fpClient, fpKey); err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	saKeyPEM, err := encodeKey(saKey)
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

// certRequest describes a leaf certificate to issue.
type certRequest struct {
	commonName    string
	organizations []string
	dnsNames      []string
	ips           []net.IP
	usage         x509.ExtKeyUsage
}

func newCA(commonName string, now time.Time) (*signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &signer{cert: cert, key: key}, nil
}

func (s *signer) issue(req certRequest, now time.Time) ([]byte, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.commonName, Organization: req.organizations},
		DNSNames:     req.dnsNames,
		IPAddresses:  req.ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{req.usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.cert, key.Public(), s.key)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	der, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func writeCertAndKey(certPath, keyPath string, der []byte, key crypto.Signer) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("encode %q: %w", keyPath, err)
	}
	if err := os.WriteFile(certPath, encodeCert(der), 0o644); err != nil {
		return fmt.Errorf("write %q: %w", certPath, err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write %q: %w", keyPath, err)
	}
	return nil
}
