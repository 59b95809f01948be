package newrelic

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const queryKey = "NRAK-TESTKEY0123456789"

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"nrql": "SELECT count(*) FROM Transaction SINCE 1 minute ago", "threshold": "50"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	auth := map[string]string{"account": "1234567", "queryKey": queryKey}
	tests := []struct {
		name    string
		md      map[string]string
		auth    map[string]string
		wantErr string
		check   func(t *testing.T, m Metadata)
	}{
		{name: "defaults", md: base(), auth: auth, check: func(t *testing.T, m Metadata) {
			if m.Account != 1234567 || m.Region != "US" || m.NoDataError || m.Threshold != 50 || m.ActivationThreshold != 0 ||
				m.endpoint != "https://api.newrelic.com/graphql" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{name: "every field from metadata", md: base("account", "42", "queryKey", "k", "region", "EU", "noDataError", "true", "activationThreshold", "3"),
			check: func(t *testing.T, m Metadata) {
				if m.Account != 42 || m.QueryKey != "k" || m.endpoint != "https://api.eu.newrelic.com/graphql" || !m.NoDataError || m.ActivationThreshold != 3 {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{name: "missing account", md: base(), auth: map[string]string{"queryKey": "k"}, wantErr: "account"},
		{name: "non-numeric account", md: base("account", "my-account"), auth: map[string]string{"queryKey": "k"}, wantErr: "account"},
		{name: "zero account", md: base("account", "0"), auth: map[string]string{"queryKey": "k"}, wantErr: "account"},
		{name: "missing queryKey", md: base(), auth: map[string]string{"account": "1"}, wantErr: "queryKey"},
		{name: "missing nrql", md: base("nrql", scalertest.Delete), auth: auth, wantErr: "nrql"},
		{name: "blank nrql", md: base("nrql", "  "), auth: auth, wantErr: "nrql"},
		{name: "missing threshold", md: base("threshold", scalertest.Delete), auth: auth, wantErr: "threshold"},
		{name: "non-numeric threshold", md: base("threshold", "fifty"), auth: auth, wantErr: "threshold"},
		{name: "negative threshold", md: base("threshold", "-1"), auth: auth, wantErr: "threshold"},
		{name: "non-numeric activationThreshold", md: base("activationThreshold", "x"), auth: auth, wantErr: "activationThreshold"},
		{name: "unknown region", md: base("region", "APAC"), auth: auth, wantErr: "region"},
		{name: "bad noDataError", md: base("noDataError", "nope"), auth: auth, wantErr: "noDataError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: tc.md, AuthParams: tc.auth}
			var m Metadata
			err := scalers.Parse(cfg, &m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "new-relic trigger") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to name the new-relic trigger and %q", err, tc.wantErr)
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
	cfg := &scalers.TriggerConfig{Type: TriggerType, Name: "tx", Metadata: md, AuthParams: auth, Shared: scalers.NewShared()}
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
	f := &fakeNerdGraph{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
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
			v, active, err := sample(s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `new-relic trigger "tx"`) {
					t.Fatalf("Sample error = %v, want one naming the trigger and containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || v != tc.want || active != tc.wantActive {
				t.Fatalf("Sample = (%v, %v, %v), want (%v, %v)", v, active, err, tc.want, tc.wantActive)
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
	srv := httptest.NewServer(&fakeNerdGraph{results: `[{"count":1}]`})
	t.Cleanup(srv.Close)
	logger, logs := scalertest.ObservedLogger()
	cfg := &scalers.TriggerConfig{Type: TriggerType, Logger: logger, Metadata: map[string]string{"nrql": "SELECT 1", "threshold": "1", "region": srv.URL + "/graphql"},
		AuthParams: map[string]string{"account": "1", "queryKey": "NRAK-WRONGKEY"}}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	_, _, err = sample(s.(*Scaler))
	if err == nil || !strings.Contains(err.Error(), "Invalid API key") {
		t.Fatalf("error %v, want Invalid API key", err)
	}
	scalertest.AssertNoSecret(t, "NRAK-WRONGKEY", err.Error(), logs.All())
	if v, _, err := sample(newScaler(t, map[string]string{"nrql": "SELECT 1", "threshold": "1", "region": srv.URL + "/graphql"},
		map[string]string{"account": "1", "queryKey": queryKey})); err != nil || v != 1 {
		t.Fatalf("good key: (%v, %v), want 1", v, err)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	_, _, err := sample(newScaler(t, map[string]string{"nrql": "SELECT 1", "threshold": "1", "region": addr + "/graphql"},
		map[string]string{"account": "1", "queryKey": queryKey}))
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("error %v, want a connection error", err)
	}
}

// BenchmarkSample measures one Sample against an in-process fake of NerdGraph.
func BenchmarkSample(b *testing.B) {
	srv := httptest.NewServer(&fakeNerdGraph{results: `[{"count":3}]`})
	b.Cleanup(srv.Close)
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"nrql": "SELECT count(*) FROM Transaction", "threshold": "1", "region": srv.URL + "/graphql"},
		map[string]string{"account": "1", "queryKey": queryKey}))
}
