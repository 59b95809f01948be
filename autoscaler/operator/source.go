package operator

import (
	"context"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/metricsadapter/poller"
)

// SampleSource supplies trigger samples to the operator. Two implementations exist: the in-process poller
// (*poller.Poller, for all-in-one and small clusters) and the metrics adapter's gRPC stream client. The
// operator registers every ScaledObject's triggers with Upsert, removes them with Delete, and reacts to every
// Update it receives; it never polls the source for values.
type SampleSource interface {
	// Upsert registers or updates an object's triggers; per-trigger build errors are returned (and reported
	// later as that trigger's error).
	Upsert(ctx context.Context, spec poller.ObjectSpec) []error
	// Delete forgets an object and releases its scalers.
	Delete(ctx context.Context, key poller.Key)
	// Subscribe streams every new sample and activity change.
	Subscribe(buffer int) (<-chan poller.Update, func())
	// Snapshot returns the current state of every object, for a subscriber that (re)starts.
	Snapshot() []poller.ObjectState
	// MetricSpecs returns the metric specs of an object's triggers (External targets, or Resource for cpu and
	// memory), in trigger order.
	MetricSpecs(key poller.Key) []autoscalingv2.MetricSpec
}

var _ SampleSource = (*poller.Poller)(nil)
