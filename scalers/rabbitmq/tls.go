package rabbitmq

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// buildTLS returns the client TLS configuration from the authParams tls, ca, cert, key and keyPassword and the
// metadata unsafeSsl, or nil when the defaults (system roots, verification on) do. Without tls=enable only
// unsafeSsl applies. Errors name the field and never quote the PEM.
func buildTLS(m *Metadata) (*tls.Config, error) {
	switch {
	case m.TLS == "enable":
		return tlsauth.Config(tlsauth.Options{CA: m.CA, Cert: m.Cert, Key: m.Key, KeyPassword: m.KeyPassword, UnsafeSsl: m.UnsafeSsl})
	case m.UnsafeSsl:
		return tlsauth.Config(tlsauth.Options{UnsafeSsl: true})
	default:
		return nil, nil
	}
}

// tlsKey identifies a TLS configuration in a shared-client key without storing the PEM in clear.
func tlsKey(m *Metadata) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s", m.TLS, strconv.FormatBool(m.UnsafeSsl), m.CA, m.Cert, m.Key, m.KeyPassword)
	return hex.EncodeToString(h.Sum(nil))
}
