package redis

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tidalscale/tidal/scalers"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a client certificate, all PEM.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t testing.TB) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tidal test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) (string, string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "redis"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	}
	p := pki{ca: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
	p.serverCert, p.serverKey = leaf(2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf(3, x509.ExtKeyUsageClientAuth)
	return p
}

// encryptKey protects a PEM key with a password the legacy (RFC 1423) way keyPassword refers to.
func encryptKey(t testing.TB, keyPEM, password string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(keyPEM))
	//lint:ignore SA1019 producing the legacy format on purpose.
	enc, err := x509.EncryptPEMBlock(rand.Reader, block.Type, block.Bytes, []byte(password), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(enc))
}

// startTLSRedis runs a private redis-server that speaks only TLS and requires a client certificate.
func startTLSRedis(t testing.TB, p pki) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caFile, certFile, keyFile := write("ca.crt", p.ca), write("server.crt", p.serverCert), write("server.key", p.serverKey)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(p.ca))
	clientPair, err := tls.X509KeyPair([]byte(p.clientCert), []byte(p.clientKey))
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
	p := newPKI(t)
	addr := startTLSRedis(t, p)
	const keyPW = "key-pass-123"
	other := newPKI(t)
	cases := []struct {
		name    string
		md      map[string]string
		auth    map[string]string
		wantErr string // "" means Sample succeeds
	}{
		{name: "enableTLS with ca and client cert", md: map[string]string{"enableTLS": "true"},
			auth: map[string]string{"ca": p.ca, "cert": p.clientCert, "key": p.clientKey}},
		{name: "tls enable in auth params", auth: map[string]string{"tls": "enable", "ca": p.ca, "cert": p.clientCert, "key": p.clientKey}},
		{name: "encrypted key with keyPassword", md: map[string]string{"enableTLS": "true"},
			auth: map[string]string{"ca": p.ca, "cert": p.clientCert, "key": encryptKey(t, p.clientKey, keyPW), "keyPassword": keyPW}},
		{name: "unsafeSsl skips server verification", md: map[string]string{"enableTLS": "true", "unsafeSsl": "true"},
			auth: map[string]string{"cert": p.clientCert, "key": p.clientKey}},
		{name: "server not signed by the given ca", md: map[string]string{"enableTLS": "true"},
			auth: map[string]string{"ca": other.ca, "cert": p.clientCert, "key": p.clientKey}, wantErr: "certificate"},
		{name: "no client certificate", md: map[string]string{"enableTLS": "true"}, auth: map[string]string{"ca": p.ca}, wantErr: "redis trigger"},
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
