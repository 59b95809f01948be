// Package datadog is Tidal's Datadog scaler: trigger type "datadog", with KEDA's metadata names, defaults and
// semantics for its API mode. It queries timeseries points through the documented metrics query endpoint
// (GET https://api.<datadogSite>/api/v1/query?from=&to=&query=, headers DD-API-KEY and DD-APPLICATION-KEY) over
// the window [now-timeWindowOffset-age, now-timeWindowOffset].
//
// Per series the value is the newest non-null point, lastAvailablePointOffset points back. One series is
// required unless queryAggregator (average or max) combines several. No series, no point, or an HTTP 422 from
// Datadog is metricUnavailableValue when set and an error otherwise.
//
// datadogSite (authParams) is a Datadog site such as datadoghq.eu; Tidal also accepts a full http(s) URL there
// (a proxy). KEDA's Cluster Agent mode (useClusterAgentProxy) is not supported: it is refused at parse time.
package datadog

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

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
	"github.com/tidalscale/tidal/scalers/httpscaler"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "datadog"

const defaultTimeout = 3 * time.Second

// Metadata is the datadog trigger's metadata and authentication, with KEDA's names and defaults.
type Metadata struct {
	Query                    string        `tidal:"name=query"`
	QueryValue               float64       `tidal:"name=queryValue;targetValue,target"`
	ActivationQueryValue     float64       `tidal:"name=activationQueryValue,default=0"`
	QueryAggregator          string        `tidal:"name=queryAggregator,optional,enum=average;max"`
	Age                      int           `tidal:"name=age,default=90,range=1;"`
	TimeWindowOffset         int           `tidal:"name=timeWindowOffset,default=0,range=0;"`
	LastAvailablePointOffset int           `tidal:"name=lastAvailablePointOffset,default=0,range=0;"`
	MetricUnavailableValue   *float64      `tidal:"name=metricUnavailableValue,optional"`
	Timeout                  time.Duration `tidal:"name=timeout,optional"`
	UseClusterAgentProxy     bool          `tidal:"name=useClusterAgentProxy,default=false"`
	Type                     string        `tidal:"name=type,optional"`

	APIKey      string `tidal:"name=apiKey,order=authParams"`
	AppKey      string `tidal:"name=appKey,order=authParams"`
	DatadogSite string `tidal:"name=datadogSite,order=authParams,default=datadoghq.com"`

	queryURL   *url.URL
	metricPart string
}

// Validate checks the query, the site and the fields KEDA accepts that Tidal does not.
func (m *Metadata) Validate() error {
	var errs []error
	i := strings.Index(m.Query, "{")
	if i < 0 {
		errs = append(errs, errors.New("query: must contain a scope in braces, e.g. sum:trace.http.request.hits{service:api}"))
	} else {
		m.metricPart = m.Query[:i]
	}
	if m.QueryValue <= 0 {
		errs = append(errs, fmt.Errorf("queryValue: must be a positive number, got %v", m.QueryValue))
	}
	if m.UseClusterAgentProxy {
		errs = append(errs, errors.New("useClusterAgentProxy: the Datadog Cluster Agent mode is not supported by Tidal; query the API with apiKey and appKey"))
	}
	if m.Type != "" {
		errs = append(errs, errors.New("type: deprecated in KEDA and not supported; set the trigger's metricType (Value or AverageValue) instead"))
	}
	if m.Timeout < 0 || m.Timeout > time.Hour {
		errs = append(errs, fmt.Errorf("timeout: want a duration up to 1h, got %v", m.Timeout))
	}
	base := m.DatadogSite
	if !strings.Contains(base, "://") {
		if base == "" || strings.ContainsAny(base, " /?#@:") {
			base = "" // not a site name
		} else {
			base = "https://api." + base
		}
	}
	u, err := url.Parse(base)
	if base == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		errs = append(errs, errors.New("datadogSite: want a Datadog site such as datadoghq.eu (or an http(s) URL)"))
	} else {
		u.Path = strings.TrimRight(u.Path, "/") + "/api/v1/query"
		m.queryURL = u
	}
	return errors.Join(errs...)
}

// Scaler runs one Datadog metrics query.
type Scaler struct {
	httpscaler.Base
	meta Metadata
	now  func() time.Time
}

// New parses the trigger; the HTTP transport is shared between datadog triggers.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		if m.Age < 60 {
			cfg.Logger.Info("a datadog window (age) under 60s may find no point", zap.Int("age", m.Age))
		}
		timeout := defaultTimeout
		if m.Timeout > 0 {
			timeout = m.Timeout
		}
		return httpscaler.Options{Metric: cfg.MetricName("datadog", m.metricPart), Target: m.QueryValue, Activation: m.ActivationQueryValue,
			Client: httpauth.ClientOptions{Timeout: timeout}}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta, now: time.Now}
	})
}

// Sample runs the query; the trigger is active when the value exceeds activationQueryValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.query(ctx)
	return s.Report(v, err, "query %q", s.meta.Query)
}

// response is the v1 metrics query response; a point is [timestamp ms, value or null].
type response struct {
	Status string   `json:"status"`
	Error  string   `json:"error"`
	Errors []string `json:"errors"`
	Series []struct {
		Metric    string        `json:"metric"`
		Pointlist [][2]*float64 `json:"pointlist"`
	} `json:"series"`
}

var errUnavailable = errors.New("no Datadog metrics returned for the given time window")

func (s *Scaler) query(ctx context.Context) (float64, error) {
	v, err := s.fetch(ctx)
	if errors.Is(err, errUnavailable) && s.meta.MetricUnavailableValue != nil {
		s.Cfg.Logger.Debug("datadog metric unavailable, using metricUnavailableValue", zap.Error(err))
		return *s.meta.MetricUnavailableValue, nil
	}
	return v, err
}

func (s *Scaler) fetch(ctx context.Context) (float64, error) {
	to := s.now().Unix() - int64(s.meta.TimeWindowOffset)
	from := to - int64(s.meta.Age)
	u := *s.meta.queryURL
	u.RawQuery = url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}, "query": {s.meta.Query}}.Encode()
	var r response
	body, err := (httpquery.Request{Service: "datadog", URL: u.String(), Header: map[string]string{"Accept": "application/json",
		"DD-API-KEY": s.meta.APIKey, "DD-APPLICATION-KEY": s.meta.AppKey}}).JSON(ctx, s.Client.Client, &r)
	var se *httpquery.StatusError
	if errors.As(err, &se) {
		var r response
		if json.Unmarshal(body, &r) == nil && len(r.Errors) > 0 {
			se.Message = httpquery.FirstLine(strings.Join(r.Errors, "; "), 300)
		}
		switch se.Status {
		case http.StatusForbidden, http.StatusUnauthorized:
			return 0, fmt.Errorf("unauthorized: check the apiKey and appKey and the appKey's permissions: %w", err)
		case http.StatusTooManyRequests:
			return 0, fmt.Errorf("rate limited: %s queries per %s s, reset in %s s: %w", se.Header("X-RateLimit-Limit"),
				se.Header("X-RateLimit-Period"), se.Header("X-RateLimit-Reset"), err)
		case http.StatusUnprocessableEntity:
			return 0, fmt.Errorf("%w: %w", errUnavailable, err)
		}
	}
	if err != nil {
		return 0, err
	}
	if r.Status == "error" {
		return 0, fmt.Errorf("datadog returned an error: %s", httpquery.FirstLine(r.Error, 300))
	}
	if len(r.Series) == 0 {
		return 0, errUnavailable
	}
	if len(r.Series) > 1 && s.meta.QueryAggregator == "" {
		return 0, fmt.Errorf("the query returned %d series; make it return one or set queryAggregator", len(r.Series))
	}
	var sum, maxV float64
	for i, series := range r.Series {
		points := series.Pointlist
		idx := len(points) - 1
		for idx >= 0 && points[idx][1] == nil {
			idx--
		}
		if idx < 0 {
			return 0, errUnavailable
		}
		if idx < s.meta.LastAvailablePointOffset {
			return 0, fmt.Errorf("series %d has %d points, fewer than lastAvailablePointOffset %d", i, idx+1, s.meta.LastAvailablePointOffset)
		}
		p := points[idx-s.meta.LastAvailablePointOffset][1]
		if p == nil {
			return 0, errUnavailable
		}
		sum += *p
		if i == 0 || *p > maxV {
			maxV = *p
		}
	}
	if s.meta.QueryAggregator == "average" {
		return sum / float64(len(r.Series)), nil
	}
	return maxV, nil
}

// Register adds the datadog scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
