package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// TestChain issues a CA and a serving and a client certificate and checks each verifies for its use, host and
// time; ParseCA reads back what KeyPEM and CertPEM wrote.
func TestChain(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	ca, err := NewCA(Request{CommonName: "test-ca", Now: now, Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.NotBefore != now.Add(-time.Hour) || ca.Cert.NotAfter != now.Add(24*time.Hour) {
		t.Fatalf("CA certificate: IsCA %v, valid %s – %s", ca.Cert.IsCA, ca.Cert.NotBefore, ca.Cert.NotAfter)
	}
	server, err := ca.Issue(Request{CommonName: "svc", Hosts: []string{"svc.ns.svc", "127.0.0.1"}, Usage: x509.ExtKeyUsageServerAuth, Now: now, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(server.Cert.DNSNames) != 1 || len(server.Cert.IPAddresses) != 1 || !server.Cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Fatalf("SANs: %v %v", server.Cert.DNSNames, server.Cert.IPAddresses)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, DNSName: "svc.ns.svc", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := server.Cert.Verify(opts); err != nil {
		t.Fatalf("serving certificate does not verify: %v", err)
	}
	opts.CurrentTime = now.Add(2 * time.Hour)
	if _, err := server.Cert.Verify(opts); err == nil {
		t.Fatal("serving certificate verifies after its lifetime")
	}
	client, err := ca.Issue(Request{CommonName: "admin", Organizations: []string{"system:masters"}, Usage: x509.ExtKeyUsageClientAuth, Now: now, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate does not verify: %v", err)
	}
	if client.Cert.Subject.Organization[0] != "system:masters" {
		t.Fatalf("organization = %v", client.Cert.Subject.Organization)
	}
	if _, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM); err != nil {
		t.Fatalf("PEM pair: %v", err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.CertPEM, keyPEM)
	if err != nil || !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Fatalf("ParseCA round trip: %v", err)
	}
	if _, err := ParseCA([]byte("x"), keyPEM); err == nil {
		t.Fatal("ParseCA accepted a certificate that is not PEM")
	}
}

func TestSelfSignedAndBadLifetime(t *testing.T) {
	leaf, err := SelfSigned(Request{CommonName: "node", Hosts: []string{"node", "10.0.0.1"}, Usage: x509.ExtKeyUsageServerAuth, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf.Cert)
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "10.0.0.1"}); err != nil {
		t.Fatalf("self-signed certificate does not verify against itself: %v", err)
	}
	if c := leaf.TLS(); c.Leaf != leaf.Cert || len(c.Certificate) != 1 {
		t.Fatalf("TLS() = %+v", c)
	}
	if _, err := NewCA(Request{CommonName: "x"}); err == nil {
		t.Fatal("a CA without a lifetime was issued")
	}
}
