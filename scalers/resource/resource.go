// Package resource implements the cpu and memory triggers: KEDA's cpu/memory scalers.
//
// These triggers do not read an event source. Their metric is a pod resource that the HPA (in hpa mode) or the
// operator's direct HPA math computes from metrics.k8s.io, so MetricSpecs returns a Resource (or
// ContainerResource) metric spec and Sample returns no values. Because a workload scaled to zero has no pods and
// therefore no resource usage, these triggers can never activate a workload from zero:
//
//   - a ScaledJob cannot use them at all (New rejects the trigger, as KEDA does);
//   - a ScaledObject whose only triggers are cpu/memory must keep minReplicaCount >= 1 (ValidateMinReplicas, for
//     the admission webhook).
//
// Metadata (KEDA names):
//
//	type           deprecated: Utilization | AverageValue; use the trigger's metricType instead
//	value          required: a percentage of the pods' requests (Utilization) or a quantity such as 500m/256Mi
//	               (AverageValue)
//	containerName  optional: measure this container only (a ContainerResource metric)
package resource

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"

	"github.com/tidalscale/tidal/scalers"
)

// Trigger types served by this package.
const (
	TypeCPU    = "cpu"
	TypeMemory = "memory"
)

// Register adds the cpu and memory triggers to r.
func Register(r *scalers.Registry) {
	r.Register(New, TypeCPU, TypeMemory)
	r.Describe(Metadata{}, TypeCPU, TypeMemory)
}

// Metadata is the trigger metadata of a cpu or memory trigger.
type Metadata struct {
	// Type is KEDA's deprecated metadata.type; when set it decides the target type.
	Type string `tidal:"name=type,optional,enum=Utilization;AverageValue"`
	// Value is the target: an integer percentage for Utilization, a quantity for AverageValue.
	Value string `tidal:"name=value"`
	// ContainerName, when set, makes the metric a ContainerResource metric of that container.
	ContainerName string `tidal:"name=containerName,optional"`
}

// AverageValue bounds: below 1m a target rounds to 0; above scalers.MaxValue milli-unit arithmetic overflows.
var (
	minAverageValue = apiresource.MustParse("1m")
	maxAverageValue = *apiresource.NewQuantity(int64(scalers.MaxValue), apiresource.DecimalSI)
)

// Target is a parsed cpu/memory target.
type Target struct {
	Type          autoscalingv2.MetricTargetType
	Utilization   int32
	AverageValue  apiresource.Quantity
	ContainerName string
}

// ParseTarget parses and validates the metadata of a cpu or memory trigger, resolving the target type from
// metadata.type (deprecated) or the trigger's metricType. It does not check the object kind.
func ParseTarget(cfg *scalers.TriggerConfig) (Target, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return Target{}, err
	}
	mt := cfg.MetricType
	if mt == "" {
		mt = autoscalingv2.AverageValueMetricType
	}
	if meta.Type != "" {
		typ := autoscalingv2.MetricTargetType(meta.Type)
		// metricType defaults to AverageValue, so only an explicit other value can conflict.
		if mt != autoscalingv2.AverageValueMetricType && mt != typ {
			return Target{}, cfg.Errorf("type: deprecated metadata.type %q conflicts with metricType %q; set only metricType", meta.Type, mt)
		}
		mt = typ
	}
	t := Target{Type: mt, ContainerName: meta.ContainerName}
	switch mt {
	case autoscalingv2.UtilizationMetricType:
		n, err := strconv.ParseInt(meta.Value, 10, 32)
		if err != nil {
			return Target{}, cfg.Errorf("value: want an integer percentage for Utilization, got %q", meta.Value)
		}
		if n <= 0 {
			return Target{}, cfg.Errorf("value: must be > 0 for Utilization, got %d", n)
		}
		t.Utilization = int32(n)
	case autoscalingv2.AverageValueMetricType:
		q, err := apiresource.ParseQuantity(meta.Value)
		if err != nil {
			return Target{}, cfg.Errorf("value: want a quantity such as 500m or 256Mi for AverageValue, got %q", meta.Value)
		}
		if q.Sign() <= 0 {
			return Target{}, cfg.Errorf("value: must be > 0 for AverageValue, got %q", meta.Value)
		}
		if q.Cmp(minAverageValue) < 0 || q.Cmp(maxAverageValue) > 0 {
			return Target{}, cfg.Errorf("value: must be between %s and %s for AverageValue (milli precision), got %q",
				minAverageValue.String(), maxAverageValue.String(), meta.Value)
		}
		t.AverageValue = q
	default:
		return Target{}, cfg.Errorf("metricType: %q is not supported by %s triggers; use Utilization or AverageValue", mt, cfg.Type)
	}
	return t, nil
}

// Scaler is a cpu or memory trigger. It implements scalers.ResourceScaler.
type Scaler struct {
	spec autoscalingv2.MetricSpec
}

var _ scalers.ResourceScaler = (*Scaler)(nil)

// New builds a cpu or memory trigger. It fails for a ScaledJob: a job is started by an event source, and
// resource usage exists only once pods run.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	cfg.Normalize()
	var name corev1.ResourceName
	switch cfg.Type {
	case TypeCPU:
		name = corev1.ResourceCPU
	case TypeMemory:
		name = corev1.ResourceMemory
	default:
		return nil, cfg.Errorf("type: resource scaler serves %s and %s, not %q", TypeCPU, TypeMemory, cfg.Type)
	}
	if cfg.ObjectKind == "ScaledJob" {
		return nil, cfg.Errorf("type: %s triggers are not supported in a ScaledJob; they can only scale a ScaledObject's running pods", cfg.Type)
	}
	t, err := ParseTarget(cfg)
	if err != nil {
		return nil, err
	}
	return &Scaler{spec: buildSpec(name, t)}, nil
}

func buildSpec(name corev1.ResourceName, t Target) autoscalingv2.MetricSpec {
	mt := autoscalingv2.MetricTarget{Type: t.Type}
	if t.Type == autoscalingv2.UtilizationMetricType {
		u := t.Utilization
		mt.AverageUtilization = &u
	} else {
		q := t.AverageValue.DeepCopy()
		mt.AverageValue = &q
	}
	if t.ContainerName != "" {
		return autoscalingv2.MetricSpec{
			Type: autoscalingv2.ContainerResourceMetricSourceType,
			ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
				Name:      name,
				Container: t.ContainerName,
				Target:    mt,
			},
		}
	}
	return autoscalingv2.MetricSpec{
		Type:     autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: name, Target: mt},
	}
}

// MetricSpecs returns the trigger's Resource or ContainerResource metric spec.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{*s.spec.DeepCopy()}
}

// Sample returns no values and never reports active: the HPA (or the operator's direct HPA math) reads pod
// usage from metrics.k8s.io itself.
func (s *Scaler) Sample(context.Context) ([]scalers.Sample, bool, error) {
	return nil, false, nil
}

// ResourceMetric reports that this scaler's metric is a pod resource.
func (s *Scaler) ResourceMetric() bool { return true }

// Close does nothing: there is no connection.
func (s *Scaler) Close(context.Context) error { return nil }

// CannotActivate reports whether a trigger type can never activate a workload from zero replicas, because its
// metric exists only while pods run (cpu, memory). The admission webhook uses it through ValidateMinReplicas.
func CannotActivate(triggerType string) bool {
	return triggerType == TypeCPU || triggerType == TypeMemory
}

// ErrCannotScaleToZero is wrapped by ValidateMinReplicas' error.
var ErrCannotScaleToZero = errors.New("cpu and memory triggers cannot scale a workload from zero")

// ValidateMinReplicas checks a ScaledObject's minReplicaCount against its trigger types: when every trigger is
// cpu or memory, minReplicaCount 0 would leave the workload at zero for good (nothing could activate it), so it
// is invalid, as in KEDA. A ScaledObject with no triggers is left to other validation.
func ValidateMinReplicas(triggerTypes []string, minReplicas int32) error {
	if minReplicas > 0 || len(triggerTypes) == 0 {
		return nil
	}
	for _, t := range triggerTypes {
		if !CannotActivate(t) {
			return nil
		}
	}
	return fmt.Errorf("minReplicaCount: %d is invalid with only %s triggers: %w; set minReplicaCount >= 1 or add an event-source trigger",
		minReplicas, strings.Join(uniq(triggerTypes), "/"), ErrCannotScaleToZero)
}

func uniq(in []string) []string {
	var out []string
	for _, s := range in {
		dup := false
		for _, o := range out {
			if o == s {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}
