// Package newrelic is Tidal's New Relic scaler: trigger type "new-relic", with KEDA's metadata names, defaults
// and semantics. It runs an NRQL query through NerdGraph (POST https://api.newrelic.com/graphql, or
// api.eu.newrelic.com for region EU, header API-Key) as actor.account(id).nrql(query).results, and reports the
// first numeric value of the first result row (by column name, for a stable choice when a row has several).
// No row, or a row without a number, is 0 unless noDataError.
//
// region is US or EU; Tidal also accepts a full http(s) URL of a NerdGraph endpoint there (a proxy).
package newrelic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
	"github.com/tidalscale/tidal/scalers/httpscaler"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "new-relic"

const defaultTimeout = 3 * time.Second

var endpoints = map[string]string{
	"US": "https://api.newrelic.com/graphql",
	"EU": "https://api.eu.newrelic.com/graphql",
}

// Metadata is the new-relic trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	Account             int     `tidal:"name=account,order=authParams;triggerMetadata,range=1;"`
	Region              string  `tidal:"name=region,order=authParams;triggerMetadata,default=US"`
	QueryKey            string  `tidal:"name=queryKey,order=authParams;triggerMetadata"`
	NoDataError         bool    `tidal:"name=noDataError,default=false"`
	NRQL                string  `tidal:"name=nrql"`
	Threshold           float64 `tidal:"name=threshold,target"`
	ActivationThreshold float64 `tidal:"name=activationThreshold,default=0"`

	endpoint string
}

// Validate checks the query, threshold and region.
func (m *Metadata) Validate() error {
	var errs []error
	if strings.TrimSpace(m.NRQL) == "" {
		errs = append(errs, errors.New("nrql: must not be empty"))
	}
	if m.Threshold <= 0 {
		errs = append(errs, fmt.Errorf("threshold: must be a positive number, got %v", m.Threshold))
	}
	if m.QueryKey == "" {
		errs = append(errs, errors.New("queryKey: must not be empty"))
	}
	if e, ok := endpoints[strings.ToUpper(m.Region)]; ok {
		m.endpoint = e
	} else if u, err := url.Parse(m.Region); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil {
		m.endpoint = u.String()
	} else {
		errs = append(errs, fmt.Errorf("region: want US, EU or a NerdGraph URL, got %q", m.Region))
	}
	return errors.Join(errs...)
}

// Scaler runs one NRQL query.
type Scaler struct {
	httpscaler.Base
	meta Metadata
}

// New parses the trigger; the HTTP transport is shared between new-relic triggers.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return httpscaler.Build(cfg, TriggerType, func(m *Metadata) httpscaler.Options {
		return httpscaler.Options{Metric: cfg.MetricName("new-relic", ""), Target: m.Threshold, Activation: m.ActivationThreshold,
			Client: httpauth.ClientOptions{Timeout: defaultTimeout}}
	}, func(base httpscaler.Base, meta Metadata) *Scaler {
		return &Scaler{Base: base, meta: meta}
	})
}

// Sample runs the query; the trigger is active when the value exceeds activationThreshold.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := s.query(ctx)
	return s.Report(v, err, "account %d: nrql %q", s.meta.Account, s.meta.NRQL)
}

// nerdGraphQuery is the GraphQL document the New Relic client libraries send for an NRQL query.
const nerdGraphQuery = `query($query: Nrql!, $accountId: Int!) { actor { account(id: $accountId) { nrql(query: $query) { results } } } }`

type graphQLResponse struct {
	Data struct {
		Actor struct {
			Account *struct {
				NRQL *struct {
					Results []map[string]any `json:"results"`
				} `json:"nrql"`
			} `json:"account"`
		} `json:"actor"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

func (s *Scaler) query(ctx context.Context) (float64, error) {
	payload, err := json.Marshal(map[string]any{
		"query":     nerdGraphQuery,
		"variables": map[string]any{"query": s.meta.NRQL, "accountId": s.meta.Account},
	})
	if err != nil {
		return 0, fmt.Errorf("encoding the request: %w", err)
	}
	var r graphQLResponse
	if _, err := (httpquery.Request{Service: "NerdGraph", Method: http.MethodPost, URL: s.meta.endpoint, Body: payload,
		Header: map[string]string{"Content-Type": "application/json", "API-Key": s.meta.QueryKey}}).JSON(ctx, s.Client.Client, &r); err != nil {
		return 0, err
	}
	if len(r.Errors) > 0 {
		msgs := make([]string, len(r.Errors))
		for i, e := range r.Errors {
			msgs[i] = e.Message
		}
		return 0, fmt.Errorf("NerdGraph error: %s", httpquery.FirstLine(strings.Join(msgs, "; "), 300))
	}
	if r.Data.Actor.Account == nil || r.Data.Actor.Account.NRQL == nil {
		return 0, errors.New("NerdGraph returned no account or nrql result (check the account id)")
	}
	rows := r.Data.Actor.Account.NRQL.Results
	if len(rows) == 0 {
		if s.meta.NoDataError {
			return 0, errors.New("the query returned no results")
		}
		return 0, nil
	}
	keys := make([]string, 0, len(rows[0]))
	for k := range rows[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v, ok := rows[0][k].(float64); ok {
			return v, nil
		}
	}
	if s.meta.NoDataError {
		return 0, errors.New("the first result row has no numeric value")
	}
	return 0, nil
}

// Register adds the new-relic scaler to r.
func Register(r *scalers.Registry) { r.Register(New, TriggerType); r.Describe(Metadata{}, TriggerType) }
