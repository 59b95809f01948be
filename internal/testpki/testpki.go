// Package testpki generates a throw-away CA and certificates in-process for tests of TLS endpoints (the
// adapter's aggregated API server and sample stream, scalers' TLS and mutual-TLS options), issued through
// internal/pki and written to the test's temp dir. Not for production use.
package testpki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/pki"
)

// CA is a certificate authority that issues leaf certificates.
type CA struct {
	dir string
	ca  *pki.CA
	// CertPEM is the CA certificate.
	CertPEM []byte
	// CertFile is the CA certificate written to the test's temp dir.
	CertFile string
}

// Pair is an issued certificate and key, as PEM and as files.
type Pair struct {
	CertPEM, KeyPEM   []byte
	CertFile, KeyFile string
}

// lifetime of the test certificates.
const lifetime = 24 * time.Hour

// NewCA creates a CA valid for a day; it and its certificates are written to the test's temp dir.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return NewCAInDir(t, t.TempDir(), name)
}

// NewCAInDir is NewCA writing to dir, for fixtures that outlive one test (the caller removes dir).
func NewCAInDir(t testing.TB, dir, name string) *CA {
	t.Helper()
	ca, err := pki.NewCA(pki.Request{CommonName: name, Lifetime: lifetime})
	if err != nil {
		t.Fatal(err)
	}
	return &CA{dir: dir, ca: ca, CertPEM: ca.CertPEM, CertFile: write(t, dir, name+"-ca.crt", ca.CertPEM)}
}

// Pool is a certificate pool holding the CA, for a tls.Config's RootCAs or ClientCAs.
func (ca *CA) Pool() *x509.CertPool { return ca.ca.Pool() }

// Server issues a serving certificate for hosts (DNS names or IP addresses).
func (ca *CA) Server(t testing.TB, name string, hosts ...string) Pair {
	t.Helper()
	return ca.issue(t, name, x509.ExtKeyUsageServerAuth, hosts)
}

// Client issues a client certificate with CommonName name (and hosts as SANs, for peers that check them).
func (ca *CA) Client(t testing.TB, name string, hosts ...string) Pair {
	t.Helper()
	return ca.issue(t, name, x509.ExtKeyUsageClientAuth, hosts)
}

func (ca *CA) issue(t testing.TB, name string, usage x509.ExtKeyUsage, hosts []string) Pair {
	t.Helper()
	leaf, err := ca.ca.Issue(pki.Request{CommonName: name, Hosts: hosts, Usage: usage, Lifetime: lifetime})
	if err != nil {
		t.Fatal(err)
	}
	return Pair{CertPEM: leaf.CertPEM, KeyPEM: leaf.KeyPEM,
		CertFile: write(t, ca.dir, name+".crt", leaf.CertPEM), KeyFile: write(t, ca.dir, name+".key", leaf.KeyPEM)}
}

func write(t testing.TB, dir, name string, data []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ClientTo returns an HTTP client that connects to addr (host:port) whatever host a URL names, trusting the CA:
// for a fake served under a cloud's real host names (a certificate from Server for those names), so the SDKs
// under test keep their default endpoints. Its transport's DialContext and TLS roots can carry a gRPC connection
// too.
func (ca *CA) ClientTo(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}
