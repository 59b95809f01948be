package stream

import (
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/testpki"
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
