package loki

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"serverAddress": "http://loki:3100", "query": `sum(rate({app="api"}[1m]))`, "threshold": "10"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	tests := []struct {
		name    string
		md      map[string]string
		auth    map[string]string
		wantErr string
		check   func(t *testing.T, m Metadata)
	}{
		{name: "defaults", md: base(), check: func(t *testing.T, m Metadata) {
			if m.Threshold != 10 || m.ActivationThreshold != 0 || !m.IgnoreNullValues || m.UnsafeSsl || m.TenantName != "" ||
				m.queryURL.String() != "http://loki:3100/loki/api/v1/query" {
				t.Errorf("defaults wrong: %+v url=%s", m, m.queryURL)
			}
		}},
		{name: "prefix path and every field", md: base("serverAddress", "https://gw/loki-a/", "threshold", "0.5", "activationThreshold", "2",
			"tenantName", "team-a", "ignoreNullValues", "false", "unsafeSsl", "true", "authModes", "basic"),
			auth: map[string]string{"username": "u", "password": "p"}, check: func(t *testing.T, m Metadata) {
				if m.queryURL.String() != "https://gw/loki-a/loki/api/v1/query" || m.Threshold != 0.5 || m.ActivationThreshold != 2 ||
					m.TenantName != "team-a" || m.IgnoreNullValues || !m.UnsafeSsl || !m.modes["basic"] {
					t.Errorf("fields wrong: %+v url=%s", m, m.queryURL)
				}
			}},
		{name: "full query endpoint kept", md: base("serverAddress", "http://loki:3100/loki/api/v1/query"), check: func(t *testing.T, m Metadata) {
			if m.queryURL.String() != "http://loki:3100/loki/api/v1/query" {
				t.Errorf("url = %s", m.queryURL)
			}
		}},
		{name: "missing serverAddress", md: base("serverAddress", scalertest.Delete), wantErr: "serverAddress"},
		{name: "relative serverAddress", md: base("serverAddress", "loki:3100"), wantErr: "serverAddress"},
		{name: "missing query", md: base("query", scalertest.Delete), wantErr: "query"},
		{name: "blank query", md: base("query", " "), wantErr: "query"},
		{name: "missing threshold", md: base("threshold", scalertest.Delete), wantErr: "threshold"},
		{name: "non-numeric threshold", md: base("threshold", "ten"), wantErr: "threshold"},
		{name: "zero threshold", md: base("threshold", "0"), wantErr: "threshold"},
		{name: "non-numeric activationThreshold", md: base("activationThreshold", "x"), wantErr: "activationThreshold"},
		{name: "bad ignoreNullValues", md: base("ignoreNullValues", "sometimes"), wantErr: "ignoreNullValues"},
		{name: "bad unsafeSsl", md: base("unsafeSsl", "2"), wantErr: "unsafeSsl"},
		{name: "unknown authMode", md: base("authModes", "oauth2"), wantErr: "authModes"},
		{name: "bearer and basic", md: base("authModes", "bearer,basic"), auth: map[string]string{"bearerToken": "t", "username": "u"}, wantErr: "cannot be combined"},
		{name: "bearer without token", md: base("authModes", "bearer"), wantErr: "bearerToken"},
		{name: "basic without username", md: base("authModes", "basic"), wantErr: "username"},
		{name: "tls without key", md: base("authModes", "tls"), auth: map[string]string{"cert": "c"}, wantErr: "cert and key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: tc.md, AuthParams: tc.auth}
			var m Metadata
			err := scalers.Parse(cfg, &m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "loki trigger") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to name the loki trigger and %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, m)
		})
	}
}

// fakeLoki serves /loki/api/v1/query as Loki does, answering with the body set for the query; it requires the
// tenant header when tenant is set and the bearer token when token is set.
type fakeLoki struct {
	mu     sync.Mutex
	tenant string
	token  string
	status int
	body   string
	query  string
}

func (f *fakeLoki) set(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != queryPath || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.query = r.URL.Query().Get("query")
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, "authentication failure", http.StatusUnauthorized)
		return
	}
	if f.tenant != "" && r.Header.Get("X-Scope-OrgID") != f.tenant {
		http.Error(w, "no org id", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
}

func vector(values ...string) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = fmt.Sprintf(`{"metric":{"app":"api%d"},"value":[1700000000.123,"%s"]}`, i, v)
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(parts, ",") +
		`],"stats":{"summary":{"bytesProcessedPerSecond":0,"execTime":0.001}}}}`
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	cfg := &scalers.TriggerConfig{Type: TriggerType, Name: "logs", Metadata: md, AuthParams: auth, Shared: scalers.NewShared()}
	s, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s.(*Scaler)
}

func sample(s *Scaler) (float64, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	vals, active, err := s.Sample(ctx)
	if err != nil {
		return 0, false, err
	}
	return vals[0].Value, active, nil
}

func TestSample(t *testing.T) {
	t.Parallel()
	f := &fakeLoki{tenant: "team-a"}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	query := `sum(count_over_time({app="api"} |= "error" [1m]))`
	tests := []struct {
		name       string
		status     int
		body       string
		ignoreNull string
		want       float64
		wantActive bool
		wantErr    string
	}{
		{name: "zero", status: 200, body: vector("0"), want: 0},
		{name: "below activation", status: 200, body: vector("3"), want: 3},
		{name: "above target", status: 200, body: vector("25.5"), want: 25.5, wantActive: true},
		{name: "empty result is 0", status: 200, body: vector(), want: 0},
		{name: "empty result is an error without ignoreNullValues", status: 200, body: vector(), ignoreNull: "false", wantErr: "empty"},
		{name: "null value is 0", status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,null]}]}}`, want: 0},
		{name: "multiple series", status: 200, body: vector("1", "2"), wantErr: "2 series"},
		{name: "log query", status: 200, body: `{"status":"success","data":{"resultType":"streams","result":[]}}`, wantErr: "streams"},
		{name: "parse error from loki", status: 400, body: "parse error at line 1, col 5: syntax error\n", wantErr: "HTTP 400: parse error"},
		{name: "not JSON", status: 200, body: "<html>", wantErr: "decoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"serverAddress": srv.URL, "query": query, "threshold": "10", "activationThreshold": "5", "tenantName": "team-a"}
			if tc.ignoreNull != "" {
				md["ignoreNullValues"] = tc.ignoreNull
			}
			s := newScaler(t, md, nil)
			f.set(tc.status, tc.body)
			v, active, err := sample(s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `loki trigger "logs"`) {
					t.Fatalf("Sample error = %v, want one naming the trigger and containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sample: %v", err)
			}
			if v != tc.want || active != tc.wantActive {
				t.Fatalf("Sample = (%v, %v), want (%v, %v)", v, active, tc.want, tc.wantActive)
			}
			f.mu.Lock()
			got := f.query
			f.mu.Unlock()
			if got != query {
				t.Fatalf("server got query %q, want %q", got, query)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const token = "loki-token-secret"
	srv := httptest.NewServer(&fakeLoki{token: token, status: 200, body: vector("7")})
	t.Cleanup(srv.Close)
	md := map[string]string{"serverAddress": srv.URL, "query": "sum(x)", "threshold": "1", "authModes": "bearer"}
	if v, active, err := sample(newScaler(t, md, map[string]string{"bearerToken": token})); err != nil || v != 7 || !active {
		t.Fatalf("good token: (%v, %v, %v), want (7, true, nil)", v, active, err)
	}
	logger, logs := scalertest.ObservedLogger()
	cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: md, AuthParams: map[string]string{"bearerToken": "wrong-token-secret"}, Logger: logger}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	_, _, err = sample(s.(*Scaler))
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("wrong token: error %v, want HTTP 401", err)
	}
	scalertest.AssertNoSecret(t, "wrong-token-secret", err.Error(), logs.All())
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	_, _, err := sample(newScaler(t, map[string]string{"serverAddress": addr, "query": "sum(x)", "threshold": "1"}, nil))
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("error %v, want a connection error", err)
	}
}

// BenchmarkSample measures one Sample against an in-process fake of Loki's query API.
func BenchmarkSample(b *testing.B) {
	srv := httptest.NewServer(&fakeLoki{status: 200, body: vector("3")})
	b.Cleanup(srv.Close)
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"serverAddress": srv.URL, "query": "sum(x)", "threshold": "1"}, nil))
}
