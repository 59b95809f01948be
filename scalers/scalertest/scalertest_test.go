package scalertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
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

// fakeScaler is a scalers.Scaler whose Sample returns fixed values, and that records Close.
type fakeScaler struct {
	vals   []scalers.Sample
	active bool
	err    error
	closed bool
}

func (*fakeScaler) MetricSpecs() []autoscalingv2.MetricSpec { return nil }
func (f *fakeScaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, false, errors.New("no deadline")
	}
	return f.vals, f.active, f.err
}
func (f *fakeScaler) Close(context.Context) error { f.closed = true; return nil }

func TestConfigAndNew(t *testing.T) {
	t.Parallel()
	md, auth := map[string]string{"a": "1"}, map[string]string{"password": "p"}
	cfg := Config("fake", "jobs", md, auth)
	if cfg.Type != "fake" || cfg.Name != "jobs" || cfg.Metadata["a"] != "1" || cfg.AuthParams["password"] != "p" || cfg.Shared == nil {
		t.Fatalf("Config = %+v", cfg)
	}
	f := &fakeScaler{}
	var got *scalers.TriggerConfig
	t.Run("closes at cleanup", func(t *testing.T) {
		s := New[*fakeScaler](t, func(_ context.Context, c *scalers.TriggerConfig) (scalers.Scaler, error) {
			got = c
			return f, nil
		}, cfg)
		if s != f || got != cfg || f.closed {
			t.Fatalf("New returned %p (want %p), cfg %p (want %p), closed %v", s, f, got, cfg, f.closed)
		}
	})
	if !f.closed {
		t.Fatal("scaler not closed when the test ended")
	}
}

func TestFirst(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name       string
		f          *fakeScaler
		metricName string
		want       float64
		wantActive bool
		wantErr    string // what First's error contains; wantNamed is the same for FirstNamed
		wantNamed  string
	}{
		{name: "one value", f: &fakeScaler{vals: []scalers.Sample{{MetricName: "m", Value: 3}}, active: true}, metricName: "m", want: 3, wantActive: true},
		{name: "first of two", f: &fakeScaler{vals: []scalers.Sample{{MetricName: "m", Value: 1}, {MetricName: "n", Value: 2}}}, metricName: "m", want: 1, wantNamed: "unexpected samples"},
		{name: "other name", f: &fakeScaler{vals: []scalers.Sample{{MetricName: "x", Value: 1}}, active: true}, metricName: "m", want: 1, wantActive: true, wantNamed: "unexpected samples"},
		{name: "no values", f: &fakeScaler{active: true}, metricName: "m", wantErr: "no values", wantNamed: "unexpected samples"},
		{name: "error", f: &fakeScaler{vals: []scalers.Sample{{Value: 1}}, active: true, err: boom}, wantErr: "boom", wantNamed: "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(fn string, v float64, active bool, err error, wantErr string) {
				t.Helper()
				if wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), wantErr) || v != 0 || active {
						t.Errorf("%s = (%v, %v, %v), want (0, false, error containing %q)", fn, v, active, err, wantErr)
					}
					return
				}
				if err != nil || v != tc.want || active != tc.wantActive {
					t.Errorf("%s = (%v, %v, %v), want (%v, %v, nil)", fn, v, active, err, tc.want, tc.wantActive)
				}
			}
			v, active, err := First(tc.f)
			check("First", v, active, err, tc.wantErr)
			v, active, err = FirstNamed(tc.f, tc.metricName)
			check("FirstNamed", v, active, err, tc.wantNamed)
		})
	}
}

// logsSecret is a scaler whose Sample fails and logs the secret it was given when leak is set.
type logsSecret struct {
	fakeScaler
	cfg  *scalers.TriggerConfig
	leak bool
}

func (l *logsSecret) Sample(context.Context) ([]scalers.Sample, bool, error) {
	if l.leak {
		l.cfg.Logger.Warn("auth failed", zap.String("password", l.cfg.AuthParams["password"]))
	}
	return nil, false, l.cfg.Errorf("HTTP 401")
}

func TestSampleFails(t *testing.T) {
	t.Parallel()
	for _, leak := range []bool{false, true} {
		t.Run(fmt.Sprint("leak=", leak), func(t *testing.T) {
			newFn := func(_ context.Context, c *scalers.TriggerConfig) (*logsSecret, error) {
				return &logsSecret{cfg: c, leak: leak}, nil
			}
			r := &recorder{TB: t}
			err := SampleFails(r, newFn, Config("fake", "x", nil, map[string]string{"password": "pw-secret"}), "HTTP 401", "pw-secret")
			if err == nil || err.Error() != `fake trigger "x": HTTP 401` {
				t.Fatalf("SampleFails returned %v", err)
			}
			if leak != (len(r.errors) == 1) {
				t.Fatalf("leak %v: problems reported %q", leak, r.errors)
			}
		})
	}
}

type parsed struct {
	Query     string  `tidal:"name=query"`
	Threshold float64 `tidal:"name=threshold,default=10"`
	Password  string  `tidal:"name=password,order=authParams;triggerMetadata,optional"`
}

func TestParseTable(t *testing.T) {
	t.Parallel()
	ParseTable(t, "fake", []ParseCase[parsed]{
		{Name: "defaults", MD: map[string]string{"query": "q"}, Check: func(t *testing.T, m parsed) {
			if m.Query != "q" || m.Threshold != 10 || m.Password != "" {
				t.Errorf("parsed %+v", m)
			}
		}},
		{Name: "auth", MD: map[string]string{"query": "q"}, Auth: map[string]string{"password": "p"}, Check: func(t *testing.T, m parsed) {
			if m.Password != "p" {
				t.Errorf("parsed %+v", m)
			}
		}},
		{Name: "env", MD: map[string]string{"query": "q", "passwordFromEnv": "PW"}, Env: map[string]string{"PW": "e"}, Check: func(t *testing.T, m parsed) {
			if m.Password != "e" {
				t.Errorf("parsed %+v", m)
			}
		}},
		{Name: "no check", MD: map[string]string{"query": "q", "threshold": "2"}},
		{Name: "missing query", MD: map[string]string{}, WantErr: "query"},
		{Name: "bad threshold", MD: map[string]string{"query": "q", "threshold": "x"}, WantErr: "threshold"},
	})
	type ptr struct{ Query string }
	ParseTableFunc(t, "fake", func(cfg *scalers.TriggerConfig) (*ptr, error) {
		if cfg.Type != "fake" || cfg.ResolvedEnv["E"] != "e" {
			return nil, fmt.Errorf("config %+v", cfg)
		}
		if cfg.Metadata["query"] == "" {
			return nil, cfg.Errorf("query: missing")
		}
		return &ptr{Query: cfg.Metadata["query"] + cfg.AuthParams["suffix"]}, nil
	}, []ParseCase[*ptr]{
		{Name: "func ok", MD: map[string]string{"query": "q"}, Auth: map[string]string{"suffix": "!"}, Env: map[string]string{"E": "e"}, Check: func(t *testing.T, m *ptr) {
			if m.Query != "q!" {
				t.Errorf("parsed %+v", m)
			}
		}},
		{Name: "func error", MD: map[string]string{}, Env: map[string]string{"E": "e"}, WantErr: "query: missing"},
	}, "absent-secret")
}
