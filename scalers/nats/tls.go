package nats

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"

	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// buildTLS returns the client TLS configuration from the authParams tls, ca, cert and key, or nil when tls is
// not enabled. It applies to natsServer (NATS TLS) and, with useHttps, to the monitoring endpoint. The
// nats-jetstream trigger has no keyPassword or unsafeSsl. Errors name the field and never quote the PEM.
func buildTLS(m *Metadata) (*tls.Config, error) {
	if m.TLS != "enable" {
		return nil, nil
	}
	return tlsauth.Config(tlsauth.Options{CA: m.CA, Cert: m.Cert, Key: m.Key})
}

// tlsKey identifies a TLS configuration in a shared-client key without storing the PEM in clear.
func tlsKey(m *Metadata) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%s", m.TLS, m.CA, m.Cert, m.Key)))
	return hex.EncodeToString(h[:])
}
