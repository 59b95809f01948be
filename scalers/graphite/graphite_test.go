package graphite

import (
	"net/http"
	"testing"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"serverAddress": "http://graphite:8080", "query": "sumSeries(jobs.*.queued)", "queryTime": "-10Minutes"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Check: func(t *testing.T, m Metadata) {
			if m.Threshold != 100 || m.ActivationThreshold != 0 || m.AuthMode != "" || m.renderURL.String() != "http://graphite:8080/render" {
				t.Errorf("defaults wrong: %+v url=%s", m, m.renderURL)
			}
		}},
		{Name: "every field", MD: base("serverAddress", "https://g/prefix/", "threshold", "2.5", "activationThreshold", "1", "authMode", "basic"),
			Auth: map[string]string{"username": "u", "password": "p"}, Check: func(t *testing.T, m Metadata) {
				if m.Threshold != 2.5 || m.ActivationThreshold != 1 || m.Username != "u" || m.renderURL.String() != "https://g/prefix/render" {
					t.Errorf("fields wrong: %+v url=%s", m, m.renderURL)
				}
			}},
		{Name: "missing serverAddress", MD: base("serverAddress", scalertest.Delete), WantErr: "serverAddress"},
		{Name: "serverAddress without scheme", MD: base("serverAddress", "graphite:8080"), WantErr: "serverAddress"},
		{Name: "missing query", MD: base("query", scalertest.Delete), WantErr: "query"},
		{Name: "missing queryTime", MD: base("queryTime", scalertest.Delete), WantErr: "queryTime"},
		{Name: "blank queryTime", MD: base("queryTime", " "), WantErr: "queryTime"},
		{Name: "non-numeric threshold", MD: base("threshold", "lots"), WantErr: "threshold"},
		{Name: "negative threshold", MD: base("threshold", "-3"), WantErr: "threshold"},
		{Name: "non-numeric activationThreshold", MD: base("activationThreshold", "1,5"), WantErr: "activationThreshold"},
		{Name: "unknown authMode", MD: base("authMode", "bearer"), WantErr: "authMode"},
		{Name: "basic without username", MD: base("authMode", "basic"), WantErr: "username"},
	})
}

// fakeGraphite serves graphite-web's /render?format=json; with user set it requires basic auth.
type fakeGraphite struct {
	scalertest.Canned
	user, pass string
	params     map[string]string
}

func (f *fakeGraphite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/render" {
		http.NotFound(w, r)
		return
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	q := r.URL.Query()
	f.params = map[string]string{"target": q.Get("target"), "from": q.Get("from"), "format": q.Get("format")}
	if u, p, _ := r.BasicAuth(); f.user != "" && (u != f.user || p != f.pass) {
		w.Header().Set("WWW-Authenticate", `Basic realm="graphite"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	f.Reply(w, "application/json")
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "jobs", md, auth))
}

func TestSample(t *testing.T) {
	t.Parallel()
	f := &fakeGraphite{}
	srv := scalertest.Serve(t, f)
	one := func(points string) string {
		return `[{"target":"sumSeries(jobs.*.queued)","tags":{"name":"sumSeries(jobs.*.queued)","aggregatedBy":"sum"},"datapoints":[` + points + `]}]`
	}
	tests := []struct {
		name       string
		status     int
		body       string
		want       float64
		wantActive bool
		wantErr    string
	}{
		{name: "zero", status: 200, body: one("[0, 1700000000]"), want: 0},
		{name: "below activation", status: 200, body: one("[9, 1700000000], [2, 1700000060]"), want: 2},
		{name: "above target takes the newest non-null point", status: 200, body: one("[1, 1700000000], [250, 1700000060], [null, 1700000120]"), want: 250, wantActive: true},
		{name: "no series is 0", status: 200, body: `[]`, want: 0},
		{name: "no datapoints is 0", status: 200, body: one(""), want: 0},
		{name: "only nulls", status: 200, body: one("[null, 1700000000], [null, 1700000060]"), wantErr: "null"},
		{name: "several series", status: 200, body: `[{"target":"a","datapoints":[[1,1]]},{"target":"b","datapoints":[[1,1]]}]`, wantErr: "2 series"},
		{name: "bad target", status: 400, body: "Invalid target: unexpected token", wantErr: "HTTP 400"},
		{name: "not JSON", status: 200, body: "<html/>", wantErr: "decoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScaler(t, map[string]string{"serverAddress": srv.URL, "query": "sumSeries(jobs.*.queued)", "queryTime": "-5Minutes",
				"threshold": "100", "activationThreshold": "5"}, nil)
			f.Set(tc.status, tc.body)
			if !scalertest.ExpectSample(t, s, `graphite trigger "jobs"`, tc.want, tc.wantActive, tc.wantErr) {
				return
			}
			f.Mu.Lock()
			params := f.params
			f.Mu.Unlock()
			if params["target"] != "sumSeries(jobs.*.queued)" || params["from"] != "-5Minutes" || params["format"] != "json" {
				t.Fatalf("request parameters %v", params)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	srv := scalertest.Serve(t, &fakeGraphite{user: "graphite", pass: "s3cret-pass", Canned: scalertest.Canned{Status: 200, Body: `[{"target":"x","datapoints":[[4,1]]}]`}})
	md := map[string]string{"serverAddress": srv.URL, "query": "x", "queryTime": "-1Minutes", "authMode": "basic"}
	if v, _, err := scalertest.First(newScaler(t, md, map[string]string{"username": "graphite", "password": "s3cret-pass"})); err != nil || v != 4 {
		t.Fatalf("good credentials: (%v, %v), want 4", v, err)
	}
	scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "", md, map[string]string{"username": "graphite", "password": "wrong-pass"}), "HTTP 401", "wrong-pass")
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	addr := scalertest.ClosedURL(t)
	scalertest.ExpectConnectError(t, newScaler(t, map[string]string{"serverAddress": addr, "query": "x", "queryTime": "-1Minutes"}, nil))
}

// BenchmarkSample measures one Sample against an in-process fake of graphite-web's render API.
func BenchmarkSample(b *testing.B) {
	srv := scalertest.Serve(b, &fakeGraphite{Canned: scalertest.Canned{Status: 200, Body: `[{"target":"x","datapoints":[[1,1],[2,2],[3,3]]}]`}})
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"serverAddress": srv.URL, "query": "x", "queryTime": "-1Minutes"}, nil))
}
