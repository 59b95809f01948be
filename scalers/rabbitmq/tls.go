package rabbitmq

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
)

// buildTLS returns the client TLS configuration from the authParams tls, ca, cert, key and keyPassword and the
// metadata unsafeSsl, or nil when the defaults (system roots, verification on) do. Errors name the field and
// never quote the PEM.
func buildTLS(m *Metadata) (*tls.Config, error) {
	if m.TLS != "enable" && !m.UnsafeSsl {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: m.UnsafeSsl} //nolint:gosec // unsafeSsl is the user's explicit choice, as in KEDA
	if m.TLS != "enable" {
		return cfg, nil
	}
	if m.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(m.CA)) {
			return nil, errors.New("ca: no PEM certificate found")
		}
		cfg.RootCAs = pool
	}
	if m.Cert != "" {
		keyPEM := []byte(m.Key)
		if m.KeyPassword != "" {
			var err error
			if keyPEM, err = decryptKey(keyPEM, m.KeyPassword); err != nil {
				return nil, err
			}
		}
		pair, err := tls.X509KeyPair([]byte(m.Cert), keyPEM)
		if err != nil {
			return nil, errors.New("cert: cert and key do not form a valid PEM key pair")
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// decryptKey decrypts a legacy (RFC 1423) encrypted PEM key, the only kind KEDA's keyPassword supports.
func decryptKey(keyPEM []byte, password string) ([]byte, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("key: no PEM block found")
	}
	//lint:ignore SA1019 legacy PEM encryption is what keyPassword means in KEDA manifests
	if !x509.IsEncryptedPEMBlock(block) {
		return keyPEM, nil
	}
	//lint:ignore SA1019 see above
	der, err := x509.DecryptPEMBlock(block, []byte(password))
	if err != nil {
		return nil, errors.New("keyPassword: cannot decrypt key")
	}
	return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der}), nil
}

// tlsKey identifies a TLS configuration in a shared-client key without storing the PEM in clear.
func tlsKey(m *Metadata) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s", m.TLS, strconv.FormatBool(m.UnsafeSsl), m.CA, m.Cert, m.Key, m.KeyPassword)
	return hex.EncodeToString(h.Sum(nil))
}
