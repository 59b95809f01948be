// Package azurepipelines is Tidal's Azure Pipelines scaler: trigger type "azure-pipelines", with KEDA's metadata
// names, defaults and semantics. The metric is the number of unfinished job requests (no result yet) of an agent
// pool that an agent of this workload could take, read from the Azure DevOps REST API
// (GET {organizationURL}/_apis/distributedtask/pools/{poolID}/jobrequests) with a personal access token.
//
// Which jobs count, as in KEDA:
//   - neither parent nor demands: every unfinished job of the pool;
//   - demands (comma-separated capabilities of this agent; Agent.Version demands are ignored on both sides): a job
//     counts when each of its demands is one of the agent's; with requireAllDemands also every agent demand must
//     be the job's, with requireAllDemandsAndIgnoreOthers every agent demand must be the job's and the job's other
//     demands are ignored; caseInsensitiveDemandsProcessing compares without case;
//   - parent (the name of a template agent registered in the pool): a job counts when Azure DevOps matched it to
//     that agent.
//
// jobsToFetch (default 250) bounds the request with $top; fetchUnfinishedJobsOnly asks the service for unfinished
// requests only (completedRequestCount=0) instead; with parent the whole list is read (as KEDA does, since $top
// changes the response's shape). poolName is resolved to the pool's ID on the first sample and kept. Rate-limit
// headers (X-RateLimit-Remaining, X-RateLimit-Delay) are logged at debug level; a 429 is an error naming
// Retry-After, so the caller falls back instead of dropping the workload to zero.
//
// The metric is s<index>-azure-pipelines-<poolID>, or -<poolName> when the pool is given by name (KEDA resolves
// the name while it builds the scaler; Tidal builds without network calls).
package azurepipelines

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpscaler"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "azure-pipelines"

const (
	callTimeout        = 30 * time.Second
	defaultJobsToFetch = 250
	maxErrorBody       = 256
)

// Metadata is the azure-pipelines trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	OrganizationURL     string `tidal:"name=organizationURL,order=authParams;triggerMetadata"`
	PersonalAccessToken string `tidal:"name=personalAccessToken,order=authParams;triggerMetadata"`

	PoolName                             string `tidal:"name=poolName,optional"`
	PoolID                               int64  `tidal:"name=poolID,optional,range=1;"`
	Parent                               string `tidal:"name=parent,optional"`
	Demands                              string `tidal:"name=demands,optional"`
	TargetPipelinesQueueLength           int64  `tidal:"name=targetPipelinesQueueLength,default=1,target"`
	ActivationTargetPipelinesQueueLength int64  `tidal:"name=activationTargetPipelinesQueueLength,default=0,range=0;"`
	JobsToFetch                          *int64 `tidal:"name=jobsToFetch,optional,range=1;"`
	FetchUnfinishedJobsOnly              *bool  `tidal:"name=fetchUnfinishedJobsOnly,optional"`
	RequireAllDemands                    bool   `tidal:"name=requireAllDemands,default=false"`
	RequireAllDemandsAndIgnoreOthers     bool   `tidal:"name=requireAllDemandsAndIgnoreOthers,default=false"`
	CaseInsensitiveDemandsProcessing     bool   `tidal:"name=caseInsensitiveDemandsProcessing,default=false"`

	org     *url.URL
	demands []string
}

// Validate checks the organization URL, the pool and the cross-field rules.
func (m *Metadata) Validate() error {
	var errs []error
	u, err := url.Parse(strings.TrimSpace(m.OrganizationURL))
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, errors.New("organizationURL: want https://dev.azure.com/<organization> (or an Azure DevOps Server collection URL)"))
	case strings.Trim(u.Path, "/") == "":
		errs = append(errs, errors.New("organizationURL: the URL names no organization (https://dev.azure.com/<organization>)"))
	default:
		u.Path = strings.TrimSuffix(u.Path, "/")
		m.org = u
	}
	m.PersonalAccessToken = strings.TrimSuffix(m.PersonalAccessToken, "\n")
	if strings.TrimSpace(m.PersonalAccessToken) == "" {
		errs = append(errs, errors.New("personalAccessToken: must not be empty"))
	}
	switch {
	case m.PoolName == "" && m.PoolID == 0:
		errs = append(errs, errors.New("poolName: required (or poolID)"))
	case m.PoolName != "" && m.PoolID != 0:
		errs = append(errs, errors.New("poolName, poolID: give one, not both"))
	}
	if m.JobsToFetch != nil && m.FetchUnfinishedJobsOnly != nil {
		errs = append(errs, errors.New("jobsToFetch, fetchUnfinishedJobsOnly: give one, not both"))
	}
	if m.JobsToFetch != nil && m.Parent != "" {
		errs = append(errs, errors.New("jobsToFetch, parent: give one, not both (with parent every job request is read)"))
	}
	if m.RequireAllDemands && m.RequireAllDemandsAndIgnoreOthers {
		errs = append(errs, errors.New("requireAllDemands, requireAllDemandsAndIgnoreOthers: give one, not both"))
	}
	if m.Demands != "" {
		m.demands = withoutAgentVersion(strings.Split(m.Demands, ","))
	}
	return errors.Join(errs...)
}

// withoutAgentVersion trims the demands and drops the empty ones and Agent.Version ones, which every agent
// meets.
func withoutAgentVersion(demands []string) []string {
	out := make([]string, 0, len(demands))
	for _, d := range demands {
		if d = strings.TrimSpace(d); d != "" && !strings.HasPrefix(d, "Agent.Version") {
			out = append(out, d)
		}
	}
	return out
}

// Scaler counts one agent pool's queued job requests.
type Scaler struct {
	httpscaler.Base
	meta Metadata
	log  *zap.Logger

	mu     sync.Mutex
	poolID int64 // resolved from poolName on first use
}

// New parses the trigger; nothing is sent until Sample.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	if _, inline := cfg.Metadata["personalAccessToken"]; inline {
		// A token written into the trigger would be stored in the object and shown by every get: refuse it.
		return nil, cfg.Errorf("personalAccessToken: give it in a TriggerAuthentication or through personalAccessTokenFromEnv, not in the trigger metadata")
	}
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		pool := m.PoolName
		if m.PoolID != 0 {
			pool = strconv.FormatInt(m.PoolID, 10)
		}
		return httpscaler.Options{Metric: cfg.MetricName(TriggerType, pool), Target: float64(m.TargetPipelinesQueueLength),
			Activation: float64(m.ActivationTargetPipelinesQueueLength), Client: httpauth.ClientOptions{Timeout: callTimeout}}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta, poolID: meta.PoolID, log: cfg.Logger.With(zap.String("trigger", cfg.ID()))}
	})
}

// Sample counts the matching unfinished job requests; active above activationTargetPipelinesQueueLength.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	n, err := s.queueLength(ctx)
	return s.Report(float64(n), err, "")
}

// jobRequest is the part of an Azure DevOps TaskAgentJobRequest the count needs.
type jobRequest struct {
	Result        *string  `json:"result"`
	Demands       []string `json:"demands"`
	MatchedAgents []struct {
		Name string `json:"name"`
	} `json:"matchedAgents"`
}

func (s *Scaler) queueLength(ctx context.Context) (int64, error) {
	pool, err := s.pool(ctx)
	if err != nil {
		return 0, err
	}
	q := url.Values{}
	switch {
	case s.meta.FetchUnfinishedJobsOnly != nil && *s.meta.FetchUnfinishedJobsOnly:
		q.Set("completedRequestCount", "0")
	case s.meta.Parent == "":
		top := int64(defaultJobsToFetch)
		if s.meta.JobsToFetch != nil {
			top = *s.meta.JobsToFetch
		}
		q.Set("$top", strconv.FormatInt(top, 10))
	}
	var page struct {
		Value []jobRequest `json:"value"`
	}
	if err := s.get(ctx, fmt.Sprintf("_apis/distributedtask/pools/%d/jobrequests", pool), q, &page); err != nil {
		return 0, fmt.Errorf("pool %d job requests: %w", pool, err)
	}
	var n int64
	for _, j := range page.Value {
		if j.Result == nil && s.matches(j) {
			n++
		}
	}
	return n, nil
}

// matches applies parent, then demands, as KEDA does.
func (s *Scaler) matches(j jobRequest) bool {
	if s.meta.Parent != "" {
		for _, a := range j.MatchedAgents {
			if a.Name == s.meta.Parent {
				return true
			}
		}
		return false
	}
	if s.meta.Demands == "" {
		return true
	}
	jobDemands := withoutAgentVersion(j.Demands)
	met := 0
	for _, jd := range jobDemands {
		for _, ad := range s.meta.demands {
			if jd == ad || (s.meta.CaseInsensitiveDemandsProcessing && strings.EqualFold(jd, ad)) {
				met++
			}
		}
	}
	switch {
	case s.meta.RequireAllDemands:
		return met == len(jobDemands) && met == len(s.meta.demands)
	case s.meta.RequireAllDemandsAndIgnoreOthers:
		return met == len(s.meta.demands)
	}
	return met == len(jobDemands)
}

// pool returns the pool's ID, resolving poolName once.
func (s *Scaler) pool(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poolID != 0 {
		return s.poolID, nil
	}
	var pools struct {
		Value []struct {
			ID int64 `json:"id"`
		} `json:"value"`
	}
	if err := s.get(ctx, "_apis/distributedtask/pools", url.Values{"poolName": {s.meta.PoolName}}, &pools); err != nil {
		return 0, fmt.Errorf("poolName %q: %w", s.meta.PoolName, err)
	}
	switch len(pools.Value) {
	case 0:
		return 0, fmt.Errorf("poolName: no agent pool is named %q", s.meta.PoolName)
	case 1:
		s.poolID = pools.Value[0].ID
		return s.poolID, nil
	}
	return 0, fmt.Errorf("poolName: %d agent pools are named %q; give poolID", len(pools.Value), s.meta.PoolName)
}

// get sends an authenticated GET to the organization's API and decodes the JSON answer into dst. Errors carry
// the status and the start of the body, never the token.
func (s *Scaler) get(ctx context.Context, path string, q url.Values, dst any) error {
	u := *s.meta.org
	u.Path += "/" + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("", s.meta.PersonalAccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if v := resp.Header.Get("X-RateLimit-Remaining"); v != "" {
		s.log.Debug("Azure DevOps rate limit", zap.String("remaining", v), zap.String("delay", resp.Header.Get("X-RateLimit-Delay")))
	}
	if resp.StatusCode == http.StatusNonAuthoritativeInfo {
		// Azure DevOps answers a request it cannot authenticate with its sign-in page and 203.
		return errors.New("HTTP 203: Azure DevOps answered with its sign-in page: the personal access token was not accepted")
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
		if ra := resp.Header.Get("Retry-After"); resp.StatusCode == http.StatusTooManyRequests && ra != "" {
			msg += " (rate limited; Retry-After " + ra + "s)"
		}
		if b := strings.TrimSpace(strings.ReplaceAll(string(body), s.meta.PersonalAccessToken, "[redacted]")); b != "" {
			msg += ": " + b
		}
		return errors.New(msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	return nil
}

// Register adds the azure-pipelines scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
