package newrelic

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

const queryKey = "NRAK-TESTKEY0123456789"

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"nrql": "SELECT count(*) FROM Transaction SINCE 1 minute ago", "threshold": "50"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	auth := map[string]string{"account": "1234567", "queryKey": queryKey}
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.Account != 1234567 || m.Region != "US" || m.NoDataError || m.Threshold != 50 || m.ActivationThreshold != 0 ||
				m.endpoint != "https://api.newrelic.com/graphql" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field from metadata", MD: base("account", "42", "queryKey", "k", "region", "EU", "noDataError", "true", "activationThreshold", "3"),
			Check: func(t *testing.T, m Metadata) {
				if m.Account != 42 || m.QueryKey != "k" || m.endpoint != "https://api.eu.newrelic.com/graphql" || !m.NoDataError || m.ActivationThreshold != 3 {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "missing account", MD: base(), Auth: map[string]string{"queryKey": "k"}, WantErr: "account"},
		{Name: "non-numeric account", MD: base("account", "my-account"), Auth: map[string]string{"queryKey": "k"}, WantErr: "account"},
		{Name: "zero account", MD: base("account", "0"), Auth: map[string]string{"queryKey": "k"}, WantErr: "account"},
		{Name: "missing queryKey", MD: base(), Auth: map[string]string{"account": "1"}, WantErr: "queryKey"},
		{Name: "missing nrql", MD: base("nrql", scalertest.Delete), Auth: auth, WantErr: "nrql"},
		{Name: "blank nrql", MD: base("nrql", "  "), Auth: auth, WantErr: "nrql"},
		{Name: "missing threshold", MD: base("threshold", scalertest.Delete), Auth: auth, WantErr: "threshold"},
		{Name: "non-numeric threshold", MD: base("threshold", "fifty"), Auth: auth, WantErr: "threshold"},
		{Name: "negative threshold", MD: base("threshold", "-1"), Auth: auth, WantErr: "threshold"},
		{Name: "non-numeric activationThreshold", MD: base("activationThreshold", "x"), Auth: auth, WantErr: "activationThreshold"},
		{Name: "unknown region", MD: base("region", "APAC"), Auth: auth, WantErr: "region"},
		{Name: "bad noDataError", MD: base("noDataError", "nope"), Auth: auth, WantErr: "noDataError"},
	})
}

// fakeNerdGraph serves POST /graphql as NerdGraph does for an NRQL query: API-Key header, a GraphQL document with
// query and accountId variables, and data.actor.account.nrql.results.
type fakeNerdGraph struct {
	mu      sync.Mutex
	results string
	errors  string
	vars    map[string]any
}

func (f *fakeNerdGraph) set(results, errors string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results, f.errors = results, errors
}

func (f *fakeNerdGraph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/graphql" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("API-Key") != queryKey {
		// The fake answers a missing key with HTTP 401 and a wrong one with a GraphQL error in an HTTP 200.
		if r.Header.Get("API-Key") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"message":"Unauthorized"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"data":{"actor":{"account":null}},"errors":[{"extensions":{"errorClass":"UNAUTHORIZED"},"message":"Invalid API key","path":["actor","account"]}]}`))
		return
	}
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !strings.Contains(req.Query, "nrql(query: $query)") {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"errors":[{"message":"bad GraphQL request"}]}`))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vars = req.Variables
	if f.errors != "" {
		_, _ = w.Write([]byte(`{"data":{"actor":{"account":{"nrql":null}}},"errors":` + f.errors + `}`))
		return
	}
	_, _ = w.Write([]byte(`{"data":{"actor":{"account":{"nrql":{"results":` + f.results + `}}}}}`))
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "tx", md, auth))
}

func TestSample(t *testing.T) {
	t.Parallel()
	f := &fakeNerdGraph{}
	srv := scalertest.Serve(t, f)
	const nrql = "SELECT count(*) FROM Transaction SINCE 1 minute ago"
	tests := []struct {
		name       string
		noData     string
		results    string
		errors     string
		want       float64
		wantActive bool
		wantErr    string
	}{
		{name: "zero", results: `[{"count":0}]`, want: 0},
		{name: "below activation", results: `[{"count":4}]`, want: 4},
		{name: "above target", results: `[{"count":120}]`, want: 120, wantActive: true},
		{name: "first numeric column by name", results: `[{"facet":"api","zcount":7,"average.duration":0.25}]`, want: 0.25},
		{name: "no rows is 0", results: `[]`, want: 0},
		{name: "no rows with noDataError", noData: "true", results: `[]`, wantErr: "no results"},
		{name: "no number is 0", results: `[{"facet":"api"}]`, want: 0},
		{name: "no number with noDataError", noData: "true", results: `[{"facet":"api"}]`, wantErr: "no numeric value"},
		{name: "NRQL syntax error", errors: `[{"message":"NRQL Syntax Error: Error at line 1 position 8"}]`, wantErr: "NRQL Syntax Error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"nrql": nrql, "threshold": "50", "activationThreshold": "5", "region": srv.URL + "/graphql"}
			if tc.noData != "" {
				md["noDataError"] = tc.noData
			}
			s := newScaler(t, md, map[string]string{"account": "1234567", "queryKey": queryKey})
			f.set(tc.results, tc.errors)
			if !scalertest.ExpectSample(t, s, `new-relic trigger "tx"`, tc.want, tc.wantActive, tc.wantErr) {
				return
			}
			f.mu.Lock()
			vars := f.vars
			f.mu.Unlock()
			if vars["query"] != nrql || vars["accountId"] != float64(1234567) {
				t.Fatalf("variables %v", vars)
			}
		})
	}
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	srv := scalertest.Serve(t, &fakeNerdGraph{results: `[{"count":1}]`})
	scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "", map[string]string{"nrql": "SELECT 1", "threshold": "1", "region": srv.URL + "/graphql"},
		map[string]string{"account": "1", "queryKey": "NRAK-WRONGKEY"}), "Invalid API key", "NRAK-WRONGKEY")
	if v, _, err := scalertest.First(newScaler(t, map[string]string{"nrql": "SELECT 1", "threshold": "1", "region": srv.URL + "/graphql"},
		map[string]string{"account": "1", "queryKey": queryKey})); err != nil || v != 1 {
		t.Fatalf("good key: (%v, %v), want 1", v, err)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	addr := scalertest.ClosedURL(t)
	scalertest.ExpectConnectError(t, newScaler(t, map[string]string{"nrql": "SELECT 1", "threshold": "1", "region": addr + "/graphql"},
		map[string]string{"account": "1", "queryKey": queryKey}))
}

// BenchmarkSample measures one Sample against an in-process fake of NerdGraph.
func BenchmarkSample(b *testing.B) {
	srv := scalertest.Serve(b, &fakeNerdGraph{results: `[{"count":3}]`})
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"nrql": "SELECT count(*) FROM Transaction", "threshold": "1", "region": srv.URL + "/graphql"},
		map[string]string{"account": "1", "queryKey": queryKey}))
}
