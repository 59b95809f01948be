package prometheus

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth/oauthtest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// fakeAPI serves /api/v1/query with a configurable status and body, and records each request.
type fakeAPI struct {
	scalertest.Canned
	query  url.Values
	header http.Header
	host   string
	calls  int
}

func (f *fakeAPI) last() (url.Values, http.Header, string, int) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return f.query, f.header, f.host, f.calls
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/prefix/api/v1/query" && r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	f.Mu.Lock()
	f.query, f.header, f.host = r.URL.Query(), r.Header.Clone(), r.Host
	f.calls++
	status, body := f.Status, f.Body
	f.Mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func vector(values ...string) string {
	var parts []string
	for i, v := range values {
		parts = append(parts, `{"metric":{"__name__":"up","instance":"i`+string(rune('0'+i))+`"},"value":[1700000000.123,"`+v+`"]}`)
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(parts, ",") + `]}}`
}

func newScaler(t testing.TB, md, auth map[string]string) *Scaler {
	t.Helper()
	return scalertest.New[*Scaler](t, New, scalertest.Config(TriggerType, "", md, auth))
}

// sampleErr samples s once; anything but one value under s's metric name is an error.
func sampleErr(s *Scaler) (float64, bool, error) { return scalertest.FirstNamed(s, s.MetricName()) }

func TestResultHandling(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	srv := scalertest.Serve(t, api)
	tests := []struct {
		name       string
		status     int
		body       string
		ignoreNull string
		want       float64
		wantActive bool
		wantErr    string
	}{
		{name: "one series", status: 200, body: vector("42.5"), want: 42.5, wantActive: true},
		{name: "value at activation threshold is inactive", status: 200, body: vector("5"), want: 5},
		{name: "zero", status: 200, body: vector("0"), want: 0},
		{name: "empty result ignored", status: 200, body: vector(), want: 0},
		{name: "empty result is an error without ignoreNullValues", status: 200, body: vector(), ignoreNull: "false", wantErr: "empty"},
		{name: "empty value list ignored", status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[]}]}}`, want: 0},
		{name: "multiple series", status: 200, body: vector("1", "2"), wantErr: "2 series"},
		{name: "NaN ignored", status: 200, body: vector("NaN"), want: 0},
		{name: "NaN is an error without ignoreNullValues", status: 200, body: vector("NaN"), ignoreNull: "false", wantErr: "NaN"},
		{name: "+Inf is an error without ignoreNullValues", status: 200, body: vector("+Inf"), ignoreNull: "false", wantErr: "Inf"},
		{name: "scalar", status: 200, body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"7"]}}`, want: 7, wantActive: true},
		{name: "matrix is unsupported", status: 200, body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`, wantErr: "matrix"},
		{name: "non-numeric value", status: 200, body: vector("abc"), wantErr: "not a number"},
		{name: "bad_data error from the API", status: 400, body: `{"status":"error","errorType":"bad_data","error":"parse error at char 3"}`, wantErr: "parse error at char 3"},
		{name: "server error without JSON", status: 502, body: "bad gateway", wantErr: "HTTP 502"},
		{name: "invalid JSON", status: 200, body: "{", wantErr: "decoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"serverAddress": srv.URL, "query": "sum(up)", "threshold": "10", "activationThreshold": "5"}
			if tc.ignoreNull != "" {
				md["ignoreNullValues"] = tc.ignoreNull
			}
			s := newScaler(t, md, nil)
			api.Set(tc.status, tc.body)
			// Subtests share the server; run them serially so each sees its own body.
			scalertest.ExpectSample(t, s, "prometheus trigger", tc.want, tc.wantActive, tc.wantErr)
		})
	}
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{Canned: scalertest.Canned{Status: 200, Body: vector("3")}}
	srv := scalertest.Serve(t, api)
	s := newScaler(t, map[string]string{
		"serverAddress": srv.URL + "/prefix/", "query": `sum(rate(http_requests_total{job="api"}[1m]))`, "threshold": "1",
		"namespace": "team-a", "queryParameters": "dedup=true,partial_response=false",
		"customHeaders": "X-Scope-OrgID=tenant1,Host=prom.example", "authModes": "bearer",
	}, map[string]string{"bearerToken": "tok-123"})
	before := time.Now().Add(-time.Second)
	if _, _, err := sampleErr(s); err != nil {
		t.Fatal(err)
	}
	q, h, host, _ := api.last()
	if got := q.Get("query"); got != `sum(rate(http_requests_total{job="api"}[1m]))` {
		t.Errorf("query = %q", got)
	}
	ts, err := time.Parse(time.RFC3339, q.Get("time"))
	if err != nil || ts.Before(before.Truncate(time.Second)) {
		t.Errorf("time = %q (%v), want the current time in RFC3339", q.Get("time"), err)
	}
	for k, want := range map[string]string{"namespace": "team-a", "dedup": "true", "partial_response": "false"} {
		if q.Get(k) != want {
			t.Errorf("query parameter %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if h.Get("X-Scope-OrgID") != "tenant1" || host != "prom.example" {
		t.Errorf("headers X-Scope-OrgID=%q host=%q", h.Get("X-Scope-OrgID"), host)
	}
	if h.Get("Authorization") != "Bearer tok-123" {
		t.Errorf("Authorization = %q", h.Get("Authorization"))
	}
}

func TestAuthModes(t *testing.T) {
	t.Parallel()
	pki := scalertest.NewPKI(t)
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, basic := r.BasicAuth()
		ok := r.Header.Get("Authorization") == "Bearer good-token" || (basic && u == "alice" && p == "good-pass") ||
			r.Header.Get("X-Auth") == "good-custom" || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"unauthorized","error":"no credentials"}`))
			return
		}
		_, _ = w.Write([]byte(vector("9")))
	})
	plain, withTLS := scalertest.AuthServers(t, pki, auth)
	scalertest.AuthTable(t, TriggerType, New, func(url string) map[string]string {
		return map[string]string{"serverAddress": url, "query": "up", "threshold": "1"}
	}, 9, []scalertest.AuthCase{
		{Name: "bearer", URL: plain.URL, MD: map[string]string{"authModes": "bearer"}, Auth: map[string]string{"bearerToken": "good-token"}},
		{Name: "basic", URL: plain.URL, MD: map[string]string{"authModes": "basic"}, Auth: map[string]string{"username": "alice", "password": "good-pass"}},
		{Name: "custom", URL: plain.URL, MD: map[string]string{"authModes": "custom"}, Auth: map[string]string{"customAuthHeader": "X-Auth", "customAuthValue": "good-custom"}},
		{Name: "tls client certificate", URL: withTLS.URL, MD: map[string]string{"authModes": "tls"}, Auth: map[string]string{"ca": pki.CA, "cert": pki.ClientCert, "key": pki.ClientKey}},
		{Name: "ca with bearer", URL: withTLS.URL, MD: map[string]string{"authModes": "bearer"}, Auth: map[string]string{"ca": pki.CA, "bearerToken": "good-token"}},
		{Name: "unsafeSsl with bearer", URL: withTLS.URL, MD: map[string]string{"authModes": "bearer", "unsafeSsl": "true"}, Auth: map[string]string{"bearerToken": "good-token"}},
		{Name: "no credentials", URL: plain.URL, WantErr: "HTTP 401"},
		{Name: "unknown CA", URL: withTLS.URL, MD: map[string]string{"authModes": "bearer"}, Auth: map[string]string{"bearerToken": "good-token"}, WantErr: "certificate"},
	})
}

// TestOAuth: authModes oauth against an RFC 6749 client-credentials token endpoint and a resource server that
// checks the bearer token.
func TestOAuth(t *testing.T) {
	t.Parallel()
	oauthtest.CheckScaler(t, oauthtest.ScalerCase{Type: TriggerType, New: New, Want: 9,
		Resource: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(vector("9"))) }),
		Metadata: func(u string) map[string]string {
			return map[string]string{"serverAddress": u, "query": "up", "threshold": "1", "authModes": "oauth"}
		}})
}

func TestCredentialsNeverLeak(t *testing.T) {
	t.Parallel()
	const token, pass = "wrong-token-0123456789", "wrong-pass-9876543210"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A hostile or buggy server echoing the credential back must not make it into the error.
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"unauthorized","error":"bad credential ` + r.Header.Get("Authorization") + `"}`))
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name   string
		mode   string
		auth   map[string]string
		secret string
	}{
		{name: "bearer", mode: "bearer", auth: map[string]string{"bearerToken": token}, secret: token},
		{name: "basic", mode: "basic", auth: map[string]string{"username": "bob", "password": pass}, secret: pass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := scalertest.ObservedLogger()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Logger: logger, AuthParams: tc.auth,
				Metadata: map[string]string{"serverAddress": srv.URL, "query": "up", "threshold": "1", "authModes": tc.mode}}
			cfg.Normalize()
			s, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			_, _, err = s.Sample(context.Background())
			if err == nil {
				t.Fatal("Sample succeeded against a server refusing the credential")
			}
			scalertest.AssertNoSecret(t, tc.secret, err.Error(), logs.All())
		})
	}
}

func TestSharedTransport(t *testing.T) {
	t.Parallel()
	shared := scalers.NewShared()
	var ss []scalers.Scaler
	for i := 0; i < 3; i++ {
		cfg := &scalers.TriggerConfig{Type: TriggerType, Index: i, Shared: shared,
			Metadata: map[string]string{"serverAddress": "http://127.0.0.1:1", "query": "up", "threshold": "1"}}
		cfg.Normalize()
		s, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	if shared.Len() != 1 {
		t.Fatalf("shared transports = %d, want 1", shared.Len())
	}
	for _, s := range ss {
		_ = s.Close(context.Background())
	}
	if shared.Len() != 0 {
		t.Fatalf("shared transports after Close = %d, want 0", shared.Len())
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	s := newScaler(t, map[string]string{"serverAddress": addr, "query": "up", "threshold": "1", "timeout": "2000"}, nil)
	_, _, err := sampleErr(s)
	if err == nil || !strings.Contains(err.Error(), "prometheus trigger") {
		t.Fatalf("Sample error = %v, want one naming the prometheus trigger", err)
	}
}

func BenchmarkSample(b *testing.B) {
	api := &fakeAPI{Canned: scalertest.Canned{Status: 200, Body: vector("12.5")}}
	srv := scalertest.Serve(b, api)
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"serverAddress": srv.URL, "query": "sum(up)", "threshold": "1"}, nil))
}
