package elasticsearch

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"addresses": "http://es:9200", "index": "jobs", "searchTemplateName": "pending",
		"valueLocation": "hits.total.value", "targetValue": "10"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	basic := map[string]string{"username": "esuser", "password": "changeme"}
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Auth: basic, Check: func(t *testing.T, m Metadata) {
			if m.TargetValue != 10 || m.ActivationTargetValue != 0 || m.IgnoreNullValues || m.UnsafeSsl || len(m.indices) != 1 || len(m.params) != 0 {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: base("addresses", "http://es1:9200,https://es2:9200", "index", "a;b", "parameters", "queue:jobs; state : pending",
			"activationTargetValue", "2", "ignoreNullValues", "true", "unsafeSsl", "true"), Auth: basic, Check: func(t *testing.T, m Metadata) {
			if len(m.Addresses) != 2 || len(m.indices) != 2 || m.indices[1] != "b" || m.params["queue"] != "jobs" || m.params["state"] != "pending" ||
				m.ActivationTargetValue != 2 || !m.IgnoreNullValues || !m.UnsafeSsl {
				t.Errorf("fields wrong: %+v", m)
			}
		}},
		{Name: "cloud", MD: base("addresses", scalertest.Delete, "searchTemplateName", scalertest.Delete, "query", `{"query":{"match_all":{}}}`),
			Auth: map[string]string{"cloudID": "c:" + base64.StdEncoding.EncodeToString([]byte("h$u")), "apiKey": "k"}, Check: func(t *testing.T, m Metadata) {
				if m.urls[0].String() != "https://u.h" || m.APIKey != "k" || m.Query == "" {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "cloudID decodes to the deployment URL", MD: base("addresses", scalertest.Delete),
			Auth: map[string]string{"cloudID": "prod:" + base64.StdEncoding.EncodeToString([]byte("eu-west-1.aws.found.io:9243$abc123$kib456")), "apiKey": "k"},
			Check: func(t *testing.T, m Metadata) {
				if len(m.urls) != 1 || m.urls[0].String() != "https://abc123.eu-west-1.aws.found.io:9243" {
					t.Errorf("urls %v", m.urls)
				}
			}},
		{Name: "cloudID without a colon", MD: base("addresses", scalertest.Delete), Auth: map[string]string{"cloudID": "prod", "apiKey": "k"}, WantErr: "cloudID"},
		{Name: "cloudID that is not base64", MD: base("addresses", scalertest.Delete), Auth: map[string]string{"cloudID": "prod:!!!", "apiKey": "k"}, WantErr: "cloudID"},
		{Name: "no connection", MD: base("addresses", scalertest.Delete), WantErr: "addresses"},
		{Name: "addresses without password", MD: base(), Auth: map[string]string{"username": "u"}, WantErr: "password"},
		{Name: "cloud and addresses", MD: base(), Auth: map[string]string{"username": "u", "password": "p", "cloudID": "c", "apiKey": "k"}, WantErr: "cannot be combined"},
		{Name: "cloudID without apiKey", MD: base("addresses", scalertest.Delete), Auth: map[string]string{"cloudID": "c"}, WantErr: "apiKey"},
		{Name: "address without scheme", MD: base("addresses", "es:9200"), Auth: basic, WantErr: "addresses"},
		{Name: "missing index", MD: base("index", scalertest.Delete), Auth: basic, WantErr: "index"},
		{Name: "empty index list", MD: base("index", ";"), Auth: basic, WantErr: "index"},
		{Name: "neither template nor query", MD: base("searchTemplateName", scalertest.Delete), Auth: basic, WantErr: "searchTemplateName or query"},
		{Name: "template and query", MD: base("query", `{}`), Auth: basic, WantErr: "give only one"},
		{Name: "query that is not JSON", MD: base("searchTemplateName", scalertest.Delete, "query", "status:pending"), Auth: basic, WantErr: "query"},
		{Name: "parameter without colon", MD: base("parameters", "queue=jobs"), Auth: basic, WantErr: "parameters"},
		{Name: "missing valueLocation", MD: base("valueLocation", scalertest.Delete), Auth: basic, WantErr: "valueLocation"},
		{Name: "missing targetValue", MD: base("targetValue", scalertest.Delete), Auth: basic, WantErr: "targetValue"},
		{Name: "non-numeric targetValue", MD: base("targetValue", "ten"), Auth: basic, WantErr: "targetValue"},
		{Name: "negative targetValue", MD: base("targetValue", "-1"), Auth: basic, WantErr: "targetValue"},
		{Name: "non-numeric activationTargetValue", MD: base("activationTargetValue", "x"), Auth: basic, WantErr: "activationTargetValue"},
		{Name: "bad ignoreNullValues", MD: base("ignoreNullValues", "ja"), Auth: basic, WantErr: "ignoreNullValues"},
	})
}

// fakeES serves Elasticsearch's POST /<index>/_search and /<index>/_search/template with basic auth, the
// X-Elastic-Product header the client checks, and the documented error envelope.
type fakeES struct {
	mu       sync.Mutex
	hits     string // the JSON of hits.total.value
	path     string
	body     map[string]any
	failWith int
}

func (f *fakeES) set(hits string, failWith int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits, f.failWith = hits, failWith
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	if u, p, ok := r.BasicAuth(); !ok || u != "esuser" || p != "changeme" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user [esuser]"}],"type":"security_exception","reason":"unable to authenticate user [esuser]"},"status":401}`))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.path = r.Method + " " + r.URL.Path
	f.body = nil
	_ = json.NewDecoder(r.Body).Decode(&f.body)
	if f.failWith != 0 {
		w.WriteHeader(f.failWith)
		_, _ = w.Write([]byte(`{"error":{"root_cause":[{"type":"resource_not_found_exception","reason":"unable to find script [pending] in cluster state"}],"type":"resource_not_found_exception","reason":"unable to find script [pending] in cluster state"},"status":404}`))
		return
	}
	_, _ = w.Write([]byte(`{"took":3,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"total":{"value":` +
		f.hits + `,"relation":"eq"},"max_score":null,"hits":[]}}`))
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "pending", md, auth))
}

func TestSample(t *testing.T) {
	t.Parallel()
	f := &fakeES{}
	srv := scalertest.Serve(t, f)
	basic := map[string]string{"username": "esuser", "password": "changeme"}
	template := map[string]string{"addresses": srv.URL, "index": "jobs;jobs-old", "searchTemplateName": "pending", "parameters": "state:pending",
		"valueLocation": "hits.total.value", "targetValue": "10", "activationTargetValue": "3"}
	tests := []struct {
		name       string
		md         map[string]string
		hits       string
		failWith   int
		want       float64
		wantActive bool
		wantErr    string
	}{
		{name: "zero", md: template, hits: "0", want: 0},
		{name: "below activation", md: template, hits: "2", want: 2},
		{name: "above target", md: template, hits: "25", want: 25, wantActive: true},
		{name: "number in a string", md: template, hits: `"12"`, want: 12, wantActive: true},
		{name: "null is an error", md: template, hits: "null", wantErr: "ignoreNullValues"},
		{name: "null ignored", md: scalertest.WithPairs(template, "ignoreNullValues", "true"), hits: "null", want: 0},
		{name: "not a number", md: template, hits: `"lots"`, wantErr: "want a number"},
		{name: "missing template", md: template, hits: "0", failWith: 404, wantErr: "unable to find script"},
		{name: "inline query", md: scalertest.WithPairs(template, "searchTemplateName", scalertest.Delete, "parameters", scalertest.Delete,
			"query", `{"query":{"term":{"state":"pending"}},"size":0,"track_total_hits":true}`), hits: "4", want: 4, wantActive: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScaler(t, tc.md, basic)
			f.set(tc.hits, tc.failWith)
			if !scalertest.ExpectSample(t, s, `elasticsearch trigger "pending"`, tc.want, tc.wantActive, tc.wantErr) {
				return
			}
			f.mu.Lock()
			path, body := f.path, f.body
			f.mu.Unlock()
			if tc.md["query"] != "" {
				if path != "POST /jobs,jobs-old/_search" || body["track_total_hits"] != true {
					t.Fatalf("request %s %v", path, body)
				}
				return
			}
			if params, _ := body["params"].(map[string]any); path != "POST /jobs,jobs-old/_search/template" || body["id"] != "pending" || params["state"] != "pending" {
				t.Fatalf("request %s %v", path, body)
			}
		})
	}
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	srv := scalertest.Serve(t, &fakeES{hits: "1"})
	scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "", map[string]string{"addresses": srv.URL, "index": "jobs", "searchTemplateName": "t", "valueLocation": "hits.total.value", "targetValue": "1"},
		map[string]string{"username": "esuser", "password": "wrong-password-123"}), "HTTP 401", "wrong-password-123")
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	addr := scalertest.ClosedURL(t)
	scalertest.ExpectConnectError(t, newScaler(t, map[string]string{"addresses": addr, "index": "jobs", "searchTemplateName": "t", "valueLocation": "a", "targetValue": "1"},
		map[string]string{"username": "esuser", "password": "changeme"}))
}

// BenchmarkSample measures one Sample (a search template call) against an in-process fake of Elasticsearch.
func BenchmarkSample(b *testing.B) {
	srv := scalertest.Serve(b, &fakeES{hits: "3"})
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"addresses": srv.URL, "index": "jobs", "searchTemplateName": "t",
		"valueLocation": "hits.total.value", "targetValue": "1"}, map[string]string{"username": "esuser", "password": "changeme"}))
}
