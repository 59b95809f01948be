package azurepipelines

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
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

// Azure DevOps cannot run here, so these tests run the scaler against an in-process server that speaks the two
// endpoints it uses as the Azure DevOps REST reference documents them (Pools - Get Agent Pools with poolName,
// and the pool's jobrequests with $top / completedRequestCount): Basic authentication with an empty user and the
// PAT, 401 for a token it does not know and 203 with a sign-in page when none is sent, TaskAgentJobRequest JSON
// where an unfinished request has no result, and the rate-limit headers.

const pat = "pat-4f1c9e7d2b8a6f3e0c5d7a9b1e2f4c6d"

type devops struct {
	srv     *httptest.Server
	mu      sync.Mutex
	pools   map[string][]int64 // name → ids (two pools may share a name in this fake, to test the refusal)
	jobs    map[int64][]map[string]any
	queries []string
	status  int  // when set, every request gets it
	strip   bool // drop the Authorization header first, as a misconfigured proxy would
}

func newDevOps(t testing.TB) *devops {
	d := &devops{pools: map[string][]int64{}, jobs: map[int64][]map[string]any{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *devops) orgURL() string { return d.srv.URL + "/contoso" }

func (d *devops) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queries = append(d.queries, r.URL.RawQuery)
	if d.strip {
		r.Header.Del("Authorization")
	}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNonAuthoritativeInfo)
		fmt.Fprint(w, "<html><head><title>Azure DevOps Services | Sign In</title></head></html>")
		return
	case auth != "Basic "+base64.StdEncoding.EncodeToString([]byte(":"+pat)):
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"$id":"1","message":"TF400813: The user '' is not authorized to access this resource."}`)
		return
	}
	if d.status != 0 {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(d.status)
		fmt.Fprint(w, `{"message":"Request was blocked due to exceeding usage of resource 'TSTUs'."}`)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-RateLimit-Remaining", "199")
	path := strings.TrimPrefix(r.URL.Path, "/contoso/_apis/distributedtask/pools")
	if path == "" {
		var value []map[string]any
		for _, id := range d.pools[r.URL.Query().Get("poolName")] {
			value = append(value, map[string]any{"id": id, "name": r.URL.Query().Get("poolName"), "isHosted": false, "poolType": "automation", "size": 2})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"count": len(value), "value": value})
		return
	}
	idStr, ok := strings.CutSuffix(strings.TrimPrefix(path, "/"), "/jobrequests")
	id, err := strconv.ParseInt(idStr, 10, 64)
	jobs, known := d.jobs[id]
	if !ok || err != nil || !known {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"not found"}`)
		return
	}
	if r.URL.Query().Get("completedRequestCount") == "0" {
		var open []map[string]any
		for _, j := range jobs {
			if _, done := j["result"]; !done {
				open = append(open, j)
			}
		}
		jobs = open
	}
	if top, err := strconv.Atoi(r.URL.Query().Get("$top")); err == nil && top < len(jobs) {
		jobs = jobs[:top]
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"count": len(jobs), "value": jobs})
}

// job is a TaskAgentJobRequest; done gives it a result (finished).
func job(id int, done bool, demands []string, matched ...string) map[string]any {
	j := map[string]any{"requestId": id, "queueTime": time.Now().UTC().Format(time.RFC3339Nano), "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
		"hostId": "h", "scopeId": "s", "planType": "Build", "planId": "p", "jobId": "j", "poolId": 7, "priority": 0,
		"demands": demands, "definition": map[string]any{"id": 3, "name": "ci"}, "owner": map[string]any{"id": 9, "name": "run"}}
	if done {
		j["result"] = "succeeded"
		j["finishTime"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	var agents []map[string]any
	for _, m := range matched {
		agents = append(agents, map[string]any{"id": len(agents) + 1, "name": m, "version": "3.236.1", "enabled": true, "status": "offline"})
	}
	if agents != nil {
		j["matchedAgents"] = agents
	}
	return j
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "", md, auth))
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	auth := map[string]string{"organizationURL": "https://dev.azure.com/contoso", "personalAccessToken": pat}
	with := func(kv ...string) map[string]string {
		return scalertest.WithPairs(map[string]string{"poolID": "7"}, kv...)
	}
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: with(), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.TargetPipelinesQueueLength != 1 || m.ActivationTargetPipelinesQueueLength != 0 || m.JobsToFetch != nil || m.org.String() != "https://dev.azure.com/contoso" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "from the environment, PAT with a trailing newline", MD: with("organizationURLFromEnv", "AZP_URL", "personalAccessTokenFromEnv", "AZP_TOKEN"),
			Env: map[string]string{"AZP_URL": "https://dev.azure.com/contoso/", "AZP_TOKEN": pat + "\n"}, Check: func(t *testing.T, m Metadata) {
				if m.PersonalAccessToken != pat || m.org.Path != "/contoso" {
					t.Errorf("env values wrong: path %q", m.org.Path)
				}
			}},
		{Name: "demands", MD: with("demands", "maven, Agent.Version -gtVersion 2.1,java"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if strings.Join(m.demands, "|") != "maven|java" {
				t.Errorf("demands = %q", m.demands)
			}
		}},
		{Name: "no pool", MD: map[string]string{}, Auth: auth, WantErr: "poolName: required"},
		{Name: "both pools", MD: with("poolName", "linux"), Auth: auth, WantErr: "not both"},
		{Name: "poolID zero", MD: with("poolID", "0"), Auth: auth, WantErr: "poolID"},
		{Name: "poolID not a number", MD: with("poolID", "seven"), Auth: auth, WantErr: "poolID"},
		{Name: "zero target", MD: with("targetPipelinesQueueLength", "0"), Auth: auth, WantErr: "targetPipelinesQueueLength"},
		{Name: "negative activation", MD: with("activationTargetPipelinesQueueLength", "-1"), Auth: auth, WantErr: "activationTargetPipelinesQueueLength"},
		{Name: "jobsToFetch zero", MD: with("jobsToFetch", "0"), Auth: auth, WantErr: "jobsToFetch"},
		{Name: "jobsToFetch and fetchUnfinishedJobsOnly", MD: with("jobsToFetch", "10", "fetchUnfinishedJobsOnly", "true"), Auth: auth, WantErr: "jobsToFetch, fetchUnfinishedJobsOnly"},
		{Name: "jobsToFetch and parent", MD: with("jobsToFetch", "10", "parent", "tmpl"), Auth: auth, WantErr: "jobsToFetch, parent"},
		{Name: "two demand modes", MD: with("demands", "a", "requireAllDemands", "true", "requireAllDemandsAndIgnoreOthers", "true"), Auth: auth, WantErr: "requireAllDemands, requireAllDemandsAndIgnoreOthers"},
		{Name: "bad boolean", MD: with("fetchUnfinishedJobsOnly", "yes please"), Auth: auth, WantErr: "fetchUnfinishedJobsOnly"},
		{Name: "no organization URL", MD: with(), Auth: map[string]string{"personalAccessToken": pat}, WantErr: "organizationURL"},
		{Name: "organization URL without an organization", MD: with(), Auth: map[string]string{"organizationURL": "https://dev.azure.com", "personalAccessToken": pat}, WantErr: "names no organization"},
		{Name: "organization URL not a URL", MD: with(), Auth: map[string]string{"organizationURL": "contoso", "personalAccessToken": pat}, WantErr: "organizationURL: want"},
		{Name: "no token", MD: with(), Auth: map[string]string{"organizationURL": "https://dev.azure.com/contoso"}, WantErr: "personalAccessToken"},
		{Name: "token from a missing variable", MD: with("personalAccessTokenFromEnv", "NOPE"), Auth: map[string]string{"organizationURL": "https://dev.azure.com/contoso"}, WantErr: "personalAccessTokenFromEnv"},
	}, pat)
}

func TestTokenInMetadataIsRefused(t *testing.T) {
	cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{"poolID": "7", "personalAccessToken": pat, "organizationURL": "https://dev.azure.com/contoso"}}
	_, err := New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "personalAccessToken: give it in a TriggerAuthentication") || strings.Contains(err.Error(), pat) {
		t.Fatalf("New = %v, want a refusal naming personalAccessToken without repeating it", err)
	}
}

func TestQueueLength(t *testing.T) {
	t.Parallel()
	d := newDevOps(t)
	d.jobs[7] = nil
	auth := map[string]string{"organizationURL": d.orgURL(), "personalAccessToken": pat}
	s := newScaler(t, map[string]string{"poolID": "7", "targetPipelinesQueueLength": "2", "activationTargetPipelinesQueueLength": "2"}, auth)
	if specs := s.MetricSpecs(); len(specs) != 1 || specs[0].External.Metric.Name != "s0-azure-pipelines-7" || specs[0].External.Target.AverageValue.Value() != 2 {
		t.Fatalf("MetricSpecs = %+v", specs)
	}
	steps := []struct {
		name       string
		jobs       []map[string]any
		want       float64
		wantActive bool
	}{
		{name: "empty pool", jobs: nil, want: 0},
		{name: "finished jobs only", jobs: []map[string]any{job(1, true, nil), job(2, true, nil)}, want: 0},
		{name: "two queued (= activation)", jobs: []map[string]any{job(1, true, nil), job(2, false, nil), job(3, false, nil)}, want: 2},
		{name: "five queued", jobs: []map[string]any{job(1, false, nil), job(2, false, nil), job(3, false, nil), job(4, false, nil), job(5, false, nil), job(6, true, nil)}, want: 5, wantActive: true},
	}
	for _, st := range steps {
		d.mu.Lock()
		d.jobs[7] = st.jobs
		d.mu.Unlock()
		v, active := scalertest.Sample(t, s, s.MetricName())
		if v != st.want || active != st.wantActive {
			t.Fatalf("%s: Sample = (%v, %v), want (%v, %v)", st.name, v, active, st.want, st.wantActive)
		}
	}
	d.mu.Lock()
	last := d.queries[len(d.queries)-1]
	d.mu.Unlock()
	if last != "%24top=250" {
		t.Errorf("query = %q, want $top=250 (KEDA's default jobsToFetch)", last)
	}
}

func TestPoolNameAndFetchModes(t *testing.T) {
	t.Parallel()
	d := newDevOps(t)
	d.pools["linux agents"] = []int64{12}
	d.pools["dup"] = []int64{1, 2}
	d.jobs[12] = []map[string]any{job(1, false, nil), job(2, true, nil), job(3, false, nil)}
	auth := map[string]string{"organizationURL": d.orgURL(), "personalAccessToken": pat}

	s := newScaler(t, map[string]string{"poolName": "linux agents", "fetchUnfinishedJobsOnly": "true"}, auth)
	if v, _ := scalertest.Sample(t, s, "s0-azure-pipelines-linux-agents"); v != 2 {
		t.Errorf("by pool name = %v, want 2", v)
	}
	scalertest.Sample(t, s, "")
	d.mu.Lock()
	qs := append([]string(nil), d.queries...)
	d.mu.Unlock()
	if len(qs) != 3 || qs[0] != "poolName=linux+agents" || qs[1] != "completedRequestCount=0" || qs[2] != "completedRequestCount=0" {
		t.Errorf("queries = %q, want the pool resolved once, then completedRequestCount=0 twice", qs)
	}

	few := newScaler(t, map[string]string{"poolID": "12", "jobsToFetch": "1"}, auth)
	if v, _ := scalertest.Sample(t, few, ""); v != 1 {
		t.Errorf("jobsToFetch 1 = %v, want 1 (only the first request read)", v)
	}
	for name, want := range map[string]string{"nobody": "no agent pool is named", "dup": "2 agent pools are named"} {
		bad := newScaler(t, map[string]string{"poolName": name}, auth)
		if _, _, err := bad.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("poolName %q: err = %v, want %q", name, err, want)
		}
	}
}

func TestDemandsAndParent(t *testing.T) {
	t.Parallel()
	d := newDevOps(t)
	av := "Agent.Version -gtVersion 2.182.1"
	d.jobs[7] = []map[string]any{
		job(1, false, []string{"maven", av}, "tmpl-a"),
		job(2, false, []string{"maven", "java", av}, "tmpl-b"),
		job(3, false, []string{"Maven"}),
		job(4, false, nil, "tmpl-a"),
		job(5, true, []string{"maven"}, "tmpl-a"),
	}
	auth := map[string]string{"organizationURL": d.orgURL(), "personalAccessToken": pat}
	for _, tc := range []struct {
		name string
		md   map[string]string
		want float64
	}{
		// Each job's demands must all be the agent's: 1 (maven), 2 (maven, java), 4 (none); 3 differs in case.
		{name: "demands", md: map[string]string{"demands": "maven,java"}, want: 3},
		{name: "demands without case", md: map[string]string{"demands": "maven,java", "caseInsensitiveDemandsProcessing": "true"}, want: 4},
		// Job and agent demands equal: only 2.
		{name: "requireAllDemands", md: map[string]string{"demands": "maven,java", "requireAllDemands": "true"}, want: 1},
		// Every agent demand is the job's, other job demands ignored: 1 and 2 have maven.
		{name: "requireAllDemandsAndIgnoreOthers", md: map[string]string{"demands": "maven", "requireAllDemandsAndIgnoreOthers": "true"}, want: 2},
		{name: "parent", md: map[string]string{"parent": "tmpl-a"}, want: 2},
	} {
		md := scalertest.WithPairs(tc.md, "poolID", "7")
		s := newScaler(t, md, auth)
		if v, _ := scalertest.Sample(t, s, ""); v != tc.want {
			t.Errorf("%s: %v jobs, want %v", tc.name, v, tc.want)
		}
	}
}

func TestSampleErrors(t *testing.T) {
	t.Parallel()
	d := newDevOps(t)
	limited := newDevOps(t)
	limited.status = http.StatusTooManyRequests
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + l.Addr().String() + "/contoso"
	l.Close()
	wrong := "pat-wrong-0000000000000000000000000000"
	for _, tc := range []struct {
		name, org, token, want string
	}{
		{name: "wrong token", org: d.orgURL(), token: wrong, want: "HTTP 401"},
		{name: "rate limited", org: limited.orgURL(), token: pat, want: "HTTP 429 (rate limited; Retry-After 30s)"},
		{name: "pool absent", org: d.orgURL(), token: pat, want: "HTTP 404"},
		{name: "server down", org: downURL, token: pat, want: "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "agents", map[string]string{"poolID": "99"},
				map[string]string{"organizationURL": tc.org, "personalAccessToken": tc.token}), tc.want, tc.token)
		})
	}
}

// TestUnauthenticatedIsTheSignInPage covers the 203 Azure DevOps sends when no credentials arrive (a proxy
// dropping the header): an error saying the token was not accepted, never a count decoded from HTML.
func TestUnauthenticatedIsTheSignInPage(t *testing.T) {
	d := newDevOps(t)
	req, err := http.NewRequest(http.MethodGet, d.orgURL()+"/_apis/distributedtask/pools/7/jobrequests", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNonAuthoritativeInfo {
		t.Fatalf("fake answers %d without credentials, want 203", resp.StatusCode)
	}
	s := newScaler(t, map[string]string{"poolID": "7"}, map[string]string{"organizationURL": d.orgURL(), "personalAccessToken": pat})
	d.mu.Lock()
	d.strip = true
	d.mu.Unlock()
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "sign-in page") {
		t.Fatalf("Sample = %v, want the sign-in page error", err)
	}
}

// BenchmarkSample measures one Sample (a jobrequests GET of 50 requests) against the in-process server.
func BenchmarkSample(b *testing.B) {
	d := newDevOps(b)
	for i := 0; i < 50; i++ {
		d.jobs[7] = append(d.jobs[7], job(i, i%3 == 0, []string{"maven"}))
	}
	s := newScaler(b, map[string]string{"poolID": "7", "demands": "maven"}, map[string]string{"organizationURL": d.orgURL(), "personalAccessToken": pat})
	scalertest.BenchmarkSample(b, s)
}
