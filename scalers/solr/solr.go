// Package solr is Tidal's Apache Solr scaler: trigger type "solr", with KEDA's metadata names, defaults and
// semantics. The metric is the number of documents of a collection that match a query: numFound of
// GET {host}/solr/{collection}/select?q={query}&wt=json (rows=0: only the count travels), with basic
// authentication when a TriggerAuthentication gives username and password.
package solr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "solr"

const maxErrorBody = 256

// Metadata is the solr trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	Host                       string  `tidal:"name=host"`
	Collection                 string  `tidal:"name=collection"`
	Query                      string  `tidal:"name=query,default=*:*"`
	TargetQueryValue           float64 `tidal:"name=targetQueryValue,target"`
	ActivationTargetQueryValue float64 `tidal:"name=activationTargetQueryValue,default=0,range=0;"`
	Username                   string  `tidal:"name=username,order=authParams,optional"`
	Password                   string  `tidal:"name=password,order=authParams,optional"`

	base *url.URL
}

// Validate checks the host, the collection and the credentials.
func (m *Metadata) Validate() error {
	var errs []error
	u, err := url.Parse(strings.TrimSpace(m.Host))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("host: want http(s)://host:port of a Solr node, got %q", m.Host))
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/")
		m.base = u
	}
	if c := strings.TrimSpace(m.Collection); c == "" || strings.ContainsAny(c, "/?#") {
		errs = append(errs, fmt.Errorf("collection: want a collection name, got %q", m.Collection))
	}
	if strings.TrimSpace(m.Query) == "" {
		errs = append(errs, errors.New("query: must not be empty (the default is *:*)"))
	}
	if (m.Username == "") != (m.Password == "") {
		errs = append(errs, errors.New("username, password: give both or neither"))
	}
	return errors.Join(errs...)
}

// Scaler counts the documents matching one query.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	url        string
	client     *http.Client
	release    func() error
}

var _ scalers.Scaler = (*Scaler)(nil)

// Register adds the solr scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger; nothing is sent until Sample.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	tr, release, err := httpauth.AcquireTransport(cfg.Shared, TriggerType, tlsauth.Options{})
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	u := *meta.base
	u.Path += "/solr/" + url.PathEscape(meta.Collection) + "/select"
	u.RawQuery = url.Values{"q": {meta.Query}, "wt": {"json"}, "rows": {"0"}}.Encode()
	return &Scaler{cfg: cfg, meta: meta, metricName: cfg.MetricName(TriggerType, ""), url: u.String(),
		client: &http.Client{Transport: tr, Timeout: scalers.CallTimeout}, release: release}, nil
}

// MetricSpecs returns one External metric with targetQueryValue as its target.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, s.meta.TargetQueryValue)}
}

// Sample runs the query; the trigger is active when the count exceeds activationTargetQueryValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	n, err := s.count(ctx)
	if err != nil {
		return nil, false, s.cfg.Errorf("collection %q: %w", s.meta.Collection, err)
	}
	return []scalers.Sample{{MetricName: s.metricName, Value: n}}, n > s.meta.ActivationTargetQueryValue, nil
}

func (s *Scaler) count(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return 0, err
	}
	httpauth.Credentials{Username: s.meta.Username, Password: s.meta.Password}.Apply(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		var e struct {
			Error struct {
				Msg string `json:"msg"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Msg != "" {
			return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, e.Error.Msg)
		}
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var r struct {
		Response *struct {
			NumFound *float64 `json:"numFound"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("decoding the answer: %w", err)
	}
	if r.Response == nil || r.Response.NumFound == nil {
		return 0, errors.New("the answer has no response.numFound")
	}
	return *r.Response.NumFound, nil
}

// Close releases the shared transport.
func (s *Scaler) Close(context.Context) error { return s.release() }
