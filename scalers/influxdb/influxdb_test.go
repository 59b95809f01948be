package influxdb

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const token = "influx-token-0123456789"

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"serverURL": "http://influx:8086", "organizationName": "acme", "thresholdValue": "4",
		"query": `from(bucket:"jobs") |> range(start: -1m) |> count()`}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	auth := map[string]string{"authToken": token}
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.ThresholdValue != 4 || m.ActivationThresholdValue != 0 || m.UnsafeSsl || m.InfluxVersion != "2" || m.AuthToken != token {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "token from env, server and org from authParams", MD: base("serverURL", scalertest.Delete, "organizationName", scalertest.Delete,
			"authTokenFromEnv", "INFLUX_TOKEN", "activationThresholdValue", "1.5", "unsafeSsl", "true"),
			Auth: map[string]string{"serverURL": "https://influx:8086", "organizationName": "org2"}, Env: map[string]string{"INFLUX_TOKEN": "t"},
			Check: func(t *testing.T, m Metadata) {
				if m.AuthToken != "t" || m.ServerURL != "https://influx:8086" || m.OrganizationName != "org2" || m.ActivationThresholdValue != 1.5 || !m.UnsafeSsl {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "missing serverURL", MD: base("serverURL", scalertest.Delete), Auth: auth, WantErr: "serverURL"},
		{Name: "bad serverURL", MD: base("serverURL", "influx:8086"), Auth: auth, WantErr: "serverURL"},
		{Name: "missing organizationName", MD: base("organizationName", scalertest.Delete), Auth: auth, WantErr: "organizationName"},
		{Name: "missing query", MD: base("query", scalertest.Delete), Auth: auth, WantErr: "query"},
		{Name: "missing thresholdValue", MD: base("thresholdValue", scalertest.Delete), Auth: auth, WantErr: "thresholdValue"},
		{Name: "non-numeric thresholdValue", MD: base("thresholdValue", "four"), Auth: auth, WantErr: "thresholdValue"},
		{Name: "zero thresholdValue", MD: base("thresholdValue", "0"), Auth: auth, WantErr: "thresholdValue"},
		{Name: "non-numeric activationThresholdValue", MD: base("activationThresholdValue", "x"), Auth: auth, WantErr: "activationThresholdValue"},
		{Name: "bad unsafeSsl", MD: base("unsafeSsl", "maybe"), Auth: auth, WantErr: "unsafeSsl"},
		{Name: "influxVersion 3", MD: base("influxVersion", "3"), Auth: auth, WantErr: "influxVersion"},
		{Name: "unknown influxVersion", MD: base("influxVersion", "1"), Auth: auth, WantErr: "influxVersion"},
		{Name: "missing authToken", MD: base(), WantErr: "authToken"},
		{Name: "authTokenFromEnv naming a missing variable", MD: base("authTokenFromEnv", "NOPE"), WantErr: "authTokenFromEnv"},
	})
}

func TestPlainAuthTokenInMetadataIsRefused(t *testing.T) {
	t.Parallel()
	cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{"serverURL": "http://i", "organizationName": "o",
		"query": "q", "thresholdValue": "1", "authToken": "plain-secret-token"}}
	_, err := New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "authToken") || strings.Contains(err.Error(), "plain-secret-token") {
		t.Fatalf("error %v, want one naming authToken without its value", err)
	}
}

// fakeInflux serves InfluxDB 2's POST /api/v2/query?org= : a Token authorization header, a Flux query in a JSON
// body, and an annotated CSV response (or a JSON error with code and message).
type fakeInflux struct {
	scalertest.Canned
	org   string
	query string
}

func (f *fakeInflux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v2/query" || r.Method != http.MethodPost {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"code":"not found","message":"path not found"}`))
		return
	}
	if r.Header.Get("Authorization") != "Token "+token {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"code":"unauthorized","message":"unauthorized access"}`))
		return
	}
	var req struct {
		Query string `json:"query"`
		Type  string `json:"type"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.org, f.query = r.URL.Query().Get("org"), req.Query
	if f.Status != http.StatusOK {
		f.Reply(w, "application/json")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	_, _ = w.Write([]byte(f.Body))
}

// csvResult is an annotated CSV table with one record per value, of the given Flux datatype.
func csvResult(datatype string, values ...string) string {
	var b strings.Builder
	b.WriteString("#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339," + datatype + ",string,string\r\n")
	b.WriteString("#group,false,false,true,true,false,true,true\r\n")
	b.WriteString("#default,_result,,,,,,\r\n")
	b.WriteString(",result,table,_start,_stop,_value,_field,_measurement\r\n")
	for _, v := range values {
		b.WriteString(",,0,2026-12-06T20:00:00Z,2026-12-06T20:01:00Z," + v + ",queued,jobs\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func newScaler(tb testing.TB, url string, md, auth map[string]string) *Scaler {
	tb.Helper()
	if auth == nil {
		auth = map[string]string{"authToken": token}
	}
	md = scalertest.WithPairs(md, "serverURL", url)
	return scalertest.New[*Scaler](tb, New, &scalers.TriggerConfig{Type: TriggerType, Name: "jobs", Metadata: md, AuthParams: auth, Shared: scalers.NewShared()})
}

func TestSample(t *testing.T) {
	t.Parallel()
	f := &fakeInflux{}
	srv := scalertest.Serve(t, f)
	const query = `from(bucket:"jobs") |> range(start: -1m) |> filter(fn: (r) => r._field == "queued") |> last()`
	tests := []struct {
		name       string
		status     int
		body       string
		want       float64
		wantActive bool
		wantErr    string
	}{
		{name: "zero", status: 200, body: csvResult("double", "0"), want: 0},
		{name: "below activation", status: 200, body: csvResult("double", "1.5"), want: 1.5},
		{name: "above target", status: 200, body: csvResult("long", "42", "7"), want: 42, wantActive: true},
		{name: "unsigned", status: 200, body: csvResult("unsignedLong", "9"), want: 9, wantActive: true},
		{name: "no records", status: 200, body: "\r\n", wantErr: "no records"},
		{name: "string value", status: 200, body: csvResult("string", "busy"), wantErr: "string"},
		{name: "compile error", status: 400, body: `{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier fromm"}`, wantErr: "compilation failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScaler(t, srv.URL, map[string]string{"organizationName": "acme", "query": query, "thresholdValue": "10", "activationThresholdValue": "2"}, nil)
			f.Set(tc.status, tc.body)
			if !scalertest.ExpectSample(t, s, `influxdb trigger "jobs"`, tc.want, tc.wantActive, tc.wantErr) {
				return
			}
			f.Mu.Lock()
			org, q := f.org, f.query
			f.Mu.Unlock()
			if org != "acme" || q != query {
				t.Fatalf("server got org %q query %q", org, q)
			}
		})
	}
	if got := newScaler(t, srv.URL, map[string]string{"organizationName": "Acme Corp", "query": "q", "thresholdValue": "1"}, nil).MetricSpecs()[0].External.Metric.Name; got != "s0-influxdb-acme-corp" {
		t.Errorf("metric name %q", got)
	}
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	srv := scalertest.Serve(t, &fakeInflux{Canned: scalertest.Canned{Status: 200, Body: csvResult("double", "1")}})
	scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "", map[string]string{"serverURL": srv.URL, "organizationName": "acme", "query": "q", "thresholdValue": "1"},
		map[string]string{"authToken": "wrong-token-123"}), "HTTP 401", "wrong-token-123")
	if v, _, err := scalertest.First(newScaler(t, srv.URL, map[string]string{"organizationName": "acme", "query": "q", "thresholdValue": "1"}, nil)); err != nil || v != 1 {
		t.Fatalf("good token: (%v, %v), want 1", v, err)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	addr := scalertest.ClosedURL(t)
	scalertest.ExpectConnectError(t, newScaler(t, addr, map[string]string{"organizationName": "acme", "query": "q", "thresholdValue": "1"}, nil))
}

// BenchmarkSample measures one Sample against an in-process fake of InfluxDB 2's query API.
func BenchmarkSample(b *testing.B) {
	srv := scalertest.Serve(b, &fakeInflux{Canned: scalertest.Canned{Status: 200, Body: csvResult("double", "3")}})
	scalertest.BenchmarkSample(b, newScaler(b, srv.URL, map[string]string{"organizationName": "acme", "query": "q", "thresholdValue": "1"}, nil))
}
