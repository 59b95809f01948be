// Package httpscaler is the frame of the scalers that read one value over HTTP (graphite, new-relic, activemq,
// solr, datadog, loki, prometheus, metrics-api, elasticsearch, influxdb, azure-pipelines): the parsed metadata, the
// trigger's one External metric (scalers.OneMetric), its HTTP client (httpauth.AcquireClient: the transport shared
// by the triggers of one type with equal TLS settings, and the OAuth2 token source) and Close releasing the
// client. A scaler embeds Base and adds its Sample.
package httpscaler

import (
	"context"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
)

// Base is the part of an HTTP scaler that New builds.
type Base struct {
	scalers.OneMetric
	// Cfg is the trigger's configuration.
	Cfg *scalers.TriggerConfig
	// Client is the trigger's HTTP client.
	Client *httpauth.Client
}

// Options are the metric and the client of a trigger, from its parsed metadata.
type Options struct {
	// Metric is the metric's name (TriggerConfig.MetricName); Target its target and Activation the threshold above
	// which the trigger is active.
	Metric             string
	Target, Activation float64
	// Client configures the HTTP client; a nil Logger is the trigger's.
	Client httpauth.ClientOptions
}

// New parses cfg's metadata into a new M (scalers.Parse, which runs M's Validate), then builds the Base that
// options gives for the parsed metadata. Errors name the trigger.
func New[M any](cfg *scalers.TriggerConfig, triggerType string, options func(*M) Options) (Base, M, error) {
	var meta M
	if err := scalers.Parse(cfg, &meta); err != nil {
		return Base{}, meta, err
	}
	o := options(&meta)
	if o.Client.Logger == nil {
		o.Client.Logger = cfg.Logger
	}
	client, err := httpauth.AcquireClient(cfg.Shared, triggerType, o.Client)
	if err != nil {
		return Base{}, meta, cfg.Errorf("%w", err)
	}
	return Base{OneMetric: scalers.NewOneMetric(cfg, o.Metric, o.Target, o.Activation), Cfg: cfg, Client: client}, meta, nil
}

// Build is New for a scaler that needs nothing more than Base and its metadata: it returns the scaler that build
// makes of them.
func Build[M any, S scalers.Scaler](cfg *scalers.TriggerConfig, triggerType string, options func(*M) Options, build func(Base, M) S) (scalers.Scaler, error) {
	base, meta, err := New(cfg, triggerType, options)
	if err != nil {
		return nil, err
	}
	return build(base, meta), nil
}

// Close releases the client's shared transport and token source.
func (b *Base) Close(context.Context) error { return b.Client.Close() }
