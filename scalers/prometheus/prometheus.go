// Package prometheus is Tidal's Prometheus scaler: trigger type "prometheus", with KEDA's metadata names,
// defaults and result handling. It runs an instant query against the Prometheus HTTP API (/api/v1/query), which
// Thanos Querier, Cortex, Mimir and VictoriaMetrics also serve, and reports the single value it returns.
//
// Result handling mirrors KEDA: an empty result (or an empty value) is 0 when ignoreNullValues (the default) and
// an error otherwise; more than one series is an error; NaN and ±Inf are 0 when ignoreNullValues and an error
// otherwise. Tidal also accepts a scalar result (KEDA rejects it); a matrix or string result is an error.
//
// Authentication (authModes, comma separated): bearer (authParams bearerToken), basic (username, password),
// custom (customAuthHeader, customAuthValue), oauth (an OAuth2 client-credentials token: oauthTokenURI, clientID,
// clientSecret, optional scopes and endpointParams; fetched once, cached until shortly before it expires and shared
// by the triggers of the same client), tls (cert, key, optional keyPassword), and ca on its own for a private CA.
// bearer, basic, custom and oauth are exclusive; tls combines with any of them (and also reaches the token
// endpoint).
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpscaler"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "prometheus"

// defaultTimeout is KEDA's global HTTP timeout default.
const defaultTimeout = 3 * time.Second

// Metadata is the prometheus trigger's metadata and authentication, with KEDA's names and defaults.
type Metadata struct {
	ServerAddress       string            `tidal:"name=serverAddress"`
	Query               string            `tidal:"name=query"`
	QueryParameters     map[string]string `tidal:"name=queryParameters,optional"`
	Threshold           float64           `tidal:"name=threshold,target"`
	ActivationThreshold float64           `tidal:"name=activationThreshold,default=0"`
	// Namespace is sent as the namespace query parameter, for Thanos Querier / prom-label-proxy tenancy.
	Namespace        string            `tidal:"name=namespace,optional"`
	CustomHeaders    map[string]string `tidal:"name=customHeaders,optional"`
	IgnoreNullValues bool              `tidal:"name=ignoreNullValues,default=true"`
	UnsafeSsl        bool              `tidal:"name=unsafeSsl,default=false"`
	// Timeout is KEDA's per-trigger HTTP timeout: a number of milliseconds, or a Go duration such as "5s".
	Timeout string `tidal:"name=timeout,optional"`

	httpauth.Auth

	queryURL *url.URL
	timeout  time.Duration
}

// Validate checks the address, threshold, timeout and authentication rules.
func (m *Metadata) Validate() error {
	var errs []error
	u, err := url.Parse(m.ServerAddress)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("serverAddress: want an absolute http(s) URL, got %q", scalers.WithoutUserinfo(m.ServerAddress)))
	} else {
		u.Path = strings.TrimRight(u.Path, "/") + "/api/v1/query"
		u.RawPath = ""
		m.queryURL = u
	}
	if strings.TrimSpace(m.Query) == "" {
		errs = append(errs, errors.New("query: must not be empty"))
	}
	if m.Threshold <= 0 {
		errs = append(errs, fmt.Errorf("threshold: must be a positive number, got %v", m.Threshold))
	}
	m.timeout = defaultTimeout
	if m.Timeout != "" {
		d, err := scalers.ParseHTTPTimeout(m.Timeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("timeout: %w", err))
		}
		m.timeout = d
	}
	for k := range m.CustomHeaders {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			errs = append(errs, fmt.Errorf("customHeaders: invalid header name %q", k))
		}
	}
	errs = append(errs, m.Auth.Check()...)
	return errors.Join(errs...)
}

// Scaler runs one PromQL query.
type Scaler struct {
	httpscaler.Base
	meta Metadata
}

// New parses the trigger. HTTP transports are shared between triggers with the same TLS settings, OAuth2 tokens
// between triggers of the same OAuth2 client.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		return httpscaler.Options{Metric: cfg.MetricName("prometheus", ""), Target: m.Threshold, Activation: m.ActivationThreshold,
			Client: m.ClientOptions(m.UnsafeSsl, m.timeout)}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta}
	})
}

// Sample runs the query; the trigger is active when the value exceeds activationThreshold.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.query(ctx, time.Now())
	return s.Report(v, err, "query %q", s.meta.Query)
}

// Register adds the prometheus scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
