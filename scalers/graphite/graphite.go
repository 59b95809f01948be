// Package graphite is Tidal's Graphite scaler: trigger type "graphite", with KEDA's metadata names, defaults and
// semantics. It calls the render API (GET <serverAddress>/render?target=<query>&from=<queryTime>&format=json)
// and reports the newest non-null datapoint of the single series returned: no series or no datapoints is 0,
// several series or only null datapoints is an error (widen queryTime or fix the query).
//
// Authentication: authMode basic with authParams username and password.
package graphite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
	"github.com/tidalscale/tidal/scalers/httpscaler"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "graphite"

const defaultTimeout = 3 * time.Second

// Metadata is the graphite trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	ServerAddress       string  `tidal:"name=serverAddress"`
	Query               string  `tidal:"name=query"`
	Threshold           float64 `tidal:"name=threshold,default=100,target"`
	ActivationThreshold float64 `tidal:"name=activationThreshold,default=0"`
	// QueryTime is the render API's from: a relative time such as -10Minutes, or an absolute one.
	QueryTime string `tidal:"name=queryTime"`

	AuthMode string `tidal:"name=authMode,optional,enum=basic"`
	Username string `tidal:"name=username,order=authParams,optional"`
	Password string `tidal:"name=password,order=authParams,optional"`

	renderURL *url.URL
}

// Validate checks the address, query, queryTime, threshold and basic auth.
func (m *Metadata) Validate() error {
	var errs []error
	u, err := url.Parse(m.ServerAddress)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		errs = append(errs, errors.New("serverAddress: want an absolute http(s) URL without credentials"))
	} else {
		u.Path = strings.TrimRight(u.Path, "/") + "/render"
		u.RawPath = ""
		m.renderURL = u
	}
	if strings.TrimSpace(m.Query) == "" {
		errs = append(errs, errors.New("query: must not be empty"))
	}
	if strings.TrimSpace(m.QueryTime) == "" {
		errs = append(errs, errors.New("queryTime: must not be empty (e.g. -10Minutes)"))
	}
	if m.Threshold <= 0 {
		errs = append(errs, fmt.Errorf("threshold: must be a positive number, got %v", m.Threshold))
	}
	if m.AuthMode == "basic" && m.Username == "" {
		errs = append(errs, errors.New("username: required by authMode basic"))
	}
	return errors.Join(errs...)
}

// credentials adds basic auth with authMode basic.
func (m *Metadata) credentials(req *http.Request) error {
	if m.AuthMode == "basic" {
		req.SetBasicAuth(m.Username, m.Password)
	}
	return nil
}

// Scaler runs one render query.
type Scaler struct {
	httpscaler.Base
	meta Metadata
}

// New parses the trigger; the HTTP transport is shared between graphite triggers.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		return httpscaler.Options{Metric: cfg.MetricName("graphite", ""), Target: m.Threshold, Activation: m.ActivationThreshold,
			Client: httpauth.ClientOptions{Timeout: defaultTimeout}}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta}
	})
}

// Sample runs the query; the trigger is active when the value exceeds activationThreshold.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.render(ctx)
	return s.Report(v, err, "query %q", s.meta.Query)
}

// series is one element of the render API's JSON output; a datapoint is [value or null, timestamp].
type series struct {
	Target     string        `json:"target"`
	Datapoints [][2]*float64 `json:"datapoints"`
}

func (s *Scaler) render(ctx context.Context) (float64, error) {
	u := *s.meta.renderURL
	u.RawQuery = url.Values{"target": {s.meta.Query}, "from": {s.meta.QueryTime}, "format": {"json"}}.Encode()
	var result []series
	if _, err := (httpquery.Request{Service: "graphite", URL: u.String(), Prepare: s.meta.credentials}).JSON(ctx, s.Client.Client, &result); err != nil {
		return 0, err
	}
	switch {
	case len(result) == 0:
		return 0, nil
	case len(result) > 1:
		return 0, fmt.Errorf("the query returned %d series, want one (wrap it in sumSeries())", len(result))
	case len(result[0].Datapoints) == 0:
		return 0, nil
	}
	for i := len(result[0].Datapoints) - 1; i >= 0; i-- {
		if v := result[0].Datapoints[i][0]; v != nil {
			return *v, nil
		}
	}
	return 0, fmt.Errorf("every datapoint since %s is null; widen queryTime or check the query", s.meta.QueryTime)
}

// Register adds the graphite scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
