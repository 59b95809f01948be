package datadog

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const (
	apiKey = "dd-api-key-0123456789"
	appKey = "dd-app-key-9876543210"
)

var keys = map[string]string{"apiKey": apiKey, "appKey": appKey}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"query": "sum:trace.http.request.hits{service:api}.as_count()", "queryValue": "7"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	tests := []struct {
		name    string
		md      map[string]string
		auth    map[string]string
		wantErr string
		check   func(t *testing.T, m Metadata)
	}{
		{name: "defaults", md: base(), auth: keys, check: func(t *testing.T, m Metadata) {
			if m.QueryValue != 7 || m.ActivationQueryValue != 0 || m.Age != 90 || m.TimeWindowOffset != 0 || m.LastAvailablePointOffset != 0 ||
				m.MetricUnavailableValue != nil || m.QueryAggregator != "" || m.queryURL.String() != "https://api.datadoghq.com/api/v1/query" ||
				m.metricPart != "sum:trace.http.request.hits" {
				t.Errorf("defaults wrong: %+v url=%s", m, m.queryURL)
			}
		}},
		{name: "every field", md: base("queryValue", scalertest.Delete, "targetValue", "2.5", "activationQueryValue", "1", "queryAggregator", "average",
			"age", "300", "timeWindowOffset", "30", "lastAvailablePointOffset", "1", "metricUnavailableValue", "0", "timeout", "10s"),
			auth: map[string]string{"apiKey": "a", "appKey": "b", "datadogSite": "datadoghq.eu"}, check: func(t *testing.T, m Metadata) {
				if m.QueryValue != 2.5 || m.ActivationQueryValue != 1 || m.QueryAggregator != "average" || m.Age != 300 || m.TimeWindowOffset != 30 ||
					m.LastAvailablePointOffset != 1 || m.MetricUnavailableValue == nil || *m.MetricUnavailableValue != 0 || m.Timeout != 10*time.Second ||
					m.queryURL.String() != "https://api.datadoghq.eu/api/v1/query" {
					t.Errorf("fields wrong: %+v url=%s", m, m.queryURL)
				}
			}},
		{name: "missing query", md: base("query", scalertest.Delete), auth: keys, wantErr: "query"},
		{name: "query without scope", md: base("query", "avg:system.load.1"), auth: keys, wantErr: "query"},
		{name: "missing queryValue", md: base("queryValue", scalertest.Delete), auth: keys, wantErr: "queryValue"},
		{name: "non-numeric queryValue", md: base("queryValue", "seven"), auth: keys, wantErr: "queryValue"},
		{name: "zero queryValue", md: base("queryValue", "0"), auth: keys, wantErr: "queryValue"},
		{name: "non-numeric activationQueryValue", md: base("activationQueryValue", "x"), auth: keys, wantErr: "activationQueryValue"},
		{name: "unknown queryAggregator", md: base("queryAggregator", "sum"), auth: keys, wantErr: "queryAggregator"},
		{name: "non-numeric age", md: base("age", "5m"), auth: keys, wantErr: "age"},
		{name: "zero age", md: base("age", "0"), auth: keys, wantErr: "age"},
		{name: "negative timeWindowOffset", md: base("timeWindowOffset", "-30"), auth: keys, wantErr: "timeWindowOffset"},
		{name: "negative lastAvailablePointOffset", md: base("lastAvailablePointOffset", "-1"), auth: keys, wantErr: "lastAvailablePointOffset"},
		{name: "non-numeric metricUnavailableValue", md: base("metricUnavailableValue", "none"), auth: keys, wantErr: "metricUnavailableValue"},
		{name: "bad timeout", md: base("timeout", "soon"), auth: keys, wantErr: "timeout"},
		{name: "cluster agent proxy", md: base("useClusterAgentProxy", "true"), auth: keys, wantErr: "useClusterAgentProxy"},
		{name: "deprecated type", md: base("type", "global"), auth: keys, wantErr: "type"},
		{name: "missing apiKey", md: base(), auth: map[string]string{"appKey": "b"}, wantErr: "apiKey"},
		{name: "missing appKey", md: base(), auth: map[string]string{"apiKey": "a"}, wantErr: "appKey"},
		{name: "bad datadogSite", md: base(), auth: map[string]string{"apiKey": "a", "appKey": "b", "datadogSite": "datadoghq.eu/path"}, wantErr: "datadogSite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: tc.md, AuthParams: tc.auth}
			var m Metadata
			err := scalers.Parse(cfg, &m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "datadog trigger") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to name the datadog trigger and %q", err, tc.wantErr)
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

// fakeDatadog serves GET /api/v1/query as Datadog documents it: DD-API-KEY and DD-APPLICATION-KEY headers, from,
// to (epoch seconds) and query parameters, and a series list whose pointlist holds [ms timestamp, value] pairs.
type fakeDatadog struct {
	mu       sync.Mutex
	status   int
	body     string
	from, to int64
	query    string
}

func (f *fakeDatadog) set(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeDatadog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/api/v1/query" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":["Not found"]}`))
		return
	}
	if r.Header.Get("DD-API-KEY") != apiKey || r.Header.Get("DD-APPLICATION-KEY") != appKey {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["Forbidden"]}`))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	f.from, _ = strconv.ParseInt(q.Get("from"), 10, 64)
	f.to, _ = strconv.ParseInt(q.Get("to"), 10, 64)
	f.query = q.Get("query")
	if f.status == http.StatusTooManyRequests {
		w.Header().Set("X-RateLimit-Limit", "1600")
		w.Header().Set("X-RateLimit-Period", "3600")
		w.Header().Set("X-RateLimit-Reset", "42")
	}
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
}

// seriesBody renders a query response with one series per pointlist; "null" is a missing point.
func seriesBody(pointlists ...[]string) string {
	var series []string
	for i, pl := range pointlists {
		var pts []string
		for j, v := range pl {
			pts = append(pts, fmt.Sprintf("[%d.0,%s]", 1700000000000+int64(j)*60000, v))
		}
		series = append(series, fmt.Sprintf(`{"metric":"trace.http.request.hits","display_name":"trace.http.request.hits","pointlist":[%s],"scope":"service:api%d","expression":"sum:trace.http.request.hits{service:api%d}","length":%d,"interval":60,"aggr":"sum","unit":null,"tag_set":[],"start":1700000000000,"end":1700000300000}`,
			strings.Join(pts, ","), i, i, len(pts)))
	}
	return `{"status":"ok","res_type":"time_series","resp_version":1,"query":"sum:trace.http.request.hits{service:api}","message":"","group_by":[],"from_date":1700000000000,"to_date":1700000300000,"series":[` +
		strings.Join(series, ",") + `]}`
}

func newScaler(tb testing.TB, url string, md, auth map[string]string) *Scaler {
	tb.Helper()
	if auth == nil {
		auth = map[string]string{"apiKey": apiKey, "appKey": appKey}
	}
	auth["datadogSite"] = url
	cfg := &scalers.TriggerConfig{Type: TriggerType, Name: "hits", Metadata: md, AuthParams: auth, Shared: scalers.NewShared()}
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
	f := &fakeDatadog{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	const query = "sum:trace.http.request.hits{service:api}.as_count()"
	tests := []struct {
		name       string
		extra      []string
		status     int
		body       string
		want       float64
		wantActive bool
		wantErr    string
	}{
		{name: "zero", status: 200, body: seriesBody([]string{"0"}), want: 0},
		{name: "below activation", status: 200, body: seriesBody([]string{"9", "2"}), want: 2},
		{name: "above target uses the newest non-null point", status: 200, body: seriesBody([]string{"1", "40", "null"}), want: 40, wantActive: true},
		{name: "lastAvailablePointOffset", extra: []string{"lastAvailablePointOffset", "1"}, status: 200, body: seriesBody([]string{"11", "40", "null"}), want: 11, wantActive: true},
		{name: "offset beyond the points", extra: []string{"lastAvailablePointOffset", "3"}, status: 200, body: seriesBody([]string{"1", "2"}), wantErr: "lastAvailablePointOffset"},
		{name: "several series need an aggregator", status: 200, body: seriesBody([]string{"1"}, []string{"3"}), wantErr: "queryAggregator"},
		{name: "max aggregator", extra: []string{"queryAggregator", "max"}, status: 200, body: seriesBody([]string{"1"}, []string{"30"}), want: 30, wantActive: true},
		{name: "average aggregator", extra: []string{"queryAggregator", "average"}, status: 200, body: seriesBody([]string{"1"}, []string{"30"}), want: 15.5, wantActive: true},
		{name: "no series", status: 200, body: seriesBody(), wantErr: "no Datadog metrics"},
		{name: "no series with metricUnavailableValue", extra: []string{"metricUnavailableValue", "1.5"}, status: 200, body: seriesBody(), want: 1.5},
		{name: "only null points", status: 200, body: seriesBody([]string{"null"}), wantErr: "no Datadog metrics"},
		{name: "422 with metricUnavailableValue", extra: []string{"metricUnavailableValue", "0"}, status: 422, body: `{"errors":["Metric not found"]}`, want: 0},
		{name: "422 without metricUnavailableValue", status: 422, body: `{"errors":["Metric not found"]}`, wantErr: "Metric not found"},
		{name: "bad query", status: 400, body: `{"errors":["Error parsing query: unable to parse"]}`, wantErr: "HTTP 400: Error parsing query"},
		{name: "rate limited", status: 429, body: `{"errors":["Too many requests"]}`, wantErr: "reset in 42 s"},
		{name: "status error", status: 200, body: `{"status":"error","error":"query timed out","series":[]}`, wantErr: "query timed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := scalertest.WithPairs(map[string]string{"query": query, "queryValue": "10", "activationQueryValue": "5", "age": "120", "timeWindowOffset": "30"}, tc.extra...)
			s := newScaler(t, srv.URL, md, nil)
			s.now = func() time.Time { return time.Unix(1700001000, 0) }
			f.set(tc.status, tc.body)
			v, active, err := sample(s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `datadog trigger "hits"`) {
					t.Fatalf("Sample error = %v, want one naming the trigger and containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || v != tc.want || active != tc.wantActive {
				t.Fatalf("Sample = (%v, %v, %v), want (%v, %v)", v, active, err, tc.want, tc.wantActive)
			}
			f.mu.Lock()
			from, to, q := f.from, f.to, f.query
			f.mu.Unlock()
			if to != 1700001000-30 || from != to-120 || q != query {
				t.Fatalf("window [%d, %d] query %q, want [%d, %d] %q", from, to, q, 1700001000-30-120, 1700001000-30, query)
			}
		})
	}
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakeDatadog{status: 200, body: seriesBody([]string{"1"})})
	t.Cleanup(srv.Close)
	logger, logs := scalertest.ObservedLogger()
	cfg := &scalers.TriggerConfig{Type: TriggerType, Logger: logger, Metadata: map[string]string{"query": "avg:x{*}", "queryValue": "1"},
		AuthParams: map[string]string{"apiKey": "wrong-api-key-123", "appKey": appKey, "datadogSite": srv.URL}}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	_, _, err = sample(s.(*Scaler))
	if err == nil || !strings.Contains(err.Error(), "unauthorized") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("error %v, want unauthorized HTTP 403", err)
	}
	scalertest.AssertNoSecret(t, "wrong-api-key-123", err.Error(), logs.All())
	scalertest.AssertNoSecret(t, appKey, err.Error(), logs.All())
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	_, _, err := sample(newScaler(t, addr, map[string]string{"query": "avg:x{*}", "queryValue": "1"}, nil))
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("error %v, want a connection error", err)
	}
}

func TestMetricName(t *testing.T) {
	t.Parallel()
	s := newScaler(t, "http://127.0.0.1:1", map[string]string{"query": "sum:trace.http.request.hits{service:api}", "queryValue": "1"}, nil)
	if got := s.MetricSpecs()[0].External.Metric.Name; got != "s0-datadog-sum-trace-http-request-hits" {
		t.Fatalf("metric name %q", got)
	}
}

// BenchmarkSample measures one Sample against an in-process fake of the Datadog query API.
func BenchmarkSample(b *testing.B) {
	srv := httptest.NewServer(&fakeDatadog{status: 200, body: seriesBody([]string{"1", "2", "null"})})
	b.Cleanup(srv.Close)
	scalertest.BenchmarkSample(b, newScaler(b, srv.URL, map[string]string{"query": "avg:x{*}", "queryValue": "1"}, nil))
}
