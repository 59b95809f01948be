// Package tlsauth builds the client TLS configuration of a scaler from KEDA's TLS trigger-authentication
// parameters: ca, cert, key (PEM contents, not paths), keyPassword for a legacy (RFC 1423) encrypted key, and
// unsafeSsl to skip server verification.
//
// Errors name the parameter (ca, cert/key, key, keyPassword) and never quote its value. Whether TLS is on at all
// (tls=enable, enableTLS, a URL scheme) and how the parameters are named in metadata stay with each scaler.
package tlsauth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Options are the TLS parameters of one trigger.
type Options struct {
	// CA is a PEM bundle of certificate authorities to trust instead of the system roots.
	CA string
	// Cert and Key are a PEM client certificate and its private key; both or neither.
	Cert string
	Key  string
	// KeyPassword decrypts Key when it is a legacy (RFC 1423) encrypted PEM key.
	KeyPassword string
	// UnsafeSsl skips verification of the server certificate.
	UnsafeSsl bool
}

// Config builds a client TLS configuration (TLS 1.2 or later) from o.
func Config(o Options) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.UnsafeSsl} //nolint:gosec // unsafeSsl is the user's explicit choice, as in KEDA
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
			// X509KeyPair's errors describe the problem, never the PEM contents.
			return nil, fmt.Errorf("cert/key: not a matching PEM certificate and private key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// decryptKey decrypts a legacy (RFC 1423) password-protected PEM key, the only kind KEDA's keyPassword applies
// to. Without a password, or for an unencrypted key, keyPEM is returned unchanged.
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
	//lint:ignore SA1019 RFC 1423 encryption is what KEDA's keyPassword supports; there is no newer std API.
	if !x509.IsEncryptedPEMBlock(block) {
		return keyPEM, nil
	}
	//lint:ignore SA1019 see above
	der, err := x509.DecryptPEMBlock(block, []byte(password))
	if err != nil {
		return nil, errors.New("keyPassword: cannot decrypt key (wrong password?)")
	}
	return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der}), nil
}
