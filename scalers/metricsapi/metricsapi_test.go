package metricsapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth/oauthtest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// queueAPI is a JSON metrics endpoint whose queue depth the test changes.
type queueAPI struct {
	mu    sync.Mutex
	depth int
}

func (q *queueAPI) set(d int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.depth = d
}

func (q *queueAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q.mu.Lock()
	d := q.depth
	q.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"components": map[string]any{"worker": map[string]any{"tasks": d, "memory": "512Mi"}},
		"queues":     []map[string]any{{"name": "a", "depth": d}, {"name": "b", "depth": 2 * d}},
	})
}

func newScaler(t testing.TB, md, auth map[string]string) *Scaler {
	t.Helper()
	return scalertest.New[*Scaler](t, New, scalertest.Config(TriggerType, "", md, auth))
}

// sample samples s once; anything but one value under s's metric name is an error.
func sample(s *Scaler) (float64, bool, error) { return scalertest.FirstNamed(s, s.MetricName()) }

func TestLoadThenDrain(t *testing.T) {
	t.Parallel()
	api := &queueAPI{}
	srv := scalertest.Serve(t, api)
	s := newScaler(t, map[string]string{
		"url": srv.URL + "/api/v1/stats", "valueLocation": "components.worker.tasks", "targetValue": "5", "activationTargetValue": "2",
	}, nil)
	if s.MetricName() != "s0-metric-api-components-worker-tasks" {
		t.Errorf("metric name = %q, want KEDA's s0-metric-api-components-worker-tasks", s.MetricName())
	}
	for _, step := range []struct {
		depth  int
		active bool
	}{{depth: 40, active: true}, {depth: 2, active: false}, {depth: 3, active: true}, {depth: 0, active: false}} {
		api.set(step.depth)
		v, active, err := sample(s)
		if err != nil || v != float64(step.depth) || active != step.active {
			t.Fatalf("depth %d: Sample = (%v, %v, %v), want (%d, %v, nil)", step.depth, v, active, err, step.depth, step.active)
		}
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "queue_depth", Help: "depth"}, []string{"queue", "env"})
	reg.MustRegister(g)
	g.WithLabelValues("orders", "prod").Set(17)
	g.WithLabelValues("billing", "prod").Set(4)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds", Help: "latency"})
	reg.MustRegister(h)
	promSrv := scalertest.Serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	bodies := map[string]string{
		"/json":    `{"a":{"b":[{"c":3.5},{"c":"250m"}]},"s":"lots","o":{},"t":true}`,
		"/yaml":    "a:\n  b:\n    - c: 7\n    - c: \"2k\"\n",
		"/xml":     `<?xml version="1.0"?><metrics><queue name="x"><depth>12</depth></queue><item>1</item><item>2</item></metrics>`,
		"/badjson": `{"a":`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(b))
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		url     string
		format  string
		loc     string
		want    float64
		wantErr string
	}{
		{name: "json number", url: srv.URL + "/json", loc: "a.b.0.c", want: 3.5},
		{name: "json quantity string", url: srv.URL + "/json", loc: "a.b.1.c", want: 0.25},
		{name: "json gjson query", url: srv.URL + "/json", loc: "a.b.#", want: 2},
		{name: "json missing", url: srv.URL + "/json", loc: "a.x", wantErr: "no value"},
		{name: "json non-quantity string", url: srv.URL + "/json", loc: "s", wantErr: "quantity"},
		{name: "json object", url: srv.URL + "/json", loc: "o", wantErr: "an object"},
		{name: "json boolean", url: srv.URL + "/json", loc: "t", wantErr: "a boolean"},
		{name: "invalid json", url: srv.URL + "/badjson", loc: "a", wantErr: "not valid JSON"},
		{name: "yaml", url: srv.URL + "/yaml", format: "yaml", loc: "a.b.0.c", want: 7},
		{name: "yaml quantity", url: srv.URL + "/yaml", format: "yaml", loc: "a.b.1.c", want: 2000},
		{name: "xml", url: srv.URL + "/xml", format: "xml", loc: "metrics.queue.depth", want: 12},
		{name: "xml repeated element", url: srv.URL + "/xml", format: "xml", loc: "metrics.item.1", want: 2},
		{name: "prometheus with labels", url: promSrv.URL, format: "prometheus", loc: `queue_depth{queue="orders"}`, want: 17},
		{name: "prometheus two labels", url: promSrv.URL, format: "prometheus", loc: `queue_depth{env="prod",queue="billing"}`, want: 4},
		{name: "prometheus unknown label value", url: promSrv.URL, format: "prometheus", loc: `queue_depth{queue="none"}`, wantErr: "no series"},
		{name: "prometheus unknown metric", url: promSrv.URL, format: "prometheus", loc: "nope", wantErr: "not found"},
		{name: "prometheus histogram", url: promSrv.URL, format: "prometheus", loc: "latency_seconds", wantErr: "histogram"},
		{name: "prometheus format on a JSON body", url: srv.URL + "/json", format: "prometheus", loc: "a", wantErr: "Prometheus text format"},
		{name: "HTTP 404", url: srv.URL + "/missing", loc: "a", wantErr: "HTTP 404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			md := map[string]string{"url": tc.url, "valueLocation": tc.loc, "targetValue": "1"}
			if tc.format != "" {
				md["format"] = tc.format
			}
			// activationTargetValue is 0: a positive value is active.
			scalertest.ExpectSample(t, newScaler(t, md, nil), "metrics-api trigger", tc.want, tc.want > 0, tc.wantErr)
		})
	}
}

func TestAuthModes(t *testing.T) {
	t.Parallel()
	pki := scalertest.NewPKI(t)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, basic := r.BasicAuth()
		ok := r.Header.Get("X-API-KEY") == "k-header" || r.Header.Get("X-Custom-Key") == "k-custom" ||
			r.URL.Query().Get("api_key") == "k-query" || r.URL.Query().Get("token_param") == "k-query2" ||
			(basic && u == "alice" && p == "pw") || r.Header.Get("Authorization") == "Bearer tok" ||
			(r.TLS != nil && len(r.TLS.PeerCertificates) > 0)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"v": 6}`))
	})
	plain, withTLS := scalertest.AuthServers(t, pki, handler)
	scalertest.AuthTable(t, TriggerType, New, func(url string) map[string]string {
		return map[string]string{"url": url, "valueLocation": "v", "targetValue": "3"}
	}, 6, []scalertest.AuthCase{
		{Name: "apiKey default header", URL: plain.URL, MD: map[string]string{"authMode": "apiKey"}, Auth: map[string]string{"apiKey": "k-header"}},
		{Name: "apiKey custom header", URL: plain.URL, MD: map[string]string{"authMode": "apiKey", "keyParamName": "X-Custom-Key"}, Auth: map[string]string{"apiKey": "k-custom"}},
		{Name: "apiKey default query", URL: plain.URL, MD: map[string]string{"authMode": "apiKey", "method": "query"}, Auth: map[string]string{"apiKey": "k-query"}},
		{Name: "apiKey named query", URL: plain.URL + "/?x=1", MD: map[string]string{"authMode": "apiKey", "method": "query", "keyParamName": "token_param"}, Auth: map[string]string{"apiKey": "k-query2"}},
		{Name: "basic", URL: plain.URL, MD: map[string]string{"authMode": "basic"}, Auth: map[string]string{"username": "alice", "password": "pw"}},
		{Name: "bearer", URL: plain.URL, MD: map[string]string{"authMode": "bearer"}, Auth: map[string]string{"token": "tok"}},
		{Name: "tls client certificate", URL: withTLS.URL, MD: map[string]string{"authMode": "tls"}, Auth: map[string]string{"ca": pki.CA, "cert": pki.ClientCert, "key": pki.ClientKey}},
		{Name: "ca with bearer", URL: withTLS.URL, MD: map[string]string{"authMode": "bearer"}, Auth: map[string]string{"ca": pki.CA, "token": "tok"}},
		{Name: "unsafeSsl with apiKey", URL: withTLS.URL, MD: map[string]string{"authMode": "apiKey", "unsafeSsl": "true"}, Auth: map[string]string{"apiKey": "k-header"}},
		{Name: "no credentials", URL: plain.URL, WantErr: "HTTP 401"},
		{Name: "unknown CA", URL: withTLS.URL, MD: map[string]string{"authMode": "bearer"}, Auth: map[string]string{"token": "tok"}, WantErr: "certificate"},
	})
}

// TestOAuth: authMode oauth against an RFC 6749 client-credentials token endpoint and a resource server that
// checks the bearer token.
func TestOAuth(t *testing.T) {
	t.Parallel()
	oauthtest.CheckScaler(t, oauthtest.ScalerCase{Type: TriggerType, New: New, Want: 6,
		Resource: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"v": 6}`)) }),
		Metadata: func(u string) map[string]string {
			return map[string]string{"url": u, "valueLocation": "v", "targetValue": "1", "authMode": "oauth"}
		}})
}

func TestCredentialsNeverLeak(t *testing.T) {
	t.Parallel()
	const key = "query-api-key-0123456789"
	srv := scalertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	for _, url := range []string{srv.URL, deadURL} {
		logger, logs := scalertest.ObservedLogger()
		cfg := &scalers.TriggerConfig{Type: TriggerType, Logger: logger, AuthParams: map[string]string{"apiKey": key},
			Metadata: map[string]string{"url": url + "/m", "valueLocation": "v", "targetValue": "1", "authMode": "apiKey", "method": "query"}}
		cfg.Normalize()
		s, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.Sample(context.Background())
		if err == nil {
			t.Fatalf("Sample against %s succeeded", url)
		}
		scalertest.AssertNoSecret(t, key, err.Error(), logs.All())
		_ = s.Close(context.Background())
	}
}

func BenchmarkSample(b *testing.B) {
	api := &queueAPI{depth: 12}
	srv := scalertest.Serve(b, api)
	s := newScaler(b, map[string]string{"url": srv.URL, "valueLocation": "queues.#(name==\"b\").depth", "targetValue": "5"}, nil)
	ctx := context.Background()
	if v, _, err := s.Sample(ctx); err != nil || v[0].Value != 24 {
		b.Fatalf("Sample = %v, %v; want 24", v, err)
	}
	scalertest.BenchmarkSample(b, s)
}
