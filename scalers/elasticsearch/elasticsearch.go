// Package elasticsearch is Tidal's Elasticsearch scaler: trigger type "elasticsearch", with KEDA's metadata
// names, defaults and semantics. It runs a stored search template (searchTemplateName, with parameters
// "key:value;key2:value2") or an inline query (query, a search request body) against index (";"-separated)
// through the official go-elasticsearch client, and reads the number at valueLocation (a GJSON path such as
// hits.total.value) in the response. A number held in a string is accepted; null is 0 with ignoreNullValues and
// an error otherwise.
//
// The requests are the official client's esapi requests over its elastic-transport-go transport; the umbrella
// elasticsearch package is not used because it links the whole typed API (about a thousand packages), which
// costs every Tidal binary minutes of build time.
//
// Connection: addresses (comma separated) with username and password, or cloudID with apiKey.
package elasticsearch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/tidwall/gjson"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
	"github.com/tidalscale/tidal/scalers/httpscaler"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "elasticsearch"

const defaultTimeout = 3 * time.Second

// Metadata is the elasticsearch trigger's metadata and authentication, with KEDA's names and defaults.
type Metadata struct {
	Addresses             []string `tidal:"name=addresses,order=authParams;triggerMetadata,optional"`
	UnsafeSsl             bool     `tidal:"name=unsafeSsl,default=false"`
	Username              string   `tidal:"name=username,order=authParams;triggerMetadata,optional"`
	Password              string   `tidal:"name=password,order=authParams;triggerMetadata,optional"`
	CloudID               string   `tidal:"name=cloudID,order=authParams;triggerMetadata,optional"`
	APIKey                string   `tidal:"name=apiKey,order=authParams;triggerMetadata,optional"`
	Index                 string   `tidal:"name=index,order=authParams;triggerMetadata"`
	SearchTemplateName    string   `tidal:"name=searchTemplateName,order=authParams;triggerMetadata,optional"`
	Query                 string   `tidal:"name=query,order=authParams;triggerMetadata,optional"`
	Parameters            string   `tidal:"name=parameters,optional"`
	ValueLocation         string   `tidal:"name=valueLocation,order=authParams;triggerMetadata"`
	TargetValue           float64  `tidal:"name=targetValue,order=authParams;triggerMetadata,target"`
	ActivationTargetValue float64  `tidal:"name=activationTargetValue,default=0"`
	IgnoreNullValues      bool     `tidal:"name=ignoreNullValues,default=false"`

	indices []string
	params  map[string]any
	urls    []*url.URL
}

// Validate applies KEDA's rules on the connection and the query, and splits index and parameters.
func (m *Metadata) Validate() error {
	var errs []error
	cloud := m.CloudID != "" || m.APIKey != ""
	direct := len(m.Addresses) > 0 || m.Username != "" || m.Password != ""
	switch {
	case cloud && direct:
		errs = append(errs, errors.New("cloudID and apiKey: cannot be combined with addresses, username and password"))
	case !cloud && !direct:
		errs = append(errs, errors.New("addresses: missing: give addresses with username and password, or cloudID with apiKey"))
	case cloud && (m.CloudID == "" || m.APIKey == ""):
		errs = append(errs, errors.New("cloudID and apiKey: both are required when either is given"))
	case direct && (len(m.Addresses) == 0 || m.Username == "" || m.Password == ""):
		errs = append(errs, errors.New("addresses, username and password: all three are required when any is given"))
	}
	for _, a := range m.Addresses {
		u, err := url.Parse(strings.TrimRight(a, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Errorf("addresses: %q is not an absolute http(s) URL without credentials", scalers.WithoutUserinfo(a)))
			continue
		}
		m.urls = append(m.urls, u)
	}
	if m.CloudID != "" {
		u, err := cloudURL(m.CloudID)
		if err != nil {
			errs = append(errs, fmt.Errorf("cloudID: %w", err))
		} else {
			m.urls = []*url.URL{u}
		}
	}
	for _, i := range strings.Split(m.Index, ";") {
		if i = strings.TrimSpace(i); i != "" {
			m.indices = append(m.indices, i)
		}
	}
	if len(m.indices) == 0 {
		errs = append(errs, errors.New("index: must name at least one index"))
	}
	switch {
	case m.SearchTemplateName == "" && strings.TrimSpace(m.Query) == "":
		errs = append(errs, errors.New("searchTemplateName or query: one is required"))
	case m.SearchTemplateName != "" && m.Query != "":
		errs = append(errs, errors.New("searchTemplateName and query: give only one"))
	case m.Query != "" && !json.Valid([]byte(m.Query)):
		errs = append(errs, errors.New("query: not valid JSON (want a search request body)"))
	}
	m.params = map[string]any{}
	for _, p := range strings.Split(m.Parameters, ";") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, v, ok := strings.Cut(p, ":")
		if !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("parameters: want key:value pairs separated by ';', got %q", p))
			continue
		}
		m.params[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if strings.TrimSpace(m.ValueLocation) == "" {
		errs = append(errs, errors.New("valueLocation: must not be empty"))
	}
	if m.TargetValue <= 0 {
		errs = append(errs, fmt.Errorf("targetValue: must be a positive number, got %v", m.TargetValue))
	}
	return errors.Join(errs...)
}

// cloudURL decodes an Elastic Cloud ID, "<name>:<base64 of host$es-uuid$kibana-uuid>", to https://<es-uuid>.<host>.
func cloudURL(id string) (*url.URL, error) {
	_, enc, ok := strings.Cut(id, ":")
	if !ok {
		return nil, errors.New("want <deployment name>:<base64 data>")
	}
	data, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New("the part after ':' is not base64")
	}
	parts := strings.Split(string(data), "$")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return nil, errors.New("the decoded data is not host$uuid")
	}
	host, port, hasPort := strings.Cut(parts[0], ":")
	u := &url.URL{Scheme: "https", Host: parts[1] + "." + host}
	if hasPort {
		u.Host += ":" + port
	}
	return u, nil
}

// Scaler runs one search.
type Scaler struct {
	httpscaler.Base
	meta   Metadata
	client *elastictransport.Client
}

// New parses the trigger and builds the client over a transport shared by elasticsearch triggers with the same
// TLS settings; nothing is sent until Sample.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	base, meta, err := httpscaler.New(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		name := "query"
		if m.SearchTemplateName != "" {
			name = m.SearchTemplateName
		}
		return httpscaler.Options{Metric: cfg.MetricName("elasticsearch", name), Target: m.TargetValue, Activation: m.ActivationTargetValue,
			Client: httpauth.ClientOptions{TLS: tlsauth.Options{UnsafeSsl: m.UnsafeSsl}}}
	})
	if err != nil {
		return nil, err
	}
	client, err := elastictransport.New(elastictransport.Config{URLs: meta.urls, Username: meta.Username, Password: meta.Password,
		APIKey: meta.APIKey, Transport: base.Client.Transport, MaxRetries: 1})
	if err != nil {
		_ = base.Close(ctx)
		return nil, cfg.Errorf("addresses: %w", err)
	}
	return &Scaler{Base: base, meta: meta, client: client}, nil
}

// Sample runs the search; the trigger is active when the value exceeds activationTargetValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.search(ctx)
	return s.Report(v, err, "index %s: %s", s.meta.Index, s.meta.what())
}

// what names the search in errors.
func (m *Metadata) what() string {
	if m.SearchTemplateName != "" {
		return fmt.Sprintf("search template %q", m.SearchTemplateName)
	}
	return "query"
}

func (s *Scaler) search(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var res *esapi.Response
	var err error
	if s.meta.SearchTemplateName != "" {
		body := map[string]any{"id": s.meta.SearchTemplateName}
		if len(s.meta.params) > 0 {
			body["params"] = s.meta.params
		}
		b, jerr := json.Marshal(body)
		if jerr != nil {
			return 0, fmt.Errorf("encoding the template request: %w", jerr)
		}
		res, err = esapi.SearchTemplateRequest{Index: s.meta.indices, Body: bytes.NewReader(b)}.Do(ctx, s.client)
	} else {
		res, err = esapi.SearchRequest{Index: s.meta.indices, Body: strings.NewReader(s.meta.Query)}.Do(ctx, s.client)
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("calling elasticsearch: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, httpquery.MaxBody))
	if err != nil {
		return 0, fmt.Errorf("reading the response: %w", err)
	}
	switch {
	case res.StatusCode == http.StatusUnauthorized:
		return 0, errors.New("authentication failed (HTTP 401): check the credentials")
	case res.StatusCode == http.StatusForbidden:
		return 0, errors.New("authorization failed (HTTP 403): the user may not search this index")
	case res.IsError():
		reason := gjson.GetBytes(body, "error.root_cause.0.reason").String()
		if reason == "" {
			reason = gjson.GetBytes(body, "error.reason").String()
		}
		return 0, &httpquery.StatusError{Service: "elasticsearch", Status: res.StatusCode, Message: httpquery.FirstLine(reason, 300)}
	}
	r := gjson.GetBytes(body, s.meta.ValueLocation)
	switch r.Type {
	case gjson.Number:
		return r.Num, nil
	case gjson.String:
		v, err := strconv.ParseFloat(r.Str, 64)
		if err != nil {
			return 0, fmt.Errorf("valueLocation %q: want a number, got the string %q", s.meta.ValueLocation, httpquery.FirstLine(r.Str, 50))
		}
		return v, nil
	case gjson.Null:
		if s.meta.IgnoreNullValues {
			return 0, nil
		}
		return 0, fmt.Errorf("valueLocation %q: no value there (null or absent; set ignoreNullValues to treat it as 0)", s.meta.ValueLocation)
	default:
		return 0, fmt.Errorf("valueLocation %q: want a number, got %s", s.meta.ValueLocation, r.Type)
	}
}

// Register adds the elasticsearch scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
