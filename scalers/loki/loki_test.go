package loki

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/scalers/httpauth/oauthtest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"serverAddress": "http://loki:3100", "query": `sum(rate({app="api"}[1m]))`, "threshold": "10"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "oauth without clientID", MD: base("authModes", "oauth"), Auth: map[string]string{"oauthTokenURI": "https://idp/token"},
			WantErr: "clientID: required by authModes oauth"},
		{Name: "oauth and custom", MD: base("authModes", "oauth,custom"),
			Auth:    map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "customAuthHeader": "X", "customAuthValue": "v"},
			WantErr: "cannot be combined"},
		{Name: "defaults", MD: base(), Check: func(t *testing.T, m Metadata) {
			if m.Threshold != 10 || m.ActivationThreshold != 0 || !m.IgnoreNullValues || m.UnsafeSsl || m.TenantName != "" ||
				m.queryURL.String() != "http://loki:3100/loki/api/v1/query" {
				t.Errorf("defaults wrong: %+v url=%s", m, m.queryURL)
			}
		}},
		{Name: "prefix path and every field", MD: base("serverAddress", "https://gw/loki-a/", "threshold", "0.5", "activationThreshold", "2",
			"tenantName", "team-a", "ignoreNullValues", "false", "unsafeSsl", "true", "authModes", "basic"),
			Auth: map[string]string{"username": "u", "password": "p"}, Check: func(t *testing.T, m Metadata) {
				if m.queryURL.String() != "https://gw/loki-a/loki/api/v1/query" || m.Threshold != 0.5 || m.ActivationThreshold != 2 ||
					m.TenantName != "team-a" || m.IgnoreNullValues || !m.UnsafeSsl || !m.Has("basic") {
					t.Errorf("fields wrong: %+v url=%s", m, m.queryURL)
				}
			}},
		{Name: "full query endpoint kept", MD: base("serverAddress", "http://loki:3100/loki/api/v1/query"), Check: func(t *testing.T, m Metadata) {
			if m.queryURL.String() != "http://loki:3100/loki/api/v1/query" {
				t.Errorf("url = %s", m.queryURL)
			}
		}},
		{Name: "missing serverAddress", MD: base("serverAddress", scalertest.Delete), WantErr: "serverAddress"},
		{Name: "relative serverAddress", MD: base("serverAddress", "loki:3100"), WantErr: "serverAddress"},
		{Name: "missing query", MD: base("query", scalertest.Delete), WantErr: "query"},
		{Name: "blank query", MD: base("query", " "), WantErr: "query"},
		{Name: "missing threshold", MD: base("threshold", scalertest.Delete), WantErr: "threshold"},
		{Name: "non-numeric threshold", MD: base("threshold", "ten"), WantErr: "threshold"},
		{Name: "zero threshold", MD: base("threshold", "0"), WantErr: "threshold"},
		{Name: "non-numeric activationThreshold", MD: base("activationThreshold", "x"), WantErr: "activationThreshold"},
		{Name: "bad ignoreNullValues", MD: base("ignoreNullValues", "sometimes"), WantErr: "ignoreNullValues"},
		{Name: "bad unsafeSsl", MD: base("unsafeSsl", "2"), WantErr: "unsafeSsl"},
		{Name: "unknown authMode", MD: base("authModes", "oauth2"), WantErr: "authModes"},
		{Name: "bearer and basic", MD: base("authModes", "bearer,basic"), Auth: map[string]string{"bearerToken": "t", "username": "u"}, WantErr: "cannot be combined"},
		{Name: "bearer without token", MD: base("authModes", "bearer"), WantErr: "bearerToken"},
		{Name: "basic without username", MD: base("authModes", "basic"), WantErr: "username"},
		{Name: "tls without key", MD: base("authModes", "tls"), Auth: map[string]string{"cert": "c"}, WantErr: "cert and key"},
	})
}

// fakeLoki serves /loki/api/v1/query as Loki does, answering with the body set for the query; it requires the
// tenant header when tenant is set and the bearer token when token is set.
type fakeLoki struct {
	scalertest.Canned
	tenant string
	token  string
	query  string
}

func (f *fakeLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != queryPath || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.query = r.URL.Query().Get("query")
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, "authentication failure", http.StatusUnauthorized)
		return
	}
	if f.tenant != "" && r.Header.Get("X-Scope-OrgID") != f.tenant {
		http.Error(w, "no org id", http.StatusUnauthorized)
		return
	}
	f.Reply(w, "application/json; charset=UTF-8")
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
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "logs", md, auth))
}

func TestSample(t *testing.T) {
	t.Parallel()
	f := &fakeLoki{tenant: "team-a"}
	srv := scalertest.Serve(t, f)
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
			f.Set(tc.status, tc.body)
			if !scalertest.ExpectSample(t, s, `loki trigger "logs"`, tc.want, tc.wantActive, tc.wantErr) {
				return
			}
			f.Mu.Lock()
			got := f.query
			f.Mu.Unlock()
			if got != query {
				t.Fatalf("server got query %q, want %q", got, query)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const token = "loki-token-secret"
	srv := scalertest.Serve(t, &fakeLoki{token: token, Canned: scalertest.Canned{Status: 200, Body: vector("7")}})
	md := map[string]string{"serverAddress": srv.URL, "query": "sum(x)", "threshold": "1", "authModes": "bearer"}
	if v, active, err := scalertest.First(newScaler(t, md, map[string]string{"bearerToken": token})); err != nil || v != 7 || !active {
		t.Fatalf("good token: (%v, %v, %v), want (7, true, nil)", v, active, err)
	}
	scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "", md,
		map[string]string{"bearerToken": "wrong-token-secret"}), "HTTP 401", "wrong-token-secret")
}

// TestOAuth: authModes oauth against an RFC 6749 client-credentials token endpoint and a resource server that
// checks the bearer token.
func TestOAuth(t *testing.T) {
	t.Parallel()
	oauthtest.CheckScaler(t, oauthtest.ScalerCase{Type: TriggerType, New: New, Want: 7,
		Resource: &fakeLoki{Canned: scalertest.Canned{Status: 200, Body: vector("7")}},
		Metadata: func(u string) map[string]string {
			return map[string]string{"serverAddress": u, "query": "sum(x)", "threshold": "1", "authModes": "oauth"}
		}})
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	addr := scalertest.ClosedURL(t)
	scalertest.ExpectConnectError(t, newScaler(t, map[string]string{"serverAddress": addr, "query": "sum(x)", "threshold": "1"}, nil))
}

// BenchmarkSample measures one Sample against an in-process fake of Loki's query API.
func BenchmarkSample(b *testing.B) {
	srv := scalertest.Serve(b, &fakeLoki{Canned: scalertest.Canned{Status: 200, Body: vector("3")}})
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"serverAddress": srv.URL, "query": "sum(x)", "threshold": "1"}, nil))
}
