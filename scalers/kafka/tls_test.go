package kafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestTLSKeyPassword(t *testing.T) {
	t.Parallel()
	const password = "key-pass-7f3a9"
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	//nolint:staticcheck // building the legacy encrypted key KEDA's keyPassword is for
	block, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", keyDER, []byte(password), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(block))

	tests := []struct {
		name    string
		opts    tlsOptions
		wantErr string
	}{
		{name: "right password", opts: tlsOptions{Cert: certPEM, Key: keyPEM, KeyPassword: password}},
		{name: "wrong password", opts: tlsOptions{Cert: certPEM, Key: keyPEM, KeyPassword: "nope-wrong"}, wantErr: "keyPassword"},
		{name: "encrypted key without password", opts: tlsOptions{Cert: certPEM, Key: keyPEM}, wantErr: "cert/key"},
		{name: "bad ca", opts: tlsOptions{CA: "garbage"}, wantErr: "ca"},
		{name: "key without cert", opts: tlsOptions{Key: keyPEM}, wantErr: "cert and key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc2, err := newTLSConfig(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("newTLSConfig error = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "nope-wrong") {
					t.Fatalf("error leaks the key password: %v", err)
				}
				return
			}
			if err != nil || len(tc2.Certificates) != 1 {
				t.Fatalf("newTLSConfig = (%v, %v), want one client certificate", tc2, err)
			}
		})
	}
}
