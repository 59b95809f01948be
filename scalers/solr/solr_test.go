package solr

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

// Solr is not installed here, so these tests run the scaler against an in-process server that answers the select
// handler as Solr's reference describes: /solr/<collection>/select with q, wt=json and rows, a JSON response
// whose response.numFound counts the matches, 401 with a Basic challenge when the BasicAuthPlugin refuses, 404 for
// an unknown collection and 400 with error.msg for a query Solr cannot parse.

const (
	user     = "indexer"
	password = "SolrRocks-s3cret"
)

type solr struct {
	srv  *httptest.Server
	mu   sync.Mutex
	docs map[string][]map[string]string // collection → documents
	auth bool
	seen []string // raw queries
}

func newSolr(t testing.TB, auth bool) *solr {
	s := &solr{docs: map[string][]map[string]string{}, auth: auth}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func solrError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"responseHeader": map[string]any{"status": code, "QTime": 0},
		"error": map[string]any{"metadata": []string{"error-class", "org.apache.solr.common.SolrException"}, "msg": msg, "code": code}})
}

func (s *solr) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, r.URL.RawQuery)
	if u, p, ok := r.BasicAuth(); s.auth && (!ok || u != user || p != password) {
		w.Header().Set("WWW-Authenticate", `Basic realm="solr"`)
		solrError(w, http.StatusUnauthorized, "require authentication")
		return
	}
	coll, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/solr/"), "/select")
	docs, known := s.docs[coll]
	if !ok || !known {
		solrError(w, http.StatusNotFound, "Collection: "+coll+" not found")
		return
	}
	q := r.URL.Query().Get("q")
	field, value, ok := strings.Cut(q, ":")
	if !ok || strings.Count(q, "(") != strings.Count(q, ")") {
		solrError(w, http.StatusBadRequest, fmt.Sprintf("org.apache.solr.search.SyntaxError: Cannot parse '%s'", q))
		return
	}
	n := 0
	for _, d := range docs {
		if (field == "*" && value == "*") || d[field] == value {
			n++
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"responseHeader": map[string]any{"status": 0, "QTime": 1, "params": r.URL.Query()},
		"response": map[string]any{"numFound": n, "start": 0, "numFoundExact": true, "docs": []any{}}})
}

func (s *solr) add(coll string, n int, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.docs[coll] = append(s.docs[coll], map[string]string{"status": status})
	}
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "", md, auth))
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	base := map[string]string{"host": "http://solr:8983", "collection": "jobs", "targetQueryValue": "10"}
	with := func(kv ...string) map[string]string { return scalertest.WithPairs(base, kv...) }
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: with(), Check: func(t *testing.T, m Metadata) {
			if m.Query != "*:*" || m.ActivationTargetQueryValue != 0 || m.TargetQueryValue != 10 {
				t.Fatalf("Parse = %+v", m)
			}
		}},
		{Name: "no host", MD: with("host", scalertest.Delete), WantErr: "host"},
		{Name: "host without scheme", MD: with("host", "solr:8983"), WantErr: "host: want http(s)"},
		{Name: "no collection", MD: with("collection", scalertest.Delete), WantErr: "collection"},
		{Name: "collection with a slash", MD: with("collection", "a/b"), WantErr: "collection"},
		{Name: "no target", MD: with("targetQueryValue", scalertest.Delete), WantErr: "targetQueryValue"},
		{Name: "zero target", MD: with("targetQueryValue", "0"), WantErr: "targetQueryValue"},
		{Name: "target not a number", MD: with("targetQueryValue", "ten"), WantErr: "targetQueryValue"},
		{Name: "negative activation", MD: with("activationTargetQueryValue", "-1"), WantErr: "activationTargetQueryValue"},
		{Name: "blank query", MD: with("query", " "), WantErr: "query"},
		{Name: "username without password", MD: with(), Auth: map[string]string{"username": user}, WantErr: "username, password"},
	})
}

func TestSample(t *testing.T) {
	t.Parallel()
	srv := newSolr(t, true)
	srv.add("jobs", 0, "")
	auth := map[string]string{"username": user, "password": password}
	s := newScaler(t, map[string]string{"host": srv.srv.URL, "collection": "jobs", "query": "status:queued",
		"targetQueryValue": "10", "activationTargetQueryValue": "3"}, auth)
	if specs := s.MetricSpecs(); len(specs) != 1 || specs[0].External.Metric.Name != "s0-solr" || specs[0].External.Target.AverageValue.Value() != 10 {
		t.Fatalf("MetricSpecs = %+v", specs)
	}
	for _, st := range []struct {
		add        int
		want       float64
		wantActive bool
	}{{0, 0, false}, {3, 3, false}, {40, 43, true}} {
		srv.add("jobs", st.add, "queued")
		srv.add("jobs", 5, "done") // never counted
		v, active := scalertest.Sample(t, s, "s0-solr")
		if v != st.want || active != st.wantActive {
			t.Fatalf("after adding %d: Sample = (%v, %v), want (%v, %v)", st.add, v, active, st.want, st.wantActive)
		}
	}
	srv.mu.Lock()
	last := srv.seen[len(srv.seen)-1]
	srv.mu.Unlock()
	if last != "q=status%3Aqueued&rows=0&wt=json" {
		t.Errorf("query string = %q, want q, rows=0 and wt=json", last)
	}
}

func TestSampleErrors(t *testing.T) {
	t.Parallel()
	srv := newSolr(t, true)
	srv.add("jobs", 2, "queued")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	wrong := "not-the-solr-password"
	for _, tc := range []struct {
		name, host, coll, query, password, want string
	}{
		{name: "wrong password", host: srv.srv.URL, coll: "jobs", query: "*:*", password: wrong, want: "HTTP 401: require authentication"},
		{name: "unknown collection", host: srv.srv.URL, coll: "nope", query: "*:*", password: password, want: "HTTP 404: Collection: nope not found"},
		{name: "query Solr cannot parse", host: srv.srv.URL, coll: "jobs", query: "status:(queued", password: password, want: "HTTP 400: org.apache.solr.search.SyntaxError"},
		{name: "server down", host: down, coll: "jobs", query: "*:*", password: password, want: "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "docs", map[string]string{"host": tc.host, "collection": tc.coll, "query": tc.query, "targetQueryValue": "5"},
				map[string]string{"username": user, "password": tc.password}), tc.want, tc.password)
		})
	}
}

// BenchmarkSample measures one Sample (a select with rows=0) against the in-process server.
func BenchmarkSample(b *testing.B) {
	srv := newSolr(b, false)
	srv.add("jobs", 100, "queued")
	s := newScaler(b, map[string]string{"host": srv.srv.URL, "collection": "jobs", "targetQueryValue": "10"}, nil)
	scalertest.BenchmarkSample(b, s)
}
