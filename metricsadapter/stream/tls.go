package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles names the PEM files of one side of the mutual-TLS stream. The files are re-read when they change
// (checked at most every few seconds, on new connections), so rotated certificates take effect without a
// restart; established streams keep their session.
type TLSFiles struct {
	// CertFile and KeyFile are this side's certificate and key.
	CertFile, KeyFile string
	// CAFile holds the CA(s) that sign the other side's certificates.
	CAFile string
	// ServerName is the name the client expects in the server's certificate; empty means the host of the
	// address dialled. Client only.
	ServerName string
}

// reloadInterval bounds how often the files are checked for changes.
const reloadInterval = 5 * time.Second

// material is one loading of the files.
type material struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// reloader keeps the latest good material of a TLSFiles; a failed reload keeps the previous material.
type reloader struct {
	files TLSFiles

	mu      sync.Mutex
	current material
	stamp   string // modification times and sizes of the three files
	checked time.Time
}

func newReloader(f TLSFiles) (*reloader, error) {
	if f.CertFile == "" || f.KeyFile == "" || f.CAFile == "" {
		return nil, errors.New("certFile, keyFile and caFile are all required")
	}
	r := &reloader{files: f}
	m, stamp, err := r.load()
	if err != nil {
		return nil, err
	}
	r.current, r.stamp, r.checked = m, stamp, time.Now()
	return r, nil
}

func (r *reloader) load() (material, string, error) {
	stamp := ""
	for _, p := range []string{r.files.CertFile, r.files.KeyFile, r.files.CAFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return material{}, "", err
		}
		stamp += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return material{}, "", fmt.Errorf("certFile %s / keyFile %s: %w", r.files.CertFile, r.files.KeyFile, err)
	}
	caPEM, err := os.ReadFile(r.files.CAFile)
	if err != nil {
		return material{}, "", fmt.Errorf("caFile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return material{}, "", fmt.Errorf("caFile %s: no PEM certificate", r.files.CAFile)
	}
	return material{cert: cert, pool: pool}, stamp, nil
}

// get returns the current material, reloading it first if the files changed since the last check.
func (r *reloader) get() material {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < reloadInterval {
		return r.current
	}
	r.checked = time.Now()
	m, stamp, err := r.load()
	if err == nil && stamp != r.stamp {
		r.current, r.stamp = m, stamp
	}
	return r.current
}

// ServerTLSConfig is the adapter's side: its serving certificate, and client certificates required and verified
// against CAFile. Files are reloaded when they change.
func ServerTLSConfig(f TLSFiles) (*tls.Config, error) {
	r, err := newReloader(f)
	if err != nil {
		return nil, fmt.Errorf("stream server TLS: %w", err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.get()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{m.cert},
				ClientCAs:    m.pool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
				NextProtos:   []string{"h2"},
			}, nil
		},
	}, nil
}

// ClientTLSConfig is the operator's side: its client certificate, and the adapter's certificate verified against
// CAFile. All three files are reloaded when they change, so a rotated CA takes effect on the next connection
// without a restart: Go's built-in verification reads a fixed RootCAs, so verification runs in VerifyConnection
// against the current CA pool instead, with the same checks (chain, expiry, server auth usage, host name).
func ClientTLSConfig(f TLSFiles) (*tls.Config, error) {
	r, err := newReloader(f)
	if err != nil {
		return nil, fmt.Errorf("stream client TLS: %w", err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: f.ServerName,
		// Not skipped: VerifyConnection below verifies the chain and name against the reloaded CA.
		InsecureSkipVerify: true, //nolint:gosec // verification happens in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs, r.get().pool, f.ServerName)
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			m := r.get()
			return &m.cert, nil
		},
	}, nil
}

// verifyServer does what crypto/tls does for a client with RootCAs set: verify the peer's chain against roots for
// server authentication, and its name against serverName (or the name the client dialled).
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, serverName string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("stream client TLS: the server sent no certificate")
	}
	if serverName == "" {
		serverName = cs.ServerName
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: serverName,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("stream client TLS: verifying the adapter's certificate: %w", err)
	}
	return nil
}
