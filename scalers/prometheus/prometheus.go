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

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "prometheus"

// defaultTimeout is KEDA's global HTTP timeout default.
const defaultTimeout = 3 * time.Second

// Auth modes.
const (
	authBearer = "bearer"
	authBasic  = "basic"
	authTLS    = "tls"
	authCustom = "custom"
	authOAuth  = httpauth.ModeOAuth
)

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
	timeout  time.Duration
	modes    map[string]bool
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
	errs = append(errs, m.validateAuth()...)
	return errors.Join(errs...)
}

func (m *Metadata) validateAuth() []error {
	modes, errs := httpauth.ParseModes("authModes", m.AuthModes, authBearer, authBasic, authTLS, authCustom, authOAuth)
	m.modes = modes
	exclusive := 0
	for _, mode := range []string{authBearer, authBasic, authCustom, authOAuth} {
		if m.modes[mode] {
			exclusive++
		}
	}
	if exclusive > 1 {
		errs = append(errs, errors.New("authModes: bearer, basic, custom and oauth cannot be combined"))
	}
	if m.modes[authOAuth] {
		errs = append(errs, m.OAuth.Validate("authModes oauth")...)
	}
	if m.modes[authBearer] && m.BearerToken == "" {
		errs = append(errs, errors.New("bearerToken: required by authModes bearer"))
	}
	if m.modes[authBasic] && m.Username == "" {
		errs = append(errs, errors.New("username: required by authModes basic"))
	}
	if m.modes[authCustom] && (m.CustomAuthHeader == "" || m.CustomAuthValue == "") {
		errs = append(errs, errors.New("customAuthHeader and customAuthValue: required by authModes custom"))
	}
	if m.modes[authTLS] && (m.Cert == "" || m.Key == "") {
		errs = append(errs, errors.New("cert and key: required by authModes tls"))
	}
	return errs
}

// tlsOptions are the transport's TLS settings: unsafeSsl and ca always, the client certificate with authModes tls.
func (m *Metadata) tlsOptions() tlsauth.Options {
	o := tlsauth.Options{UnsafeSsl: m.UnsafeSsl, CA: m.CA}
	if m.modes[authTLS] {
		o.Cert, o.Key, o.KeyPassword = m.Cert, m.Key, m.KeyPassword
	}
	return o
}

// credentials are what the active (exclusive) auth mode adds to a request: a bearer token, basic auth or the
// custom header.
func (m *Metadata) credentials() httpauth.Credentials {
	switch {
	case m.modes[authBearer]:
		return httpauth.Credentials{BearerToken: m.BearerToken}
	case m.modes[authBasic]:
		return httpauth.Credentials{Username: m.Username, Password: m.Password}
	case m.modes[authCustom]:
		return httpauth.Credentials{Header: m.CustomAuthHeader, HeaderValue: m.CustomAuthValue}
	}
	return httpauth.Credentials{}
}

// oauth is the OAuth2 configuration with authModes oauth, nil otherwise.
func (m *Metadata) oauth() *httpauth.OAuth {
	if !m.modes[authOAuth] {
		return nil
	}
	return &m.OAuth
}

// Scaler runs one PromQL query.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	client     *httpauth.Client
}

var _ scalers.Scaler = (*Scaler)(nil)

// Register adds the prometheus scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger. HTTP transports are shared between triggers with the same TLS settings, OAuth2 tokens
// between triggers of the same OAuth2 client.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	client, err := httpauth.AcquireClient(cfg.Shared, TriggerType, httpauth.ClientOptions{
		TLS: meta.tlsOptions(), Timeout: meta.timeout, OAuth: meta.oauth(), Logger: cfg.Logger})
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	return &Scaler{cfg: cfg, meta: meta, metricName: cfg.MetricName("prometheus", ""), client: client}, nil
}

// MetricSpecs returns one External metric with threshold as its target.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, s.meta.Threshold)}
}

// Sample runs the query; the trigger is active when the value exceeds activationThreshold.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.query(ctx, time.Now())
	if err != nil {
		return nil, false, s.cfg.Errorf("query %q: %w", s.meta.Query, err)
	}
	return []scalers.Sample{{MetricName: s.metricName, Value: v}}, v > s.meta.ActivationThreshold, nil
}

// Close releases the shared transport and token source.
func (s *Scaler) Close(context.Context) error { return s.client.Close() }
