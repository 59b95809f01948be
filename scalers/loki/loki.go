// Package loki is Tidal's Grafana Loki scaler: trigger type "loki", with KEDA's metadata names, defaults and
// result handling. It runs a LogQL metric query as an instant query (GET /loki/api/v1/query) and reports the
// single value it returns.
//
// Result handling mirrors KEDA: an empty result or an empty value list is 0 when ignoreNullValues (the default)
// and an error otherwise; a null value is 0; more than one series is an error. A log (streams) query has no
// single value and is an error.
//
// Authentication (authModes, comma separated): bearer (authParams bearerToken), basic (username, password),
// custom (customAuthHeader, customAuthValue), oauth (an OAuth2 client-credentials token: oauthTokenURI, clientID,
// clientSecret, optional scopes and endpointParams; cached and shared by the triggers of the same client), tls
// (cert, key, optional keyPassword), ca for a private CA. bearer, basic, custom and oauth are exclusive.
// tenantName is sent as X-Scope-OrgID for multi-tenant Loki.
package loki

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
	"github.com/tidalscale/tidal/scalers/httpscaler"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "loki"

const (
	queryPath      = "/loki/api/v1/query"
	defaultTimeout = 3 * time.Second
)

// Metadata is the loki trigger's metadata and authentication, with KEDA's names and defaults.
type Metadata struct {
	ServerAddress       string  `tidal:"name=serverAddress"`
	Query               string  `tidal:"name=query"`
	Threshold           float64 `tidal:"name=threshold,target"`
	ActivationThreshold float64 `tidal:"name=activationThreshold,default=0"`
	TenantName          string  `tidal:"name=tenantName,optional"`
	IgnoreNullValues    bool    `tidal:"name=ignoreNullValues,default=true"`
	UnsafeSsl           bool    `tidal:"name=unsafeSsl,default=false"`

	httpauth.Auth

	queryURL *url.URL
}

// Validate checks the address, query, threshold and authentication rules.
func (m *Metadata) Validate() error {
	var errs []error
	u, err := url.Parse(m.ServerAddress)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("serverAddress: want an absolute http(s) URL, got %q", scalers.WithoutUserinfo(m.ServerAddress)))
	} else {
		// KEDA accepts the server root, a path prefix, or the full query endpoint.
		p := strings.TrimRight(u.Path, "/")
		if !strings.HasSuffix(p, queryPath) {
			p += queryPath
		}
		u.Path, u.RawPath, u.User = p, "", nil
		m.queryURL = u
	}
	if strings.TrimSpace(m.Query) == "" {
		errs = append(errs, errors.New("query: must not be empty"))
	}
	if m.Threshold <= 0 {
		errs = append(errs, fmt.Errorf("threshold: must be a positive number, got %v", m.Threshold))
	}
	errs = append(errs, m.Auth.Check()...)
	return errors.Join(errs...)
}

// Scaler runs one LogQL query.
type Scaler struct {
	httpscaler.Base
	meta Metadata
}

// New parses the trigger; the HTTP transport is shared between triggers with the same TLS settings.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		return httpscaler.Options{Metric: cfg.MetricName("loki", ""), Target: m.Threshold, Activation: m.ActivationThreshold,
			Client: m.ClientOptions(m.UnsafeSsl, defaultTimeout)}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta}
	})
}

// Sample runs the query; the trigger is active when the value exceeds activationThreshold.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.query(ctx)
	return s.Report(v, err, "query %q", s.meta.Query)
}

type response struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Value []any `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func (s *Scaler) query(ctx context.Context) (float64, error) {
	u := *s.meta.queryURL
	u.RawQuery = url.Values{"query": {s.meta.Query}}.Encode()
	var r response
	if _, err := (httpquery.Request{Service: "loki", URL: u.String(), Prepare: func(req *http.Request) error {
		if s.meta.TenantName != "" {
			req.Header.Set("X-Scope-OrgID", s.meta.TenantName)
		}
		s.meta.Credentials().Apply(req)
		return s.Client.Authorize(req.Context(), req)
	}}).JSON(ctx, s.Client.Client, &r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("loki returned status %q: %s", r.Status, httpquery.FirstLine(r.Error, 300))
	}
	if r.Data.ResultType != "vector" {
		return 0, fmt.Errorf("result type %q is not supported; want a metric query returning an instant vector (e.g. sum(count_over_time({app=\"x\"}[1m])))", r.Data.ResultType)
	}
	switch {
	case len(r.Data.Result) == 0:
		if s.meta.IgnoreNullValues {
			return 0, nil
		}
		return 0, errors.New("the result is empty (set ignoreNullValues to treat it as 0)")
	case len(r.Data.Result) > 1:
		return 0, fmt.Errorf("the query returned %d series, want one (aggregate it, e.g. with sum())", len(r.Data.Result))
	}
	pair := r.Data.Result[0].Value
	switch {
	case len(pair) == 0:
		if s.meta.IgnoreNullValues {
			return 0, nil
		}
		return 0, errors.New("the value list is empty (set ignoreNullValues to treat it as 0)")
	case len(pair) < 2:
		return 0, errors.New("the result has no value")
	case pair[1] == nil:
		return 0, nil
	}
	str, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("the value is a %T, want a string holding a number", pair[1])
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0, fmt.Errorf("the value %q is not a number", httpquery.FirstLine(str, 50))
	}
	return v, nil
}

// Register adds the loki scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
