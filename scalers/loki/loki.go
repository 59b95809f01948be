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
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
	"github.com/tidalscale/tidal/scalers/tlsauth"
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

	AuthModes        string `tidal:"name=authModes,optional"`
	BearerToken      string `tidal:"name=bearerToken,order=authParams,optional"`
	Username         string `tidal:"name=username,order=authParams,optional"`
	Password         string `tidal:"name=password,order=authParams,optional"`
	CustomAuthHeader string `tidal:"name=customAuthHeader,order=authParams,optional"`
	CustomAuthValue  string `tidal:"name=customAuthValue,order=authParams,optional"`
	CA               string `tidal:"name=ca,order=authParams,optional"`
	Cert             string `tidal:"name=cert,order=authParams,optional"`
	Key              string `tidal:"name=key,order=authParams,optional"`
	KeyPassword      string `tidal:"name=keyPassword,order=authParams,optional"`
	httpauth.OAuth

	queryURL *url.URL
	modes    map[string]bool
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
	modes, modeErrs := httpauth.ParseModes("authModes", m.AuthModes, "bearer", "basic", "custom", "tls", httpauth.ModeOAuth)
	m.modes = modes
	errs = append(errs, modeErrs...)
	exclusive := 0
	for _, mode := range []string{"bearer", "basic", "custom", httpauth.ModeOAuth} {
		if m.modes[mode] {
			exclusive++
		}
	}
	if exclusive > 1 {
		errs = append(errs, errors.New("authModes: bearer, basic, custom and oauth cannot be combined"))
	}
	if m.modes[httpauth.ModeOAuth] {
		errs = append(errs, m.OAuth.Validate("authModes oauth")...)
	}
	if m.modes["bearer"] && m.BearerToken == "" {
		errs = append(errs, errors.New("bearerToken: required by authModes bearer"))
	}
	if m.modes["basic"] && m.Username == "" {
		errs = append(errs, errors.New("username: required by authModes basic"))
	}
	if m.modes["custom"] && (m.CustomAuthHeader == "" || m.CustomAuthValue == "") {
		errs = append(errs, errors.New("customAuthHeader and customAuthValue: required by authModes custom"))
	}
	if m.modes["tls"] && (m.Cert == "" || m.Key == "") {
		errs = append(errs, errors.New("cert and key: required by authModes tls"))
	}
	return errors.Join(errs...)
}

func (m *Metadata) credentials() httpauth.Credentials {
	switch {
	case m.modes["bearer"]:
		return httpauth.Credentials{BearerToken: m.BearerToken}
	case m.modes["basic"]:
		return httpauth.Credentials{Username: m.Username, Password: m.Password}
	case m.modes["custom"]:
		return httpauth.Credentials{Header: m.CustomAuthHeader, HeaderValue: m.CustomAuthValue}
	}
	return httpauth.Credentials{}
}

func (m *Metadata) tlsOptions() tlsauth.Options {
	o := tlsauth.Options{UnsafeSsl: m.UnsafeSsl, CA: m.CA}
	if m.modes["tls"] {
		o.Cert, o.Key, o.KeyPassword = m.Cert, m.Key, m.KeyPassword
	}
	return o
}

// Scaler runs one LogQL query.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	client     *httpauth.Client
}

var _ scalers.Scaler = (*Scaler)(nil)

// Register adds the loki scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger; the HTTP transport is shared between triggers with the same TLS settings.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	var oauth *httpauth.OAuth
	if meta.modes[httpauth.ModeOAuth] {
		oauth = &meta.OAuth
	}
	client, err := httpauth.AcquireClient(cfg.Shared, TriggerType, httpauth.ClientOptions{
		TLS: meta.tlsOptions(), Timeout: defaultTimeout, OAuth: oauth, Logger: cfg.Logger})
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	return &Scaler{cfg: cfg, meta: meta, metricName: cfg.MetricName("loki", ""), client: client}, nil
}

// MetricSpecs returns one External metric with threshold as its target.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, s.meta.Threshold)}
}

// Sample runs the query; the trigger is active when the value exceeds activationThreshold.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.query(ctx)
	if err != nil {
		return nil, false, s.cfg.Errorf("query %q: %w", s.meta.Query, err)
	}
	return []scalers.Sample{{MetricName: s.metricName, Value: v}}, v > s.meta.ActivationThreshold, nil
}

// Close releases the shared transport.
func (s *Scaler) Close(context.Context) error { return s.client.Close() }

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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("building the request: %w", err)
	}
	if s.meta.TenantName != "" {
		req.Header.Set("X-Scope-OrgID", s.meta.TenantName)
	}
	s.meta.credentials().Apply(req)
	if err := s.client.Authorize(ctx, req); err != nil {
		return 0, err
	}
	body, err := httpquery.Do(s.client.Client, req, "loki")
	if err != nil {
		return 0, err
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("decoding the response: %w", err)
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
