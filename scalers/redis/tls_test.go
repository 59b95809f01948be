package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// startTLSRedis runs a private redis-server that speaks only TLS and requires a client certificate.
func startTLSRedis(t testing.TB, p scalertest.PKI) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caFile, certFile, keyFile := write("ca.crt", p.CA), write("server.crt", p.ServerCert), write("server.key", p.ServerKey)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(p.CA))
	clientPair, err := tls.X509KeyPair([]byte(p.ClientCert), []byte(p.ClientKey))
	if err != nil {
		t.Fatal(err)
	}
	ping := &goredis.Options{Addr: addr, DisableIdentity: true, TLSConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientPair}, MinVersion: tls.VersionTLS12}}
	return runServerWith(t, dir, ping,
		"--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile, "--tls-auth-clients", "yes").addr
}

// TestTLS checks enableTLS / tls, ca, cert, key, keyPassword and unsafeSsl against a real TLS-only server that
// requires client certificates.
func TestTLS(t *testing.T) {
	p := scalertest.NewPKI(t)
	addr := startTLSRedis(t, p)
	const keyPW = "key-pass-123"
	other := scalertest.NewPKI(t)
	cases := []struct {
		name    string
		md      map[string]string
		auth    map[string]string
		wantErr string // "" means Sample succeeds
	}{
		{name: "enableTLS with ca and client cert", md: map[string]string{"enableTLS": "true"},
			auth: map[string]string{"ca": p.CA, "cert": p.ClientCert, "key": p.ClientKey}},
		{name: "tls enable in auth params", auth: map[string]string{"tls": "enable", "ca": p.CA, "cert": p.ClientCert, "key": p.ClientKey}},
		{name: "encrypted key with keyPassword", md: map[string]string{"enableTLS": "true"},
			auth: map[string]string{"ca": p.CA, "cert": p.ClientCert, "key": scalertest.EncryptKey(t, p.ClientKey, keyPW), "keyPassword": keyPW}},
		{name: "unsafeSsl skips server verification", md: map[string]string{"enableTLS": "true", "unsafeSsl": "true"},
			auth: map[string]string{"cert": p.ClientCert, "key": p.ClientKey}},
		{name: "server not signed by the given ca", md: map[string]string{"enableTLS": "true"},
			auth: map[string]string{"ca": other.CA, "cert": p.ClientCert, "key": p.ClientKey}, wantErr: "certificate"},
		{name: "no client certificate", md: map[string]string{"enableTLS": "true"}, auth: map[string]string{"ca": p.CA}, wantErr: "redis trigger"},
		{name: "tls disabled against a TLS port", auth: map[string]string{"tls": "disable"}, wantErr: "redis trigger"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"address": addr, "listName": uniqueKey(t, "list")}
			for k, v := range tc.md {
				md[k] = v
			}
			cfg := &scalers.TriggerConfig{Type: TypeList, Name: "orders", Metadata: md, AuthParams: tc.auth}
			s := build(t, cfg, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			vals, _, err := s.Sample(ctx)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Sample: %v", err)
				}
				if len(vals) != 1 || vals[0].Value != 0 {
					t.Fatalf("Sample = %v", vals)
				}
				return
			}
			if err == nil {
				t.Fatal("Sample succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error leaks key material: %v", err)
			}
			t.Logf("error: %v", fmt.Sprint(err))
		})
	}
}
