package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Limits that keep the CEL rules' estimated cost bounded. They are generous for hand-written manifests.
const (
	// MaxTriggers is the most triggers one ScaledObject or ScaledJob may have.
	MaxTriggers = 64
	// MaxTriggerTypeLength is the longest trigger type name.
	MaxTriggerTypeLength = 63
	// MaxTriggerNameLength is the longest trigger name.
	MaxTriggerNameLength = 253
)

// Trigger types with special rules (KEDA's resource-metric scalers, served by metrics.k8s.io, not by Tidal).
const (
	TriggerTypeCPU    = "cpu"
	TriggerTypeMemory = "memory"
)

// ScaleTriggers is one event source of a ScaledObject or ScaledJob.
//
// +kubebuilder:validation:XValidation:rule="!has(self.metricType) || self.metricType != 'Utilization' || self.type in ['cpu', 'memory']",message="triggers[].metricType: Utilization is only supported by cpu and memory triggers",fieldPath=".metricType"
// +kubebuilder:validation:XValidation:rule="!(self.type in ['cpu', 'memory']) || !has(self.metricType) || self.metricType != 'Value'",message="triggers[].metricType: Value is not supported by cpu and memory triggers",fieldPath=".metricType"
type ScaleTriggers struct {
	// Type is the scaler, e.g. redis, kafka, prometheus, cpu.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Type string `json:"type"`

	// Name identifies the trigger in status, events and scalingModifiers formulas. Unique within the object.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// UseCachedMetrics serves HPA queries from the last sample instead of querying the source (KEDA semantics).
	// Tidal's metrics adapter always serves from its cache; the field is accepted for compatibility.
	// +optional
	UseCachedMetrics bool `json:"useCachedMetrics,omitempty"`

	// Metadata is the scaler's configuration; keys and values depend on Type.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`

	// AuthenticationRef names the TriggerAuthentication or ClusterTriggerAuthentication holding credentials.
	// +optional
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`

	// MetricType is the target type of the metric: AverageValue (default), Value, or Utilization (cpu/memory only).
	// +optional
	// +kubebuilder:validation:Enum=AverageValue;Value;Utilization
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// AuthenticationRef points to a TriggerAuthentication (same namespace) or a ClusterTriggerAuthentication.
type AuthenticationRef struct {
	// Name of the referenced object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Kind is TriggerAuthentication (default) or ClusterTriggerAuthentication.
	// +optional
	// +kubebuilder:validation:Enum=TriggerAuthentication;ClusterTriggerAuthentication
	Kind string `json:"kind,omitempty"`
}

// Kinds an AuthenticationRef may name.
const (
	KindTriggerAuthentication        = "TriggerAuthentication"
	KindClusterTriggerAuthentication = "ClusterTriggerAuthentication"
)

// GetKind returns the referenced kind, defaulting to TriggerAuthentication.
func (r *AuthenticationRef) GetKind() string {
	if r.Kind == "" {
		return KindTriggerAuthentication
	}
	return r.Kind
}

// TriggerStatus is the last sample of one trigger, for `tidalctl status` and kubectl.
type TriggerStatus struct {
	// Name of the trigger (spec.triggers[].name, or "<type>-<index>" when unnamed).
	Name string `json:"name"`
	// Type of the trigger.
	Type string `json:"type"`
	// Value is the last sampled metric value as a resource.Quantity string.
	// +optional
	Value string `json:"value,omitempty"`
	// Active reports whether the trigger asks for at least one replica.
	Active bool `json:"active"`
	// Error is the last sampling error, empty on success. It never contains credentials.
	// +optional
	Error string `json:"error,omitempty"`
	// LastSampleTime is when the value or error was observed.
	// +optional
	LastSampleTime *metav1.Time `json:"lastSampleTime,omitempty"`
}
