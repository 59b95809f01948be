package stream

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tidalscale/tidal/metricsadapter/testpki"
)

// Rotated files are picked up on the next check; a broken rotation keeps the last good certificate.
func TestTLSFilesReloaded(t *testing.T) {
	ca := testpki.NewCA(t, "rotate")
	first, second := ca.Server(t, "one", "localhost"), ca.Server(t, "two", "localhost")
	dir := t.TempDir()
	files := TLSFiles{CertFile: dir + "/tls.crt", KeyFile: dir + "/tls.key", CAFile: ca.CertFile}
	install := func(certPEM, keyPEM []byte) {
		t.Helper()
		if err := os.WriteFile(files.CertFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(files.KeyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	leafCN := func(r *reloader) string {
		t.Helper()
		c, err := x509.ParseCertificate(r.get().cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c.Subject.CommonName
	}
	install(first.CertPEM, first.KeyPEM)
	r, err := newReloader(files)
	if err != nil {
		t.Fatal(err)
	}
	if cn := leafCN(r); cn != "one" {
		t.Fatalf("loaded %q, want one", cn)
	}

	install(second.CertPEM, second.KeyPEM)
	if cn := leafCN(r); cn != "one" {
		t.Fatalf("reloaded %q before the check interval", cn)
	}
	r.checked = time.Now().Add(-2 * reloadInterval)
	if cn := leafCN(r); cn != "two" {
		t.Fatalf("after rotation got %q, want two", cn)
	}

	install([]byte("not a certificate"), second.KeyPEM)
	r.checked = time.Now().Add(-2 * reloadInterval)
	if cn := leafCN(r); cn != "two" {
		t.Fatalf("a broken rotation replaced the certificate: %q", cn)
	}
}

// TestClientTrustsRotatedCA: the operator's client reads a rotated CA file on its next check, so an adapter whose
// serving certificate comes from the new CA is trusted without restarting; one from an unknown CA never is.
func TestClientTrustsRotatedCA(t *testing.T) {
	oldCA, newCA := testpki.NewCA(t, "old"), testpki.NewCA(t, "new")
	client := oldCA.Client(t, "operator")
	dir := t.TempDir()
	caFile := dir + "/ca.crt"
	if err := os.WriteFile(caFile, oldCA.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ClientTLSConfig(TLSFiles{CertFile: client.CertFile, KeyFile: client.KeyFile, CAFile: caFile, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(server testpki.Pair) error {
		t.Helper()
		cert, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c, s := net.Pipe()
		defer c.Close()
		defer s.Close()
		srv := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		go func() { _ = srv.Handshake() }()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return tls.Client(c, cfg.Clone()).Handshake()
	}
	if err := handshake(oldCA.Server(t, "adapter", "localhost")); err != nil {
		t.Fatalf("server from the configured CA: %v", err)
	}
	if err := handshake(oldCA.Server(t, "adapter", "elsewhere")); err == nil {
		t.Fatal("a certificate for another host name was accepted")
	}
	rotated := newCA.Server(t, "adapter", "localhost")
	if err := handshake(rotated); err == nil {
		t.Fatal("a server from a CA not yet installed was accepted")
	}
	if err := os.WriteFile(caFile, newCA.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * reloadInterval)
	for {
		err := handshake(rotated)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotated CA not picked up within %s: %v", 3*reloadInterval, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
