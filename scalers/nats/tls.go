package nats

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// buildTLS returns the client TLS configuration from the authParams tls, ca, cert and key, or nil when tls is
// not enabled. It applies to natsServer (NATS TLS) and, with useHttps, to the monitoring endpoint. Errors name
// the field and never quote the PEM.
func buildTLS(m *Metadata) (*tls.Config, error) {
	if m.TLS != "enable" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(m.CA)) {
			return nil, errors.New("ca: no PEM certificate found")
		}
		cfg.RootCAs = pool
	}
	if m.Cert != "" {
		pair, err := tls.X509KeyPair([]byte(m.Cert), []byte(m.Key))
		if err != nil {
			return nil, errors.New("cert: cert and key do not form a valid PEM key pair")
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// tlsKey identifies a TLS configuration in a shared-client key without storing the PEM in clear.
func tlsKey(m *Metadata) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%s", m.TLS, m.CA, m.Cert, m.Key)))
	return hex.EncodeToString(h[:])
}
