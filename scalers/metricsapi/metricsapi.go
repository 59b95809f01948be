// Package metricsapi is Tidal's metrics-api scaler: trigger type "metrics-api", with KEDA's metadata names and
// defaults. It GETs url and reads one number from the response at valueLocation.
//
// Formats (metadata format, default json):
//   - json: valueLocation is a GJSON path (github.com/tidwall/gjson), e.g. "components.worker.tasks".
//   - yaml: the document is converted to JSON, then valueLocation is a GJSON path ("a.b.0.c").
//   - xml: the document is converted to a JSON tree whose top-level key is the root element, child elements
//     become keys (repeated ones arrays, attributes are ignored), then valueLocation is a GJSON path
//     ("metrics.queue.depth").
//   - prometheus: the text exposition format; valueLocation is a series selector with equality matchers,
//     `name` or `name{label="value",...}`; the first series carrying every listed label wins (as in KEDA).
//
// A string value is parsed as a Kubernetes quantity ("5", "100m", "2Ki"), as KEDA does.
//
// Authentication (authMode, comma separated): apiKey (authParams apiKey; metadata method header|query and
// keyParamName, default header X-API-KEY or query parameter api_key), basic (username, password), bearer
// (token or bearerToken), oauth (an OAuth2 client-credentials token: oauthTokenURI, clientID, clientSecret, optional
// scopes and endpointParams; fetched once, cached until shortly before it expires and shared by the triggers of
// the same client), tls (cert, key, optional keyPassword); ca on its own trusts a private CA. basic, bearer and
// oauth are exclusive.
package metricsapi

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
const TriggerType = "metrics-api"

// defaultTimeout is KEDA's global HTTP timeout default.
const defaultTimeout = 3 * time.Second

// authAPIKey is metrics-api's own auth mode; the others are httpauth's.
const authAPIKey = "apiKey"

// Formats.
const (
	formatJSON       = "json"
	formatYAML       = "yaml"
	formatXML        = "xml"
	formatPrometheus = "prometheus"
)

// Metadata is the metrics-api trigger's metadata and authentication, with KEDA's names and defaults.
type Metadata struct {
	URL                   string  `tidal:"name=url"`
	ValueLocation         string  `tidal:"name=valueLocation"`
	Format                string  `tidal:"name=format,default=json,enum=json;yaml;xml;prometheus"`
	TargetValue           float64 `tidal:"name=targetValue,target"`
	ActivationTargetValue float64 `tidal:"name=activationTargetValue,default=0"`
	UnsafeSsl             bool    `tidal:"name=unsafeSsl,default=false"`
	// Timeout is a Tidal extension: milliseconds or a Go duration; KEDA uses its global HTTP timeout (3s).
	Timeout string `tidal:"name=timeout,optional"`

	AuthMode     string `tidal:"name=authMode;authModes,optional"`
	Method       string `tidal:"name=method,default=header,enum=header;query"`
	KeyParamName string `tidal:"name=keyParamName,optional"`
	APIKey       string `tidal:"name=apiKey,order=authParams,optional"`
	Username     string `tidal:"name=username,order=authParams,optional"`
	Password     string `tidal:"name=password,order=authParams,optional"`
	BearerToken  string `tidal:"name=token;bearerToken,order=authParams,optional"`
	httpauth.ClientTLS
	httpauth.OAuth

	url      *url.URL
	timeout  time.Duration
	modes    map[string]bool
	selector *selector
}

// Validate checks the URL, target, value location, timeout and authentication rules.
func (m *Metadata) Validate() error {
	var errs []error
	u, err := url.Parse(m.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url: want an absolute http(s) URL, got %q", httpauth.RedactURL(m.URL)))
	} else {
		m.url = u
	}
	if m.TargetValue <= 0 {
		errs = append(errs, fmt.Errorf("targetValue: must be a positive number, got %v", m.TargetValue))
	}
	if strings.TrimSpace(m.ValueLocation) == "" {
		errs = append(errs, errors.New("valueLocation: must not be empty"))
	} else if m.Format == formatPrometheus {
		sel, err := parseSelector(m.ValueLocation)
		if err != nil {
			errs = append(errs, fmt.Errorf("valueLocation: %w", err))
		}
		m.selector = sel
	}
	m.timeout = defaultTimeout
	if m.Timeout != "" {
		d, err := scalers.ParseHTTPTimeout(m.Timeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("timeout: %w", err))
		}
		m.timeout = d
	}
	errs = append(errs, m.validateAuth()...)
	return errors.Join(errs...)
}

func (m *Metadata) validateAuth() []error {
	modes, errs := httpauth.ParseModes("authMode", m.AuthMode, authAPIKey, httpauth.ModeBasic, httpauth.ModeBearer, httpauth.ModeTLS, httpauth.ModeOAuth)
	m.modes = modes
	if (m.modes[httpauth.ModeBasic] && m.modes[httpauth.ModeBearer]) || (m.modes[httpauth.ModeOAuth] && (m.modes[httpauth.ModeBasic] || m.modes[httpauth.ModeBearer])) {
		errs = append(errs, errors.New("authMode: basic, bearer and oauth cannot be combined"))
	}
	if m.modes[httpauth.ModeOAuth] {
		errs = append(errs, m.OAuth.Validate("authMode oauth")...)
	}
	if m.modes[authAPIKey] && m.APIKey == "" {
		errs = append(errs, errors.New("apiKey: required by authMode apiKey"))
	}
	if m.modes[httpauth.ModeBasic] && m.Username == "" {
		errs = append(errs, errors.New("username: required by authMode basic"))
	}
	if m.modes[httpauth.ModeBearer] && m.BearerToken == "" {
		errs = append(errs, errors.New("token: required by authMode bearer"))
	}
	if err := m.ClientTLS.Check(m.modes[httpauth.ModeTLS], "authMode tls"); err != nil {
		errs = append(errs, err)
	}
	if strings.ContainsAny(m.KeyParamName, " \t\r\n:") {
		errs = append(errs, fmt.Errorf("keyParamName: invalid name %q", m.KeyParamName))
	}
	return errs
}

// kedaNormalize is KEDA's NormalizeString: the characters it turns into dashes in metric names. Tidal's
// SanitizeMetricName keeps dots, so they are replaced here to keep KEDA's metric names.
func kedaNormalize(s string) string {
	return strings.NewReplacer("/", "-", ".", "-", ":", "-", "%", "-", "(", "-", ")", "-", "\"", "-", " ", "-", "<", "-", ">", "-", "$", "-", "'", "-", "`", "-", "@", "-").Replace(s)
}

// Scaler reads one value from an HTTP endpoint.
type Scaler struct {
	httpscaler.Base
	meta Metadata
}

// New parses the trigger. HTTP transports are shared between triggers with the same TLS settings, OAuth2 tokens
// between triggers of the same OAuth2 client.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		// KEDA normalises the value location into the metric name (dots, slashes, ... become dashes).
		return httpscaler.Options{Metric: cfg.MetricName("metric-api", kedaNormalize(m.ValueLocation)), Target: m.TargetValue,
			Activation: m.ActivationTargetValue, Client: httpauth.ClientOptions{
				TLS: m.ClientTLS.Options(m.UnsafeSsl, m.modes[httpauth.ModeTLS]), Timeout: m.timeout, OAuth: m.OAuth.If(m.modes[httpauth.ModeOAuth])}}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta}
	})
}

// Sample fetches the URL and reads the value; the trigger is active when it exceeds activationTargetValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.fetch(ctx)
	return s.Report(v, err, "")
}

// Register adds the metrics-api scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
