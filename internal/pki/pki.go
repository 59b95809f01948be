// Package pki is the one certificate issuer of Tidal: ECDSA P-256 certificate authorities and the leaf
// certificates they sign (serving, client), self-signed serving certificates, and their PEM forms. The operator's
// webhook CA, the virtual node's kubelet API certificate, the dev cluster's control-plane PKI and the tests'
// throw-away PKI (internal/testpki) all issue through it.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// Request describes a certificate to issue. Hosts are DNS names or IP addresses (put in the SANs); Usage is the
// extended key usage of a leaf (ignored for a CA). NotBefore is an hour before Now, for clock skew.
type Request struct {
	CommonName    string
	Organizations []string
	Hosts         []string
	Usage         x509.ExtKeyUsage
	Now           time.Time
	Lifetime      time.Duration
}

// Leaf is an issued certificate and its key.
type Leaf struct {
	DER     []byte
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// TLS is the leaf as a tls.Certificate (with Leaf set).
func (l *Leaf) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.DER}, PrivateKey: l.Key, Leaf: l.Cert}
}

// NewCA creates a self-signed CA valid from an hour before req.Now for req.Lifetime.
func NewCA(req Request) (*CA, error) {
	key, tmpl, err := template(req)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA %q: %w", req.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCert(der)}, nil
}

// ParseCA reads a CA from its PEM certificate and EC key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil {
		return nil, errors.New("certificate: not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("key: not PEM")
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCert(cert.Raw)}, nil
}

// KeyPEM is the CA's key in PEM.
func (ca *CA) KeyPEM() ([]byte, error) { return EncodeKey(ca.Key) }

// Pool is a certificate pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a leaf certificate for req.
func (ca *CA) Issue(req Request) (*Leaf, error) {
	return issue(req, ca.Cert, ca.Key)
}

// SelfSigned makes a leaf certificate signed by its own key (a serving certificate nobody distributes a CA for).
func SelfSigned(req Request) (*Leaf, error) {
	return issue(req, nil, nil)
}

func issue(req Request, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*Leaf, error) {
	key, tmpl, err := template(req)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{req.Usage}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, fmt.Errorf("certificate %q: %w", req.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Leaf{DER: der, Cert: cert, Key: key, CertPEM: EncodeCert(der), KeyPEM: keyPEM}, nil
}

func template(req Request) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	if req.Lifetime <= 0 {
		return nil, nil, fmt.Errorf("certificate %q: lifetime must be positive", req.CommonName)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organizations},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(req.Lifetime),
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return key, tmpl, nil
}

// EncodeCert is a DER certificate in PEM.
func EncodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// EncodeKey is an EC private key in PEM ("EC PRIVATE KEY").
func EncodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}
