package stream

import (
	"encoding/json"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/metricsadapter/stream/streampb"
	"github.com/tidalscale/tidal/scalers"
)

// Error kinds on the wire.
const (
	errorKindFailed = "failed"
	errorKindBuild  = "build"
)

// RemoteError is a trigger error as the adapter reported it. Its message was redacted by the adapter.
type RemoteError struct {
	Msg string
	// Build reports that the trigger's scaler could not be built (as opposed to a failed sample).
	Build bool
}

func (e *RemoteError) Error() string { return e.Msg }

// IsBuildError reports whether a trigger's Err is a build error: the poller keeps that as the Err of a trigger
// that never sampled and never failed a sample.
func IsBuildError(t *samples.TriggerState) bool {
	return t.Err != nil && t.SampledAt.IsZero() && t.ConsecutiveFailures == 0
}

func keyToPB(k samples.Key) *streampb.ObjectKey {
	return &streampb.ObjectKey{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name}
}

func keyFromPB(k *streampb.ObjectKey) samples.Key {
	if k == nil {
		return samples.Key{}
	}
	return samples.Key{Kind: k.GetKind(), Namespace: k.GetNamespace(), Name: k.GetName()}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func triggerToPB(t *samples.TriggerState) *streampb.TriggerState {
	out := &streampb.TriggerState{
		Index:               int32(t.Index),
		Name:                t.Name,
		Type:                t.Type,
		MetricNames:         t.MetricNames,
		Active:              t.Active,
		ConsecutiveFailures: int32(t.ConsecutiveFailures),
		SampledAtUnixNano:   unixNano(t.SampledAt),
		AttemptedAtUnixNano: unixNano(t.AttemptedAt),
		Pushed:              t.Pushed,
	}
	if len(t.Samples) > 0 {
		out.Samples = make([]*streampb.Sample, len(t.Samples))
		for i, s := range t.Samples {
			out.Samples[i] = &streampb.Sample{MetricName: s.MetricName, Value: s.Value}
		}
	}
	if t.Err != nil {
		out.Error = t.Err.Error()
		out.ErrorKind = errorKindFailed
		if IsBuildError(t) {
			out.ErrorKind = errorKindBuild
		}
	}
	return out
}

func triggerFromPB(t *streampb.TriggerState) samples.TriggerState {
	out := samples.TriggerState{
		Index:               int(t.GetIndex()),
		Name:                t.GetName(),
		Type:                t.GetType(),
		MetricNames:         t.GetMetricNames(),
		Active:              t.GetActive(),
		ConsecutiveFailures: int(t.GetConsecutiveFailures()),
		SampledAt:           fromUnixNano(t.GetSampledAtUnixNano()),
		AttemptedAt:         fromUnixNano(t.GetAttemptedAtUnixNano()),
		Pushed:              t.GetPushed(),
	}
	if n := len(t.GetSamples()); n > 0 {
		out.Samples = make([]scalers.Sample, n)
		for i, s := range t.GetSamples() {
			out.Samples[i] = scalers.Sample{MetricName: s.GetMetricName(), Value: s.GetValue()}
		}
	}
	if t.GetError() != "" {
		out.Err = &RemoteError{Msg: t.GetError(), Build: t.GetErrorKind() == errorKindBuild}
	}
	return out
}

func specsToPB(specs []autoscalingv2.MetricSpec) ([][]byte, error) {
	out := make([][]byte, len(specs))
	for i := range specs {
		b, err := json.Marshal(&specs[i])
		if err != nil {
			return nil, fmt.Errorf("metric spec %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

func specsFromPB(raw [][]byte) ([]autoscalingv2.MetricSpec, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make([]autoscalingv2.MetricSpec, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("metric_specs[%d]: %w", i, err)
		}
	}
	return out, nil
}
