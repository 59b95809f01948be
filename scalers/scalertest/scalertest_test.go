package scalertest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"reflect"
	"testing"

	"go.uber.org/zap"
)

func TestWith(t *testing.T) {
	t.Parallel()
	base := map[string]string{"url": "http://x", "targetValue": "10"}
	tests := []struct {
		name string
		got  map[string]string
		want map[string]string
	}{
		{name: "nil changes copy base", got: With(base, nil), want: map[string]string{"url": "http://x", "targetValue": "10"}},
		{name: "set and add", got: With(base, map[string]string{"targetValue": "5", "format": "xml"}),
			want: map[string]string{"url": "http://x", "targetValue": "5", "format": "xml"}},
		{name: "delete", got: With(base, map[string]string{"url": Delete, "absent": Delete}), want: map[string]string{"targetValue": "10"}},
		{name: "pairs", got: WithPairs(base, "url", Delete, "format", "yaml"), want: map[string]string{"targetValue": "10", "format": "yaml"}},
		{name: "odd pairs ignore the last key", got: WithPairs(base, "format"), want: map[string]string{"url": "http://x", "targetValue": "10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
			if !reflect.DeepEqual(base, map[string]string{"url": "http://x", "targetValue": "10"}) {
				t.Errorf("base modified: %v", base)
			}
		})
	}
}

func TestNewPKI(t *testing.T) {
	t.Parallel()
	p := NewPKI(t)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(p.CA)) {
		t.Fatal("CA is not PEM")
	}
	for _, leaf := range []struct {
		name, cert, key string
		usage           x509.ExtKeyUsage
	}{
		{name: "server", cert: p.ServerCert, key: p.ServerKey, usage: x509.ExtKeyUsageServerAuth},
		{name: "client", cert: p.ClientCert, key: p.ClientKey, usage: x509.ExtKeyUsageClientAuth},
	} {
		if _, err := tls.X509KeyPair([]byte(leaf.cert), []byte(leaf.key)); err != nil {
			t.Fatalf("%s pair: %v", leaf.name, err)
		}
		block, _ := pem.Decode([]byte(leaf.cert))
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{leaf.usage}}); err != nil {
			t.Errorf("%s certificate does not verify for 127.0.0.1 against the CA: %v", leaf.name, err)
		}
	}
	if _, err := p.Server.Leaf.Verify(x509.VerifyOptions{Roots: p.Pool, DNSName: "localhost"}); err != nil {
		t.Errorf("Server does not verify for localhost against Pool: %v", err)
	}
}

func TestEncryptKey(t *testing.T) {
	t.Parallel()
	p := NewPKI(t)
	block, _ := pem.Decode([]byte(EncryptKey(t, p.ClientKey, "pw")))
	//lint:ignore SA1019 checking the legacy format on purpose
	if !x509.IsEncryptedPEMBlock(block) {
		t.Fatal("key is not RFC 1423 encrypted")
	}
	//lint:ignore SA1019 see above
	der, err := x509.DecryptPEMBlock(block, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})); got != p.ClientKey {
		t.Fatal("decrypted key differs from the original")
	}
}

// recorder is a testing.TB that records Errorf calls instead of failing the test.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestAssertNoSecret(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-secret"
	tests := []struct {
		name    string
		errText string
		log     func(l *zap.Logger)
		wantErr int
	}{
		{name: "clean", errText: "redis trigger: password: wrong", log: func(l *zap.Logger) { l.Info("sampled", zap.String("key", "q")) }},
		{name: "in the error", errText: "dial redis://u:" + secret + "@h", wantErr: 1},
		{name: "in a message", log: func(l *zap.Logger) { l.Warn("auth " + secret) }, wantErr: 1},
		{name: "in a field", log: func(l *zap.Logger) { l.Debug("x", zap.String("conn", "p="+secret)) }, wantErr: 1},
		{name: "in a non-string field", log: func(l *zap.Logger) { l.Info("x", zap.Strings("list", []string{secret})) }, wantErr: 1},
		{name: "everywhere", errText: secret, log: func(l *zap.Logger) { l.Error(secret, zap.String("a", secret)) }, wantErr: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, logs := ObservedLogger()
			if tc.log != nil {
				tc.log(l)
			}
			r := &recorder{TB: t}
			AssertNoSecret(r, secret, tc.errText, logs.All())
			if len(r.errors) != tc.wantErr {
				t.Fatalf("AssertNoSecret reported %d problems %q, want %d", len(r.errors), r.errors, tc.wantErr)
			}
		})
	}
}
