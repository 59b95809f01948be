// Package samples is the contract between whatever samples triggers (the metrics adapter's poller, in-process
// or behind the gRPC stream) and the operator that decides on the samples. Data flows one way: scalers →
// poller → (stream) → operator. Both sides import this package and nothing of each other.
package samples

import (
	"context"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
)

// Object kinds a Key may name.
const (
	KindScaledObject = "ScaledObject"
	KindScaledJob    = "ScaledJob"
)

// Key identifies a ScaledObject or ScaledJob.
type Key struct{ Kind, Namespace, Name string }

// String renders "namespace/name".
func (k Key) String() string { return k.Namespace + "/" + k.Name }

// ObjectSpec is what a sampler needs of one ScaledObject or ScaledJob: its triggers, resolved.
type ObjectSpec struct {
	Key Key
	// PollingInterval is spec.pollingInterval; zero means KEDA's default, 30s.
	PollingInterval time.Duration
	// Triggers are the resolved triggers; the caller sets each Index (its position in spec.triggers).
	Triggers []scalers.TriggerConfig
	// UseCachedMetrics is triggers[].useCachedMetrics by position; missing entries are false.
	UseCachedMetrics []bool
	// Generation is the object's metadata.generation. An Upsert with the generation already held is a no-op.
	Generation int64
	// RefreshAt is when the triggers should be resolved again because parameters read from an external secret
	// store are due for a refresh (autoscaler/triggers/stores); zero when none are used.
	RefreshAt time.Time
}

// TriggerState is the latest state of one trigger.
//
// On a failed sample, Samples, Active and SampledAt keep the values of the last successful sample, while Err and
// ConsecutiveFailures describe the latest attempt; a successful sample resets both. A trigger whose scaler could
// not be built has the build error in Err and is never sampled.
type TriggerState struct {
	Index int
	// Generation is the object's metadata.generation this state belongs to: a consumer never mixes the samples
	// of an older spec (another listName, another threshold) into a decision on the current one.
	Generation  int64
	Name, Type  string
	MetricNames []string
	Samples     []scalers.Sample
	Active      bool
	Err         error
	// ConsecutiveFailures counts failed samples since the last success.
	ConsecutiveFailures int
	// SampledAt is when the last successful sample was taken; zero before the first.
	SampledAt time.Time
	// AttemptedAt is when the latest sample, successful or failed, was taken; zero before the first, and for a
	// trigger whose scaler could not be built.
	AttemptedAt time.Time
	// Pushed reports that the latest sample was taken because the trigger's PushScaler signalled a change.
	Pushed bool
}

// Reported reports whether the trigger has reported at least once: a successful sample, or a failure (a
// failed sample, or a scaler that could not be built). A trigger that has not must not take part in a decision:
// it has no value, not a value of zero.
func (t *TriggerState) Reported() bool { return !t.SampledAt.IsZero() || t.Err != nil }

// Latest is when the trigger last reported a sample: AttemptedAt, or SampledAt when the sender did not stamp
// attempts (an adapter of an earlier version).
func (t *TriggerState) Latest() time.Time {
	if !t.AttemptedAt.IsZero() {
		return t.AttemptedAt
	}
	return t.SampledAt
}

// OlderThan reports whether t is older than u: a state of the same generation whose latest sample (Latest:
// successful or failed) was taken before u's. States of different generations are not ordered by time (the
// generation decides which one a consumer keeps), nor is a state without a sample time (a scaler that could not
// be built). Times are stamped by the sampler's clock, so comparing the states of two replicas assumes their
// clocks agree to better than a polling interval.
func (t *TriggerState) OlderThan(u *TriggerState) bool {
	tl := t.Latest()
	return t.Generation == u.Generation && !tl.IsZero() && tl.Before(u.Latest())
}

// ObjectState is the state of one object, for Snapshot.
type ObjectState struct {
	Key        Key
	Generation int64
	Triggers   []TriggerState
}

// Update is published to subscribers after every sample of a trigger, successful or not.
type Update struct {
	Key     Key
	Trigger TriggerState
	// ActivityChanged reports that Trigger.Active differs from the state before this update. When a slow
	// subscriber's updates were coalesced, it reports whether any of the merged updates changed activity.
	ActivityChanged bool
}

// Source supplies trigger samples to the operator. Two implementations exist: the metrics adapter's poller
// (in-process, for all-in-one and small clusters) and the adapter's gRPC stream client. The operator registers
// every object's triggers with Upsert, removes them with Delete, and reacts to every Update it receives; it
// never polls the source for values. cmd/ chooses which one the operator gets.
type Source interface {
	// Upsert registers or updates an object's triggers; per-trigger build errors are returned (and reported
	// later as that trigger's error).
	Upsert(ctx context.Context, spec ObjectSpec) []error
	// Delete forgets an object and releases its scalers.
	Delete(ctx context.Context, key Key)
	// Subscribe streams every new sample and activity change.
	Subscribe(buffer int) (<-chan Update, func())
	// Snapshot returns the current state of every object, for a subscriber that (re)starts.
	Snapshot() []ObjectState
	// MetricSpecs returns the metric specs of an object's triggers (External targets, or Resource for cpu and
	// memory), in trigger order.
	MetricSpecs(key Key) []autoscalingv2.MetricSpec
}

// Consume calls fn with each update from updates, in order, until ctx is done or updates is closed: the loop of
// every subscriber of a Source.
func Consume(ctx context.Context, updates <-chan Update, fn func(Update)) {
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			fn(u)
		}
	}
}
