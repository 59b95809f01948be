package tlsauth

import (
	"crypto/tls"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	const password = "key-pass-7f3a9"
	p := scalertest.NewPKI(t)
	encKey := scalertest.EncryptKey(t, p.ClientKey, password)
	pkcs8 := string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("opaque")}))

	tests := []struct {
		name      string
		opts      Options
		wantErr   string
		wantCerts int
		wantRoots bool
		wantSkip  bool
	}{
		{name: "defaults", opts: Options{}},
		{name: "unsafeSsl", opts: Options{UnsafeSsl: true}, wantSkip: true},
		{name: "ca only", opts: Options{CA: p.CA}, wantRoots: true},
		{name: "client certificate", opts: Options{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey}, wantRoots: true, wantCerts: 1},
		{name: "password on an unencrypted key", opts: Options{Cert: p.ClientCert, Key: p.ClientKey, KeyPassword: password}, wantCerts: 1},
		{name: "right password", opts: Options{Cert: p.ClientCert, Key: encKey, KeyPassword: password}, wantCerts: 1},
		{name: "wrong password", opts: Options{Cert: p.ClientCert, Key: encKey, KeyPassword: "nope-wrong"}, wantErr: "keyPassword"},
		{name: "encrypted key without password", opts: Options{Cert: p.ClientCert, Key: encKey}, wantErr: "cert/key"},
		{name: "encrypted PKCS#8 key", opts: Options{Cert: p.ClientCert, Key: pkcs8, KeyPassword: password}, wantErr: "keyPassword: encrypted PKCS#8"},
		{name: "password with a key that is not PEM", opts: Options{Cert: p.ClientCert, Key: "secret-not-pem", KeyPassword: password}, wantErr: "key: no PEM block"},
		{name: "bad ca", opts: Options{CA: "garbage"}, wantErr: "ca: no PEM certificate"},
		{name: "key without cert", opts: Options{Key: p.ClientKey}, wantErr: "cert and key"},
		{name: "cert without key", opts: Options{Cert: p.ClientCert}, wantErr: "cert and key"},
		{name: "mismatched pair", opts: Options{Cert: p.ClientCert, Key: scalertest.NewPKI(t).ClientKey}, wantErr: "cert/key: not a matching"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Config(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Config error = %v, want %q", err, tc.wantErr)
				}
				for _, secret := range []string{password, "nope-wrong", "secret-not-pem", "BEGIN"} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error leaks %q: %v", secret, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Config: %v", err)
			}
			if got.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want TLS 1.2", got.MinVersion)
			}
			if len(got.Certificates) != tc.wantCerts {
				t.Errorf("%d client certificates, want %d", len(got.Certificates), tc.wantCerts)
			}
			if (got.RootCAs != nil) != tc.wantRoots {
				t.Errorf("RootCAs set = %v, want %v", got.RootCAs != nil, tc.wantRoots)
			}
			if got.InsecureSkipVerify != tc.wantSkip {
				t.Errorf("InsecureSkipVerify = %v, want %v", got.InsecureSkipVerify, tc.wantSkip)
			}
		})
	}
}

// TestDecryptKey: the right password restores the original key; a wrong one is a keyPassword error that does not
// quote the password.
func TestDecryptKey(t *testing.T) {
	t.Parallel()
	p := scalertest.NewPKI(t)
	encPEM := []byte(scalertest.EncryptKey(t, p.ClientKey, "pw-123"))
	got, err := decryptKey(encPEM, "pw-123")
	if err != nil || string(got) != p.ClientKey {
		t.Fatalf("decrypt: err=%v, equal=%v", err, string(got) == p.ClientKey)
	}
	if _, err := decryptKey(encPEM, "bad-pw-456"); err == nil || !strings.Contains(err.Error(), "keyPassword") || strings.Contains(err.Error(), "bad-pw-456") {
		t.Fatalf("wrong password: err=%v, want a keyPassword error without the password", err)
	}
}

// TestHandshake: a client built from the PEM parameters completes a mutual-TLS handshake with a server that
// requires a client certificate signed by the CA.
func TestHandshake(t *testing.T) {
	t.Parallel()
	const password = "hs-pass"
	p := scalertest.NewPKI(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{p.Server}, ClientCAs: p.Pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_, _ = c.Write([]byte("ok"))
			_ = c.Close()
		}
	}()
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{name: "ca and encrypted client key", opts: Options{CA: p.CA, Cert: p.ClientCert, Key: scalertest.EncryptKey(t, p.ClientKey, password), KeyPassword: password}},
		{name: "unsafeSsl skips server verification", opts: Options{UnsafeSsl: true, Cert: p.ClientCert, Key: p.ClientKey}},
		{name: "unknown CA", opts: Options{Cert: p.ClientCert, Key: p.ClientKey}, wantErr: true},
		{name: "no client certificate", opts: Options{CA: p.CA}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := Config(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			d := &net.Dialer{Timeout: 30 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), conf)
			if err == nil {
				// TLS 1.3 reports a rejected client certificate on the first read.
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				buf := make([]byte, 2)
				_, err = c.Read(buf)
				_ = c.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("handshake error = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
