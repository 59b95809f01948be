package metricsapi

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// tlsOptions are KEDA's TLS authParams: PEM contents (not paths), an optional password for an encrypted key, and
// unsafeSsl to skip server verification.
type tlsOptions struct {
	CA          string
	Cert        string
	Key         string
	KeyPassword string
	UnsafeSsl   bool
}

// newTLSConfig builds a client TLS config. Errors name the field, never its contents.
func newTLSConfig(o tlsOptions) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.UnsafeSsl} //nolint:gosec // unsafeSsl is the user's explicit choice
	if o.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(o.CA)) {
			return nil, errors.New("ca: no PEM certificate found")
		}
		tc.RootCAs = pool
	}
	if o.Cert != "" || o.Key != "" {
		if o.Cert == "" || o.Key == "" {
			return nil, errors.New("cert and key: both must be given for a client certificate")
		}
		keyPEM, err := decryptKey([]byte(o.Key), o.KeyPassword)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair([]byte(o.Cert), keyPEM)
		if err != nil {
			return nil, fmt.Errorf("cert/key: not a matching PEM certificate and private key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// decryptKey decrypts a legacy (RFC 1423) password-protected PEM key. An unencrypted key is returned unchanged.
func decryptKey(keyPEM []byte, password string) ([]byte, error) {
	if password == "" {
		return keyPEM, nil
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("key: no PEM block found")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("keyPassword: encrypted PKCS#8 keys are not supported; use an RFC 1423 encrypted or an unencrypted key")
	}
	//nolint:staticcheck // RFC 1423 encryption is what KEDA's keyPassword supports.
	if !x509.IsEncryptedPEMBlock(block) {
		return keyPEM, nil
	}
	//nolint:staticcheck // see above
	der, err := x509.DecryptPEMBlock(block, []byte(password))
	if err != nil {
		return nil, errors.New("keyPassword: cannot decrypt key (wrong password?)")
	}
	return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der}), nil
}
