// Package activemq is Tidal's ActiveMQ Classic scaler: trigger type "activemq", with KEDA's metadata names,
// defaults and semantics. It reads a queue's QueueSize attribute through the broker's Jolokia REST API (GET
// http://<managementEndpoint>/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=<b>,
// destinationType=Queue,destinationName=<q>/QueueSize) with basic auth, or from restAPITemplate, a full URL
// (which may use {{.ManagementEndpoint}}, {{.BrokerName}} and {{.DestinationName}}) naming brokerName and
// destinationName itself.
package activemq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
	"github.com/tidalscale/tidal/scalers/httpscaler"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "activemq"

const (
	defaultTemplate = "http://{{.ManagementEndpoint}}/api/jolokia/read/org.apache.activemq:type=Broker,brokerName={{.BrokerName}},destinationType=Queue,destinationName={{.DestinationName}}/QueueSize"
	defaultTimeout  = 3 * time.Second
)

// Metadata is the activemq trigger's metadata and authentication, with KEDA's names and defaults.
type Metadata struct {
	ManagementEndpoint        string `tidal:"name=managementEndpoint,optional"`
	DestinationName           string `tidal:"name=destinationName,optional"`
	BrokerName                string `tidal:"name=brokerName,optional"`
	RestAPITemplate           string `tidal:"name=restAPITemplate,optional"`
	CorsHeader                string `tidal:"name=corsHeader,optional"`
	TargetQueueSize           int64  `tidal:"name=targetQueueSize,default=10,target"`
	ActivationTargetQueueSize int64  `tidal:"name=activationTargetQueueSize,default=0,range=0;"`
	Username                  string `tidal:"name=username,order=authParams;triggerMetadata"`
	Password                  string `tidal:"name=password,order=authParams;triggerMetadata"`

	endpoint string
}

// Validate resolves the endpoint URL from restAPITemplate or from managementEndpoint, brokerName and
// destinationName.
func (m *Metadata) Validate() error {
	var errs []error
	if m.RestAPITemplate != "" {
		u, err := url.ParseRequestURI(m.RestAPITemplate)
		if err != nil || u.Host == "" {
			return errors.New("restAPITemplate: want an absolute URL of the Jolokia read endpoint")
		}
		m.ManagementEndpoint = u.Host
		_, mbean, _ := strings.Cut(u.Path, ":")
		mbean, _, _ = strings.Cut(mbean, "/")
		props := map[string]string{}
		for _, kv := range strings.Split(mbean, ",") {
			k, v, _ := strings.Cut(kv, "=")
			props[k] = v
		}
		m.DestinationName, m.BrokerName = props["destinationName"], props["brokerName"]
		if m.DestinationName == "" {
			errs = append(errs, errors.New("restAPITemplate: names no destinationName"))
		}
		if m.BrokerName == "" {
			errs = append(errs, errors.New("restAPITemplate: names no brokerName"))
		}
	} else {
		m.RestAPITemplate = defaultTemplate
		if m.ManagementEndpoint == "" || strings.ContainsAny(m.ManagementEndpoint, "/ ") {
			errs = append(errs, fmt.Errorf("managementEndpoint: want host:port of the web console, got %q", m.ManagementEndpoint))
		}
		if m.DestinationName == "" {
			errs = append(errs, errors.New("destinationName: missing"))
		}
		if m.BrokerName == "" {
			errs = append(errs, errors.New("brokerName: missing"))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	tmpl, err := template.New("restAPITemplate").Option("missingkey=error").Parse(m.RestAPITemplate)
	if err != nil {
		return fmt.Errorf("restAPITemplate: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, map[string]string{"ManagementEndpoint": m.ManagementEndpoint, "BrokerName": m.BrokerName, "DestinationName": m.DestinationName}); err != nil {
		return fmt.Errorf("restAPITemplate: %w", err)
	}
	if u, err := url.Parse(b.String()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return errors.New("restAPITemplate: the expanded URL is not an http(s) URL without credentials")
	}
	m.endpoint = b.String()
	if m.CorsHeader == "" {
		m.CorsHeader = "http://" + m.ManagementEndpoint
	}
	return nil
}

// Scaler reads one queue's size.
type Scaler struct {
	httpscaler.Base
	meta Metadata
}

// New parses the trigger; the HTTP transport is shared between activemq triggers.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		return httpscaler.Options{Metric: cfg.MetricName("activemq", m.DestinationName), Target: float64(m.TargetQueueSize),
			Activation: float64(m.ActivationTargetQueueSize), Client: httpauth.ClientOptions{Timeout: defaultTimeout}}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta}
	})
}

// Sample reads QueueSize; the trigger is active when it exceeds activationTargetQueueSize.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	n, err := s.queueSize(ctx)
	return s.Report(float64(n), err, "broker %q: queue %q", s.meta.BrokerName, s.meta.DestinationName)
}

// jolokiaResponse is a Jolokia read response: status is Jolokia's own, which can be 404 inside an HTTP 200.
type jolokiaResponse struct {
	Value     *int64 `json:"value"`
	Status    int    `json:"status"`
	Error     string `json:"error"`
	ErrorType string `json:"error_type"`
}

func (s *Scaler) queueSize(ctx context.Context) (int64, error) {
	var r jolokiaResponse
	if _, err := (httpquery.Request{Service: "jolokia", URL: s.meta.endpoint,
		Header:  map[string]string{"Content-Type": "application/json", "Origin": s.meta.CorsHeader},
		Prepare: func(req *http.Request) error { req.SetBasicAuth(s.meta.Username, s.meta.Password); return nil }}).JSON(ctx, s.Client.Client, &r); err != nil {
		return 0, err
	}
	if r.Status != http.StatusOK {
		if r.ErrorType == "javax.management.InstanceNotFoundException" {
			return 0, fmt.Errorf("jolokia status %d: no such broker or queue", r.Status)
		}
		return 0, fmt.Errorf("jolokia status %d: %s", r.Status, httpquery.FirstLine(r.Error, 200))
	}
	if r.Value == nil {
		return 0, errors.New("the Jolokia response has no integer value")
	}
	return *r.Value, nil
}

// Register adds the activemq scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
