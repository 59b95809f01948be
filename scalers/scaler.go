// Package scalers defines the contract every Tidal event source implements, the trigger configuration handed
// to it, the struct-tag metadata parser and the registry that builds scalers from triggers.
//
// One package per source lives below this one (scalers/redis, scalers/kafka, ...). The registry of all of them is
// scalers/registry, so that this package stays importable by each of them.
package scalers

import (
	"context"
	"errors"
	"math"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Scaler reads one trigger's event source.
//
// MetricSpecs is called once after construction and must not block. Sample is called at the trigger's polling
// interval (or when a PushScaler signals a change); it returns one value per metric named in MetricSpecs and
// whether the source is active (above its activation threshold), or an error that concerns this trigger only.
// Close releases connections; after Close no other method is called.
type Scaler interface {
	MetricSpecs() []autoscalingv2.MetricSpec
	Sample(ctx context.Context) (values []Sample, active bool, err error)
	Close(ctx context.Context) error
}

// PushScaler is a Scaler whose source can tell when it changed, so a scale from zero need not wait for the
// polling interval. Watch blocks until ctx is done or the watch fails for good; each time the source may have
// changed (an empty source became non-empty, a lag appeared) it makes a non-blocking send on changed. The caller
// then calls Sample. A Watch that returns an error before ctx is done makes the caller fall back to polling.
type PushScaler interface {
	Scaler
	Watch(ctx context.Context, changed chan<- struct{}) error
}

// ResourceScaler marks scalers whose metric is a pod resource (cpu, memory) computed by the HPA from
// metrics.k8s.io rather than sampled from an event source. Sample on such a scaler returns no values, and such a
// scaler can never activate a workload from zero.
type ResourceScaler interface {
	Scaler
	ResourceMetric() bool
}

// Sample is one metric value read from a source.
type Sample struct {
	// MetricName matches the External metric name in MetricSpecs.
	MetricName string
	Value      float64
}

// Quantity renders the value the way the HPA and the external metrics API expect it: milli-units, so
// fractional values survive.
func (s Sample) Quantity() resource.Quantity {
	return FloatQuantity(s.Value)
}

// FloatQuantity converts a float to a milli-precision quantity, clamping values a Quantity cannot hold.
func FloatQuantity(v float64) resource.Quantity {
	switch {
	case math.IsNaN(v):
		v = 0
	case v > math.MaxInt64/1000:
		v = math.MaxInt64 / 1000
	case v < math.MinInt64/1000:
		v = math.MinInt64 / 1000
	}
	return *resource.NewMilliQuantity(int64(math.Round(v*1000)), resource.DecimalSI)
}

// ErrUnknownType is returned by the registry for a trigger type it has no scaler for.
var ErrUnknownType = errors.New("unknown trigger type")
