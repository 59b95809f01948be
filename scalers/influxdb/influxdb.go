// Package influxdb is Tidal's InfluxDB scaler: trigger type "influxdb", with KEDA's metadata names, defaults and
// semantics for InfluxDB 2.x. It runs a Flux query through the official client (POST /api/v2/query?org=, header
// "Authorization: Token <authToken>") and reports the _value of the first record, which must be a float or an
// integer; a query with no record is an error, as in KEDA.
//
// influxVersion 3 (FlightSQL) is not supported: it is refused at parse time. authToken is read from authParams
// or authTokenFromEnv; KEDA v2.20 removed the plain authToken metadata key, and so does Tidal (refused, naming it).
package influxdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	"github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpscaler"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "influxdb"

// timeoutSeconds is KEDA's global HTTP timeout default, in the unit the client takes.
const timeoutSeconds = 3

// Metadata is the influxdb trigger's metadata and authentication, with KEDA's names and defaults.
type Metadata struct {
	ServerURL                string  `tidal:"name=serverURL,order=triggerMetadata;authParams"`
	OrganizationName         string  `tidal:"name=organizationName,order=triggerMetadata;authParams"`
	Query                    string  `tidal:"name=query"`
	ThresholdValue           float64 `tidal:"name=thresholdValue,target"`
	ActivationThresholdValue float64 `tidal:"name=activationThresholdValue,default=0"`
	UnsafeSsl                bool    `tidal:"name=unsafeSsl,default=false"`
	InfluxVersion            string  `tidal:"name=influxVersion,default=2,enum=2;3"`
	AuthToken                string  `tidal:"name=authToken,order=authParams;triggerMetadata"`
}

// Validate checks the URL, query, threshold and version.
func (m *Metadata) Validate() error {
	var errs []error
	if u, err := url.Parse(m.ServerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		errs = append(errs, errors.New("serverURL: want an absolute http(s) URL without credentials"))
	}
	if strings.TrimSpace(m.OrganizationName) == "" {
		errs = append(errs, errors.New("organizationName: must not be empty"))
	}
	if strings.TrimSpace(m.Query) == "" {
		errs = append(errs, errors.New("query: must not be empty"))
	}
	if m.ThresholdValue <= 0 {
		errs = append(errs, fmt.Errorf("thresholdValue: must be a positive number, got %v", m.ThresholdValue))
	}
	if m.InfluxVersion == "3" {
		errs = append(errs, errors.New("influxVersion: InfluxDB 3 (FlightSQL) is not supported by Tidal; use an InfluxDB 2.x Flux endpoint"))
	}
	if m.AuthToken == "" {
		errs = append(errs, errors.New("authToken: must not be empty"))
	}
	return errors.Join(errs...)
}

// Scaler runs one Flux query.
type Scaler struct {
	httpscaler.Base
	meta   Metadata
	client influxdb2.Client
	query  api.QueryAPI
}

// New parses the trigger and builds the client over a transport shared by influxdb triggers with the same TLS
// settings; nothing is sent until Sample.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	cfg.Normalize()
	if _, ok := cfg.Metadata["authToken"]; ok {
		return nil, cfg.Errorf("authToken: not accepted in metadata (removed in KEDA v2.20); put it in a TriggerAuthentication or use authTokenFromEnv")
	}
	base, meta, err := httpscaler.New(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		return httpscaler.Options{Metric: cfg.MetricName("influxdb", m.OrganizationName), Target: m.ThresholdValue,
			Activation: m.ActivationThresholdValue, Client: httpauth.ClientOptions{TLS: tlsauth.Options{UnsafeSsl: m.UnsafeSsl}, Timeout: timeoutSeconds * time.Second}}
	})
	if err != nil {
		return nil, err
	}
	client := influxdb2.NewClientWithOptions(meta.ServerURL, meta.AuthToken,
		influxdb2.DefaultOptions().SetHTTPClient(base.Client.Client).SetHTTPRequestTimeout(timeoutSeconds))
	return &Scaler{Base: base, meta: meta, client: client, query: client.QueryAPI(meta.OrganizationName)}, nil
}

// Sample runs the query; the trigger is active when the value exceeds activationThresholdValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.run(ctx)
	return s.Report(v, err, "organization %q", s.meta.OrganizationName)
}

func (s *Scaler) run(ctx context.Context) (float64, error) {
	result, err := s.query.Query(ctx, s.meta.Query)
	if err != nil {
		var he *http.Error
		if errors.As(err, &he) && he.StatusCode != 0 {
			return 0, fmt.Errorf("influxdb returned HTTP %d %s: %s", he.StatusCode, he.Code, he.Message)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, fmt.Errorf("calling %s: %w", s.meta.ServerURL, ue.Err)
		}
		return 0, fmt.Errorf("running the query: %w", err)
	}
	defer result.Close()
	if !result.Next() {
		if result.Err() != nil {
			return 0, fmt.Errorf("reading the result: %w", result.Err())
		}
		return 0, errors.New("the query returned no records")
	}
	switch v := result.Record().Value().(type) {
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	default:
		return 0, fmt.Errorf("the first record's _value is a %T, want a float or an integer", v)
	}
}

// Close closes the client and releases the shared transport.
func (s *Scaler) Close(ctx context.Context) error {
	s.client.Close()
	return s.Base.Close(ctx)
}

// Register adds the influxdb scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
