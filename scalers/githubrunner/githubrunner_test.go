package githubrunner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const token = "ghp_tidalTestToken123"

// github is an httptest server speaking the documented REST JSON of the endpoints the scaler uses: list
// repositories (orgs, users), list workflow runs by status, list jobs of a run; bearer-token auth with GitHub's
// 401 body; rate-limit headers on every response, and 403 with X-RateLimit-Remaining 0 once the budget is spent.
type github struct {
	srv *httptest.Server

	mu        sync.Mutex
	repos     map[string][]string  // owner → repository names
	runs      map[string][]fakeRun // owner/repo → runs
	remaining int                  // requests left in the window
	reset     time.Time            // X-RateLimit-Reset
	calls     atomic.Int64
}

type fakeRun struct {
	id     int64
	status string // queued, in_progress, completed
	jobs   []job
}

func newGitHub(t testing.TB) *github {
	t.Helper()
	g := &github{repos: map[string][]string{}, runs: map[string][]fakeRun{}, remaining: 5000, reset: time.Now().Add(time.Hour)}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *github) serve(w http.ResponseWriter, r *http.Request) {
	g.calls.Add(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if r.Header.Get("Authorization") != "Bearer "+token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`))
		return
	}
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(g.reset.Unix(), 10))
	if g.remaining <= 0 {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`))
		return
	}
	g.remaining--
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(g.remaining))
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	enc := json.NewEncoder(w)
	switch {
	case len(parts) == 3 && (parts[0] == "orgs" || parts[0] == "users") && parts[2] == "repos" && g.repos[parts[1]] != nil:
		var out []map[string]any
		for i, n := range g.repos[parts[1]] {
			out = append(out, map[string]any{"id": i + 1, "name": n, "full_name": parts[1] + "/" + n})
		}
		_ = enc.Encode(out)
	case len(parts) == 5 && parts[0] == "repos" && parts[3] == "actions" && parts[4] == "runs":
		status := r.URL.Query().Get("status")
		var out []map[string]any
		for _, run := range g.runs[parts[1]+"/"+parts[2]] {
			if run.status == status {
				out = append(out, map[string]any{"id": run.id, "status": run.status,
					"jobs_url": fmt.Sprintf("%s/repos/%s/%s/actions/runs/%d/jobs", g.srv.URL, parts[1], parts[2], run.id)})
			}
		}
		_ = enc.Encode(map[string]any{"total_count": len(out), "workflow_runs": out})
	case len(parts) == 7 && parts[0] == "repos" && parts[4] == "runs" && parts[6] == "jobs":
		id, _ := strconv.ParseInt(parts[5], 10, 64)
		var out []map[string]any
		for _, run := range g.runs[parts[1]+"/"+parts[2]] {
			if run.id == id {
				for i, j := range run.jobs {
					out = append(out, map[string]any{"id": id*100 + int64(i), "run_id": id, "status": j.Status, "labels": j.Labels})
				}
			}
		}
		_ = enc.Encode(map[string]any{"total_count": len(out), "jobs": out})
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`))
	}
}

func (g *github) addRun(repo, status string, jobs ...job) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs[repo] = append(g.runs[repo], fakeRun{id: int64(len(g.runs[repo]) + 1), status: status, jobs: jobs})
}

func queued(labels ...string) job { return job{Status: "queued", Labels: labels} }

func newScaler(t testing.TB, g *github, md, auth map[string]string) *Scaler {
	t.Helper()
	if auth == nil {
		auth = map[string]string{"personalAccessToken": token}
	}
	base := map[string]string{"owner": "acme", "runnerScope": "org", "githubApiURL": g.srv.URL}
	return scalertest.New[*Scaler](t, New, &scalers.TriggerConfig{Type: Type, Index: 4, Metadata: scalertest.With(base, md), AuthParams: auth})
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"owner": "acme", "runnerScope": "org"}
	auth := map[string]string{"personalAccessToken": "ghp_secret_value"}
	scalertest.ParseTableFunc(t, Type, scalers.ParseExternal[Metadata], []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: defaults, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.TargetWorkflowQueueLength != 1 || m.ActivationTargetWorkflowQueueLength != 0 || m.NoDefaultLabels ||
				m.api.String() != "https://api.github.com" || len(m.Repos) != 0 || len(m.Labels) != 0 {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: scalertest.WithPairs(defaults, "runnerScope", "ent", "repos", "a, b", "labels", "gpu,arm64",
			"noDefaultLabels", "true", "targetWorkflowQueueLength", "3", "activationTargetWorkflowQueueLength", "2",
			"githubApiURL", "https://ghe.example.com/api/v3/"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.RunnerScope != "ent" || len(m.Repos) != 2 || m.Repos[1] != "b" || len(m.Labels) != 2 || !m.NoDefaultLabels ||
				m.TargetWorkflowQueueLength != 3 || m.ActivationTargetWorkflowQueueLength != 2 || m.api.String() != "https://ghe.example.com/api/v3" {
				t.Errorf("fields wrong: %+v %s", m, m.api)
			}
		}},
		{Name: "missing owner", MD: scalertest.WithPairs(defaults, "owner", scalertest.Delete), Auth: auth, WantErr: `"owner"`},
		{Name: "owner with slash", MD: scalertest.WithPairs(defaults, "owner", "acme/web"), Auth: auth, WantErr: "owner"},
		{Name: "missing runnerScope", MD: scalertest.WithPairs(defaults, "runnerScope", scalertest.Delete), Auth: auth, WantErr: `"runnerScope"`},
		{Name: "bad runnerScope", MD: scalertest.WithPairs(defaults, "runnerScope", "organization"), Auth: auth, WantErr: "runnerScope: want one of"},
		{Name: "ent without repos", MD: scalertest.WithPairs(defaults, "runnerScope", "ent"), Auth: auth, WantErr: "repos: required"},
		{Name: "repo with owner", MD: scalertest.WithPairs(defaults, "repos", "acme/web"), Auth: auth, WantErr: "repos"},
		{Name: "target text", MD: scalertest.WithPairs(defaults, "targetWorkflowQueueLength", "one"), Auth: auth, WantErr: "targetWorkflowQueueLength: want integer"},
		{Name: "target zero", MD: scalertest.WithPairs(defaults, "targetWorkflowQueueLength", "0"), Auth: auth, WantErr: "targetWorkflowQueueLength"},
		{Name: "activation negative", MD: scalertest.WithPairs(defaults, "activationTargetWorkflowQueueLength", "-1"), Auth: auth, WantErr: "activationTargetWorkflowQueueLength"},
		{Name: "noDefaultLabels bad", MD: scalertest.WithPairs(defaults, "noDefaultLabels", "sometimes"), Auth: auth, WantErr: "noDefaultLabels"},
		{Name: "githubApiURL bad", MD: scalertest.WithPairs(defaults, "githubApiURL", "api.github.com"), Auth: auth, WantErr: "githubApiURL"},
		{Name: "no token", MD: defaults, WantErr: "personalAccessToken: required"},
		{Name: "app auth refused", MD: scalertest.WithPairs(defaults, "applicationID", "1", "installationID", "2"), Auth: map[string]string{"appKey": "k"}, WantErr: "applicationID"},
	})
}

func TestQueueLength(t *testing.T) {
	g := newGitHub(t)
	g.repos["acme"] = []string{"web", "api"}
	s := newScaler(t, g, map[string]string{"activationTargetWorkflowQueueLength": "1", "targetWorkflowQueueLength": "2"}, nil)
	if specs := s.MetricSpecs(); specs[0].External.Metric.Name != "s4-github-runner-acme" || specs[0].External.Target.AverageValue.Value() != 2 {
		t.Fatalf("specs = %+v", specs[0].External)
	}
	if v, active := scalertest.Sample(t, s, "s4-github-runner-acme"); v != 0 || active {
		t.Errorf("nothing queued: %v %v", v, active)
	}
	g.addRun("acme/web", "queued", queued("self-hosted", "linux"))
	if v, active := scalertest.Sample(t, s, ""); v != 1 || active {
		t.Errorf("one job at activation: %v %v, want 1 false", v, active)
	}
	g.addRun("acme/api", "in_progress", queued("self-hosted"), queued("X64"), job{Status: "in_progress", Labels: []string{"self-hosted"}})
	g.addRun("acme/api", "queued", queued("self-hosted", "gpu"), queued())
	g.addRun("acme/api", "completed", queued("self-hosted"))
	g.addRun("other/web", "queued", queued("self-hosted"))
	// web: 1; api in_progress run: 2 queued jobs; api queued run: the gpu job needs a label the runner lacks, the
	// unlabelled one counts; completed runs and other owners do not.
	if v, active := scalertest.Sample(t, s, ""); v != 4 || !active {
		t.Errorf("above target: %v %v, want 4 true", v, active)
	}
	gpu := newScaler(t, g, map[string]string{"repos": "api", "labels": "GPU"}, nil)
	if v, _ := scalertest.Sample(t, gpu, ""); v != 4 {
		t.Errorf("gpu runner on api: %v, want 4", v)
	}
	bare := newScaler(t, g, map[string]string{"repos": "api", "labels": "gpu", "noDefaultLabels": "true"}, nil)
	if v, _ := scalertest.Sample(t, bare, ""); v != 1 {
		t.Errorf("gpu-only runner: %v, want 1 (the unlabelled job)", v)
	}
	g.repos["solo"] = []string{"tool"}
	g.addRun("solo/tool", "queued", queued("linux"))
	user := newScaler(t, g, map[string]string{"owner": "solo", "runnerScope": "repo"}, nil)
	if v, _ := scalertest.Sample(t, user, ""); v != 1 {
		t.Errorf("user repos: %v, want 1", v)
	}
}

func TestAuthFailure(t *testing.T) {
	g := newGitHub(t)
	log, logs := scalertest.ObservedLogger()
	s, err := New(context.Background(), &scalers.TriggerConfig{Type: Type, Logger: log,
		Metadata:   map[string]string{"owner": "acme", "runnerScope": "org", "repos": "web", "githubApiURL": g.srv.URL},
		AuthParams: map[string]string{"personalAccessToken": "ghp_wrongToken999"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "personalAccessToken: GitHub answered 401") || !strings.Contains(err.Error(), "Bad credentials") {
		t.Fatalf("wrong token: %v", err)
	}
	scalertest.AssertNoSecret(t, "ghp_wrongToken999", err.Error(), logs.All())
}

func TestRateLimit(t *testing.T) {
	g := newGitHub(t)
	g.addRun("acme/web", "queued", queued("self-hosted"))
	s := newScaler(t, g, map[string]string{"repos": "web"}, nil)
	now := time.Now()
	s.now = func() time.Time { return now }
	g.mu.Lock()
	g.remaining, g.reset = 2, now.Add(10*time.Minute)
	g.mu.Unlock()
	// Two runs lists and one jobs list: the third request is refused with 403 and X-RateLimit-Remaining 0.
	_, _, err := s.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rate limit") || !strings.Contains(err.Error(), "X-RateLimit-Reset") {
		t.Fatalf("limit hit: %v", err)
	}
	before := g.calls.Load()
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "no request until") {
		t.Fatalf("during back-off: %v", err)
	}
	if g.calls.Load() != before {
		t.Errorf("the scaler called GitHub while the rate limit was exhausted")
	}
	g.mu.Lock()
	g.remaining = 5000
	g.mu.Unlock()
	now = now.Add(11 * time.Minute)
	if v, _ := scalertest.Sample(t, s, ""); v != 1 {
		t.Errorf("after reset: %v, want 1", v)
	}
}

func TestServerDownAndNotFound(t *testing.T) {
	g := newGitHub(t)
	missing := newScaler(t, g, map[string]string{"owner": "ghost"}, nil)
	if _, _, err := missing.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown org: %v", err)
	}
	s := newScaler(t, g, map[string]string{"repos": "web"}, nil)
	g.srv.Close()
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "githubApiURL: GET /repos/acme/web/actions/runs") {
		t.Errorf("server down: %v", err)
	}
}

// BenchmarkSample measures one Sample over one repository with a queued and an in-progress run (four GETs).
func BenchmarkSample(b *testing.B) {
	g := newGitHub(b)
	g.remaining = 1 << 30
	g.addRun("acme/web", "queued", queued("self-hosted"), queued("linux"))
	g.addRun("acme/web", "in_progress", queued("self-hosted"))
	scalertest.BenchmarkSample(b, newScaler(b, g, map[string]string{"repos": "web"}, nil))
}
