// Package githubrunner implements the github-runner trigger: KEDA's GitHub Runner scaler. It counts the queued
// workflow jobs a self-hosted runner with the trigger's labels could take, through the GitHub REST API.
//
// Metadata (KEDA names):
//
//	owner                                   the organization, enterprise or user; required
//	runnerScope                             org, ent or repo; required
//	repos                                   comma-separated repository names under owner; without it every
//	                                        repository of owner is listed (org: /orgs/<owner>/repos, repo:
//	                                        /users/<owner>/repos; ent needs repos)
//	labels                                  the runner's labels; a job counts when all its labels are the
//	                                        runner's (plus self-hosted, linux, x64 unless noDefaultLabels)
//	noDefaultLabels                         default false
//	targetWorkflowQueueLength               default 1; activationTargetWorkflowQueueLength default 0
//	githubApiURL                            default https://api.github.com (GitHub Enterprise Server:
//	                                        https://host/api/v3)
//	personalAccessToken (authParams)        required: GitHub App authentication (applicationID, installationID,
//	                                        appKey) is not supported yet and is refused
//
// As in KEDA, jobs are read from the queued and in-progress workflow runs of each repository. GitHub's rate limit
// is honoured: when X-RateLimit-Remaining reaches 0 the trigger makes no request until X-RateLimit-Reset and
// reports an error naming the limit, so the caller falls back instead of the workload dropping to zero.
// The metric is s<index>-github-runner-<owner>.
package githubrunner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
)

// Type is the trigger type served by this package.
const Type = "github-runner"

const (
	callTimeout = 30 * time.Second
	perPage     = 100
	maxPages    = 10
)

var defaultLabels = []string{"self-hosted", "linux", "x64"}

// Register adds the github-runner trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the github-runner trigger's metadata.
type Metadata struct {
	Owner                               string   `tidal:"name=owner"`
	RunnerScope                         string   `tidal:"name=runnerScope,enum=org;ent;repo"`
	Repos                               []string `tidal:"name=repos,optional"`
	Labels                              []string `tidal:"name=labels,optional"`
	NoDefaultLabels                     bool     `tidal:"name=noDefaultLabels,default=false"`
	TargetWorkflowQueueLength           int64    `tidal:"name=targetWorkflowQueueLength,default=1,range=1;"`
	ActivationTargetWorkflowQueueLength int64    `tidal:"name=activationTargetWorkflowQueueLength,default=0,range=0;"`
	GitHubAPIURL                        string   `tidal:"name=githubApiURL;githubAPIURL,default=https://api.github.com"`

	PersonalAccessToken string `tidal:"name=personalAccessToken,order=authParams,optional"`
	ApplicationID       string `tidal:"name=applicationID,order=authParams;triggerMetadata,optional"`
	InstallationID      string `tidal:"name=installationID,order=authParams;triggerMetadata,optional"`
	AppKey              string `tidal:"name=appKey,order=authParams,optional"`

	api *url.URL
}

// Validate checks the cross-field rules.
func (m *Metadata) Validate() error {
	var errs []error
	if strings.TrimSpace(m.Owner) == "" || strings.ContainsAny(m.Owner, "/ ") {
		errs = append(errs, fmt.Errorf("owner: want an organization, enterprise or user name, got %q", m.Owner))
	}
	for _, r := range m.Repos {
		if strings.ContainsAny(r, "/ ") {
			errs = append(errs, fmt.Errorf("repos: want repository names under owner, got %q", r))
		}
	}
	if m.RunnerScope == "ent" && len(m.Repos) == 0 {
		errs = append(errs, errors.New("repos: required with runnerScope ent (GitHub cannot list an enterprise's repositories)"))
	}
	u, err := url.Parse(m.GitHubAPIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("githubApiURL: want an http(s) URL, got %q", m.GitHubAPIURL))
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/")
		m.api = u
	}
	if m.ApplicationID != "" || m.InstallationID != "" || m.AppKey != "" {
		errs = append(errs, errors.New("applicationID: GitHub App authentication is not supported yet; use personalAccessToken"))
	} else if m.PersonalAccessToken == "" {
		errs = append(errs, errors.New("personalAccessToken: required in authParams"))
	}
	return errors.Join(errs...)
}

// Scaler is a github-runner trigger.
type Scaler struct {
	scalers.OneMetric
	cfg         *scalers.TriggerConfig
	meta        Metadata
	runnerLabel []string
	http        *http.Client
	now         func() time.Time
	log         *zap.Logger

	mu         sync.Mutex
	limitReset time.Time // no request before this time: the rate limit is exhausted
}

// New builds a github-runner trigger.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, err := scalers.ParseExternal[Metadata](cfg)
	if err != nil {
		return nil, err
	}
	labels := slices.Clone(meta.Labels)
	if !meta.NoDefaultLabels {
		labels = append(labels, defaultLabels...)
	}
	for i := range labels {
		labels[i] = strings.ToLower(labels[i])
	}
	return &Scaler{
		cfg:         cfg,
		meta:        meta,
		OneMetric:   scalers.NewOneMetric(cfg, cfg.MetricName("github-runner", meta.Owner), float64(meta.TargetWorkflowQueueLength), float64(meta.ActivationTargetWorkflowQueueLength)),
		runnerLabel: labels,
		http:        &http.Client{Timeout: callTimeout},
		now:         time.Now,
		log:         cfg.Logger.With(zap.String("trigger", cfg.ID())),
	}, nil
}

// Sample counts the queued jobs this runner could take; active above activationTargetWorkflowQueueLength.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	n, err := s.queueLength(ctx)
	if err != nil {
		s.log.Debug("github-runner sample failed", zap.String("error", err.Error()))
		return nil, false, err
	}
	return s.Value(float64(n))
}

type run struct {
	ID      int64  `json:"id"`
	JobsURL string `json:"jobs_url"`
}

type job struct {
	Status string   `json:"status"`
	Labels []string `json:"labels"`
}

func (s *Scaler) queueLength(ctx context.Context) (int64, error) {
	repos := s.meta.Repos
	if len(repos) == 0 {
		var err error
		if repos, err = s.listRepos(ctx); err != nil {
			return 0, err
		}
	}
	var n int64
	for _, repo := range repos {
		for _, status := range []string{"queued", "in_progress"} {
			var runs []run
			err := s.pages(ctx, s.endpoint("repos", s.meta.Owner, repo, "actions", "runs")+"?status="+status, func(body []byte) (int, error) {
				var page struct {
					WorkflowRuns []run `json:"workflow_runs"`
				}
				err := json.Unmarshal(body, &page)
				runs = append(runs, page.WorkflowRuns...)
				return len(page.WorkflowRuns), err
			})
			if err != nil {
				return 0, err
			}
			for _, r := range runs {
				jobsURL := r.JobsURL
				if jobsURL == "" {
					jobsURL = s.endpoint("repos", s.meta.Owner, repo, "actions", "runs", strconv.FormatInt(r.ID, 10), "jobs")
				}
				err := s.pages(ctx, jobsURL, func(body []byte) (int, error) {
					var page struct {
						Jobs []job `json:"jobs"`
					}
					err := json.Unmarshal(body, &page)
					for _, j := range page.Jobs {
						if j.Status == "queued" && s.canRun(j.Labels) {
							n++
						}
					}
					return len(page.Jobs), err
				})
				if err != nil {
					return 0, err
				}
			}
		}
	}
	return n, nil
}

// canRun reports whether every label the job asks for is one of the runner's (GitHub matches labels
// case-insensitively).
func (s *Scaler) canRun(jobLabels []string) bool {
	for _, l := range jobLabels {
		if !slices.Contains(s.runnerLabel, strings.ToLower(l)) {
			return false
		}
	}
	return true
}

func (s *Scaler) listRepos(ctx context.Context) ([]string, error) {
	kind := "orgs"
	if s.meta.RunnerScope == "repo" {
		kind = "users"
	}
	var names []string
	err := s.pages(ctx, s.endpoint(kind, s.meta.Owner, "repos"), func(body []byte) (int, error) {
		var page []struct {
			Name string `json:"name"`
		}
		err := json.Unmarshal(body, &page)
		for _, r := range page {
			names = append(names, r.Name)
		}
		return len(page), err
	})
	return names, err
}

func (s *Scaler) endpoint(parts ...string) string {
	u := *s.meta.api
	for _, p := range parts {
		u.Path += "/" + url.PathEscape(p)
	}
	return u.String()
}

var nextLink = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

// pages GETs u and follows Link rel="next" up to maxPages, handing each body to page.
func (s *Scaler) pages(ctx context.Context, u string, page func([]byte) (int, error)) error {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	u += sep + "per_page=" + strconv.Itoa(perPage)
	for i := 0; i < maxPages && u != ""; i++ {
		body, next, err := s.get(ctx, u)
		if err != nil {
			return err
		}
		if _, err := page(body); err != nil {
			return s.cfg.Errorf("githubApiURL: %s: response is not the documented JSON: %w", s.path(u), err)
		}
		u = next
	}
	return nil
}

// path is u without host and query, for errors.
func (s *Scaler) path(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return "(bad URL)"
}

func (s *Scaler) get(ctx context.Context, u string) ([]byte, string, error) {
	s.mu.Lock()
	reset := s.limitReset
	s.mu.Unlock()
	if now := s.now(); now.Before(reset) {
		return nil, "", s.cfg.Errorf("GitHub API rate limit exhausted (X-RateLimit-Remaining 0); no request until X-RateLimit-Reset %s", reset.UTC().Format(time.RFC3339))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", s.cfg.Errorf("githubApiURL: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Authorization", "Bearer "+s.meta.PersonalAccessToken)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, "", s.cfg.Errorf("githubApiURL: GET %s: %s", s.path(u), s.cfg.Redact(err.Error()))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, "", s.cfg.Errorf("githubApiURL: GET %s: %s", s.path(u), err)
	}
	limited := s.noteRateLimit(resp.Header)
	switch {
	case resp.StatusCode == http.StatusOK:
	case limited && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests):
		s.mu.Lock()
		reset = s.limitReset
		s.mu.Unlock()
		return nil, "", s.cfg.Errorf("GitHub API rate limit exceeded (X-RateLimit-Remaining 0); backing off until X-RateLimit-Reset %s", reset.UTC().Format(time.RFC3339))
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, "", s.cfg.Errorf("personalAccessToken: GitHub answered %s: %s", resp.Status, s.message(body))
	default:
		return nil, "", s.cfg.Errorf("githubApiURL: GET %s: %s: %s", s.path(u), resp.Status, s.message(body))
	}
	next := ""
	if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
		next = m[1]
	}
	return body, next, nil
}

// noteRateLimit records X-RateLimit-Reset when X-RateLimit-Remaining is 0 (or Retry-After is set), and reports
// whether the limit is exhausted.
func (s *Scaler) noteRateLimit(h http.Header) bool {
	var until time.Time
	if ra := h.Get("Retry-After"); ra != "" {
		if sec, err := strconv.Atoi(ra); err == nil {
			until = s.now().Add(time.Duration(sec) * time.Second)
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if sec, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil && time.Unix(sec, 0).After(until) {
			until = time.Unix(sec, 0)
		} else if until.IsZero() {
			until = s.now().Add(time.Minute)
		}
	}
	if until.IsZero() {
		return false
	}
	s.mu.Lock()
	s.limitReset = until
	s.mu.Unlock()
	return true
}

// message extracts GitHub's error message, redacted and short.
func (s *Scaler) message(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return s.cfg.Redact(e.Message)
	}
	return fmt.Sprintf("%d bytes of non-JSON body", len(body))
}

// Close releases idle connections.
func (s *Scaler) Close(context.Context) error {
	s.http.CloseIdleConnections()
	return nil
}
