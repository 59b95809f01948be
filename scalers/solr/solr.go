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
	"net/http"
	"net/url"
	"strings"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
	"github.com/tidalscale/tidal/scalers/httpscaler"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "solr"

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
	httpscaler.Base
	meta Metadata
	url  string
}

// New parses the trigger; nothing is sent until Sample.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		return httpscaler.Options{Metric: cfg.MetricName(TriggerType, ""), Target: m.TargetQueryValue, Activation: m.ActivationTargetQueryValue,
			Client: httpauth.ClientOptions{Timeout: scalers.CallTimeout}}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta, url: meta.selectURL()}
	})
}

// selectURL is the collection's select request for the query, asking for the count only.
func (m *Metadata) selectURL() string {
	u := *m.base
	u.Path += "/solr/" + url.PathEscape(m.Collection) + "/select"
	u.RawQuery = url.Values{"q": {m.Query}, "wt": {"json"}, "rows": {"0"}}.Encode()
	return u.String()
}

// Sample runs the query; the trigger is active when the count exceeds activationTargetQueryValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	n, err := s.count(ctx)
	return s.Report(n, err, "collection %q", s.meta.Collection)
}

func (s *Scaler) count(ctx context.Context) (float64, error) {
	var r struct {
		Response *struct {
			NumFound *float64 `json:"numFound"`
		} `json:"response"`
	}
	body, err := (httpquery.Request{Service: "solr", URL: s.url, Prepare: func(req *http.Request) error {
		httpauth.Credentials{Username: s.meta.Username, Password: s.meta.Password}.Apply(req)
		return nil
	}}).JSON(ctx, s.Client.Client, &r)
	var se *httpquery.StatusError
	if errors.As(err, &se) {
		var e struct {
			Error struct {
				Msg string `json:"msg"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Msg != "" {
			se.Message = httpquery.FirstLine(e.Error.Msg, 300)
		}
	}
	if err != nil {
		return 0, err
	}
	if r.Response == nil || r.Response.NumFound == nil {
		return 0, errors.New("the answer has no response.numFound")
	}
	return *r.Response.NumFound, nil
}

// Register adds the solr scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
