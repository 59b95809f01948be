package datadog

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Auth: keys, Check: func(t *testing.T, m Metadata) {
			if m.QueryValue != 7 || m.ActivationQueryValue != 0 || m.Age != 90 || m.TimeWindowOffset != 0 || m.LastAvailablePointOffset != 0 ||
				m.MetricUnavailableValue != nil || m.QueryAggregator != "" || m.queryURL.String() != "https://api.datadoghq.com/api/v1/query" ||
				m.metricPart != "sum:trace.http.request.hits" {
				t.Errorf("defaults wrong: %+v url=%s", m, m.queryURL)
			}
		}},
		{Name: "every field", MD: base("queryValue", scalertest.Delete, "targetValue", "2.5", "activationQueryValue", "1", "queryAggregator", "average",
			"age", "300", "timeWindowOffset", "30", "lastAvailablePointOffset", "1", "metricUnavailableValue", "0", "timeout", "10s"),
			Auth: map[string]string{"apiKey": "a", "appKey": "b", "datadogSite": "datadoghq.eu"}, Check: func(t *testing.T, m Metadata) {
				if m.QueryValue != 2.5 || m.ActivationQueryValue != 1 || m.QueryAggregator != "average" || m.Age != 300 || m.TimeWindowOffset != 30 ||
					m.LastAvailablePointOffset != 1 || m.MetricUnavailableValue == nil || *m.MetricUnavailableValue != 0 || m.Timeout != 10*time.Second ||
					m.queryURL.String() != "https://api.datadoghq.eu/api/v1/query" {
					t.Errorf("fields wrong: %+v url=%s", m, m.queryURL)
				}
			}},
		{Name: "missing query", MD: base("query", scalertest.Delete), Auth: keys, WantErr: "query"},
		{Name: "query without scope", MD: base("query", "avg:system.load.1"), Auth: keys, WantErr: "query"},
		{Name: "missing queryValue", MD: base("queryValue", scalertest.Delete), Auth: keys, WantErr: "queryValue"},
		{Name: "non-numeric queryValue", MD: base("queryValue", "seven"), Auth: keys, WantErr: "queryValue"},
		{Name: "zero queryValue", MD: base("queryValue", "0"), Auth: keys, WantErr: "queryValue"},
		{Name: "non-numeric activationQueryValue", MD: base("activationQueryValue", "x"), Auth: keys, WantErr: "activationQueryValue"},
		{Name: "unknown queryAggregator", MD: base("queryAggregator", "sum"), Auth: keys, WantErr: "queryAggregator"},
		{Name: "non-numeric age", MD: base("age", "5m"), Auth: keys, WantErr: "age"},
		{Name: "zero age", MD: base("age", "0"), Auth: keys, WantErr: "age"},
		{Name: "negative timeWindowOffset", MD: base("timeWindowOffset", "-30"), Auth: keys, WantErr: "timeWindowOffset"},
		{Name: "negative lastAvailablePointOffset", MD: base("lastAvailablePointOffset", "-1"), Auth: keys, WantErr: "lastAvailablePointOffset"},
		{Name: "non-numeric metricUnavailableValue", MD: base("metricUnavailableValue", "none"), Auth: keys, WantErr: "metricUnavailableValue"},
		{Name: "bad timeout", MD: base("timeout", "soon"), Auth: keys, WantErr: "timeout"},
		{Name: "cluster agent proxy", MD: base("useClusterAgentProxy", "true"), Auth: keys, WantErr: "useClusterAgentProxy"},
		{Name: "deprecated type", MD: base("type", "global"), Auth: keys, WantErr: "type"},
		{Name: "missing apiKey", MD: base(), Auth: map[string]string{"appKey": "b"}, WantErr: "apiKey"},
		{Name: "missing appKey", MD: base(), Auth: map[string]string{"apiKey": "a"}, WantErr: "appKey"},
		{Name: "bad datadogSite", MD: base(), Auth: map[string]string{"apiKey": "a", "appKey": "b", "datadogSite": "datadoghq.eu/path"}, WantErr: "datadogSite"},
	})
}

// fakeDatadog serves GET /api/v1/query as Datadog documents it: DD-API-KEY and DD-APPLICATION-KEY headers, from,
// to (epoch seconds) and query parameters, and a series list whose pointlist holds [ms timestamp, value] pairs.
type fakeDatadog struct {
	scalertest.Canned
	from, to int64
	query    string
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
	f.Mu.Lock()
	defer f.Mu.Unlock()
	q := r.URL.Query()
	f.from, _ = strconv.ParseInt(q.Get("from"), 10, 64)
	f.to, _ = strconv.ParseInt(q.Get("to"), 10, 64)
	f.query = q.Get("query")
	if f.Status == http.StatusTooManyRequests {
		w.Header().Set("X-RateLimit-Limit", "1600")
		w.Header().Set("X-RateLimit-Period", "3600")
		w.Header().Set("X-RateLimit-Reset", "42")
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
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
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "hits", md, auth))
}

func TestSample(t *testing.T) {
	t.Parallel()
	f := &fakeDatadog{}
	srv := scalertest.Serve(t, f)
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
			f.Set(tc.status, tc.body)
			if !scalertest.ExpectSample(t, s, `datadog trigger "hits"`, tc.want, tc.wantActive, tc.wantErr) {
				return
			}
			f.Mu.Lock()
			from, to, q := f.from, f.to, f.query
			f.Mu.Unlock()
			if to != 1700001000-30 || from != to-120 || q != query {
				t.Fatalf("window [%d, %d] query %q, want [%d, %d] %q", from, to, q, 1700001000-30-120, 1700001000-30, query)
			}
		})
	}
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	srv := scalertest.Serve(t, &fakeDatadog{Canned: scalertest.Canned{Status: 200, Body: seriesBody([]string{"1"})}})
	err := scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "", map[string]string{"query": "avg:x{*}", "queryValue": "1"},
		map[string]string{"apiKey": "wrong-api-key-123", "appKey": appKey, "datadogSite": srv.URL}), "403", "wrong-api-key-123", appKey)
	if !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("error %v, want unauthorized HTTP 403", err)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	addr := scalertest.ClosedURL(t)
	scalertest.ExpectConnectError(t, newScaler(t, addr, map[string]string{"query": "avg:x{*}", "queryValue": "1"}, nil))
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
	srv := scalertest.Serve(b, &fakeDatadog{Canned: scalertest.Canned{Status: 200, Body: seriesBody([]string{"1", "2", "null"})}})
	scalertest.BenchmarkSample(b, newScaler(b, srv.URL, map[string]string{"query": "avg:x{*}", "queryValue": "1"}, nil))
}
