package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of ScaledObject fields, applied by the CRD schema and by the Get* helpers for objects that did not
// pass through the API server (tests, tidalctl).
const (
	DefaultPollingInterval int32 = 30
	DefaultCooldownPeriod  int32 = 300
	DefaultMinReplicaCount int32 = 0
	DefaultMaxReplicaCount int32 = 100
)

// ScalingMode selects who computes and applies the replica count.
// +kubebuilder:validation:Enum=direct;hpa
type ScalingMode string

const (
	// ScalingModeDirect: the Tidal operator computes the replica count with HPA math and writes /scale itself.
	ScalingModeDirect ScalingMode = "direct"
	// ScalingModeHPA: the operator owns a HorizontalPodAutoscaler that reads external metrics (KEDA's model).
	ScalingModeHPA ScalingMode = "hpa"
)

// ScaledObject scales a Deployment, StatefulSet or any /scale resource from event sources, including to and
// from zero.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=scaledobjects,scope=Namespaced,shortName=so;tso,categories=tidal
// +kubebuilder:printcolumn:name="ScaleTargetKind",type="string",JSONPath=".status.scaleTargetKind"
// +kubebuilder:printcolumn:name="ScaleTargetName",type="string",JSONPath=".spec.scaleTargetRef.name"
// +kubebuilder:printcolumn:name="Min",type="integer",JSONPath=".spec.minReplicaCount"
// +kubebuilder:printcolumn:name="Max",type="integer",JSONPath=".spec.maxReplicaCount"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Active",type="string",JSONPath=".status.conditions[?(@.type==\"Active\")].status"
// +kubebuilder:printcolumn:name="Fallback",type="string",JSONPath=".status.conditions[?(@.type==\"Fallback\")].status"
// +kubebuilder:printcolumn:name="Paused",type="string",JSONPath=".status.conditions[?(@.type==\"Paused\")].status"
// +kubebuilder:printcolumn:name="Mode",type="string",JSONPath=".spec.mode"
// +kubebuilder:printcolumn:name="Triggers",type="string",JSONPath=".status.triggersTypes",priority=1
// +kubebuilder:printcolumn:name="Authentications",type="string",JSONPath=".status.authenticationsTypes",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ScaledObjectSpec `json:"spec"`
	// +optional
	Status ScaledObjectStatus `json:"status,omitempty"`
}

// ScaledObjectList is a list of ScaledObjects.
//
// +kubebuilder:object:root=true
type ScaledObjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ScaledObject `json:"items"`
}

// ScaledObjectSpec is the desired scaling of one target.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicaCount) || !has(self.maxReplicaCount) || self.minReplicaCount <= self.maxReplicaCount",message="spec.minReplicaCount must be less than or equal to spec.maxReplicaCount",fieldPath=".minReplicaCount"
// +kubebuilder:validation:XValidation:rule="!has(self.idleReplicaCount) || self.idleReplicaCount < (has(self.minReplicaCount) ? self.minReplicaCount : 0)",message="spec.idleReplicaCount must be less than spec.minReplicaCount",fieldPath=".idleReplicaCount"
// +kubebuilder:validation:XValidation:rule="!has(self.triggers) || size(self.triggers) == 0 || self.triggers.exists(t, !(t.type in ['cpu', 'memory'])) || (has(self.minReplicaCount) && self.minReplicaCount >= 1)",message="spec.minReplicaCount must be at least 1 when all triggers are cpu or memory (scaling to zero needs an event trigger)",fieldPath=".minReplicaCount"
// +kubebuilder:validation:XValidation:rule="!has(self.fallback) || !has(self.triggers) || self.triggers.exists(t, !(t.type in ['cpu', 'memory']))",message="spec.fallback is not supported when all triggers are cpu or memory",fieldPath=".fallback"
// +kubebuilder:validation:XValidation:rule="!has(self.fallback) || !has(self.mode) || self.mode != 'hpa' || (has(self.advanced) && has(self.advanced.scalingModifiers) && has(self.advanced.scalingModifiers.formula) && size(self.advanced.scalingModifiers.formula) > 0 ? (!has(self.advanced.scalingModifiers.metricType) || self.advanced.scalingModifiers.metricType == 'AverageValue') : (has(self.triggers) && self.triggers.exists(t, !(t.type in ['cpu', 'memory']) && (!has(t.metricType) || t.metricType == 'AverageValue'))))",message="spec.fallback in mode hpa needs a trigger (not cpu or memory) or scalingModifiers with metricType AverageValue",fieldPath=".fallback"
type ScaledObjectSpec struct {
	// ScaleTargetRef is the workload to scale; it must implement the /scale subresource.
	ScaleTargetRef ScaleTarget `json:"scaleTargetRef"`

	// Mode selects direct scaling by the operator (default) or a managed HorizontalPodAutoscaler. Tidal only.
	// In direct mode the operator decides on every sample rather than every 15s HPA sync; scale steps are paced
	// by advanced.horizontalPodAutoscalerConfig.behavior, or when it is unset by the HPA's default rules
	// (scale up by at most max(4 pods, 100%) per 15s; scale down by 100% per 15s after a 300s stabilization).
	// +optional
	// +kubebuilder:default=direct
	Mode ScalingMode `json:"mode,omitempty"`

	// PollingInterval is how often, in seconds, triggers are sampled.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	PollingInterval *int32 `json:"pollingInterval,omitempty"`

	// InitialCooldownPeriod is how long, in seconds, after creation the target is not scaled to zero.
	// +optional
	// +kubebuilder:validation:Minimum=0
	InitialCooldownPeriod *int32 `json:"initialCooldownPeriod,omitempty"`

	// CooldownPeriod is how long, in seconds, after the last active trigger the target is scaled to zero/idle.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	CooldownPeriod *int32 `json:"cooldownPeriod,omitempty"`

	// IdleReplicaCount is the replica count while no trigger is active. Must be below minReplicaCount.
	// +optional
	// +kubebuilder:validation:Minimum=0
	IdleReplicaCount *int32 `json:"idleReplicaCount,omitempty"`

	// MinReplicaCount is the lowest replica count while active (0 enables scale to zero).
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`

	// MaxReplicaCount is the highest replica count.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`

	// Advanced holds HPA behavior, scaling modifiers and restore-on-delete.
	// +optional
	Advanced *AdvancedConfig `json:"advanced,omitempty"`

	// Triggers are the event sources. The target is active when any trigger is active.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.name) || size(t.name) == 0 || self.exists_one(u, has(u.name) && u.name == t.name))",message="spec.triggers[].name must be unique"
	Triggers []ScaleTriggers `json:"triggers"`

	// Fallback sets a replica count while triggers keep failing.
	// +optional
	Fallback *Fallback `json:"fallback,omitempty"`

	// Placement is the burst-or-wait policy for pods of a scale-up that need new nodes (docs/placement.md).
	// Tidal only.
	// +optional
	Placement *Placement `json:"placement,omitempty"`
}

// ScaleTarget references the scaled workload in the ScaledObject's namespace.
type ScaleTarget struct {
	// Name of the workload.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// APIVersion of the workload; default apps/v1.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the workload; default Deployment.
	// +optional
	Kind string `json:"kind,omitempty"`
	// EnvSourceContainerName is the container whose environment scalers may read (…FromEnv metadata keys).
	// +optional
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// Default scale target when apiVersion/kind are empty.
const (
	DefaultScaleTargetAPIVersion = "apps/v1"
	DefaultScaleTargetKind       = "Deployment"
)

// FallbackBehavior chooses how fallback replicas combine with the current replica count.
// +kubebuilder:validation:Enum=static;currentReplicas;currentReplicasIfHigher;currentReplicasIfLower
type FallbackBehavior string

const (
	// FallbackBehaviorStatic uses fallback.replicas.
	FallbackBehaviorStatic FallbackBehavior = "static"
	// FallbackBehaviorCurrentReplicas keeps the current replica count.
	FallbackBehaviorCurrentReplicas FallbackBehavior = "currentReplicas"
	// FallbackBehaviorCurrentReplicasIfHigher uses max(current, fallback.replicas).
	FallbackBehaviorCurrentReplicasIfHigher FallbackBehavior = "currentReplicasIfHigher"
	// FallbackBehaviorCurrentReplicasIfLower uses min(current, fallback.replicas).
	FallbackBehaviorCurrentReplicasIfLower FallbackBehavior = "currentReplicasIfLower"
)

// Fallback is applied after failureThreshold consecutive failed samples of a trigger.
type Fallback struct {
	// FailureThreshold is the number of consecutive failures that turns fallback on.
	// +kubebuilder:validation:Minimum=1
	FailureThreshold int32 `json:"failureThreshold"`
	// Replicas is the fallback replica count.
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`
	// Behavior combines Replicas with the current replica count.
	// +optional
	// +kubebuilder:default=static
	Behavior FallbackBehavior `json:"behavior,omitempty"`
}

// AdvancedConfig holds the less common knobs.
type AdvancedConfig struct {
	// HorizontalPodAutoscalerConfig names the managed HPA (mode hpa) and sets scaling behavior (both modes).
	// +optional
	HorizontalPodAutoscalerConfig *HorizontalPodAutoscalerConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	// RestoreToOriginalReplicaCount scales the target back to its original replica count when the ScaledObject
	// is deleted.
	// +optional
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
	// ScalingModifiers combine the triggers' metrics into one with a formula.
	// +optional
	ScalingModifiers *ScalingModifiers `json:"scalingModifiers,omitempty"`
}

// HorizontalPodAutoscalerConfig configures the HPA (mode hpa) or the operator's HPA math (mode direct).
type HorizontalPodAutoscalerConfig struct {
	// Name of the managed HPA; default "tidal-hpa-<scaledobject name>".
	// +optional
	Name string `json:"name,omitempty"`
	// Behavior configures scale-up and scale-down policies and stabilization windows.
	// +optional
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// ScalingModifiers computes one composite metric from the named triggers with an expr-lang formula.
//
// +kubebuilder:validation:XValidation:rule="!has(self.formula) || size(self.formula) == 0 || (has(self.target) && size(self.target) > 0)",message="advanced.scalingModifiers.target is required when formula is set",fieldPath=".target"
// +kubebuilder:validation:XValidation:rule="(has(self.formula) && size(self.formula) > 0) || ((!has(self.target) || size(self.target) == 0) && (!has(self.activationTarget) || size(self.activationTarget) == 0))",message="advanced.scalingModifiers.formula is required when target or activationTarget is set",fieldPath=".formula"
// +kubebuilder:validation:XValidation:rule="!has(self.target) || !self.target.matches('^([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$') || double(self.target) > 0.0",message="advanced.scalingModifiers.target must be greater than zero",fieldPath=".target"
type ScalingModifiers struct {
	// Formula over trigger names, e.g. "(queue + lag) / 2".
	// +optional
	Formula string `json:"formula,omitempty"`
	// Target is the composite metric's target value, a positive decimal number.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`
	Target string `json:"target,omitempty"`
	// ActivationTarget is the value above which the composite metric is active, a decimal number.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`
	ActivationTarget string `json:"activationTarget,omitempty"`
	// MetricType of the composite metric: AverageValue (default) or Value.
	// +optional
	// +kubebuilder:validation:Enum=AverageValue;Value
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// ScaledObjectStatus is observed by the operator.
type ScaledObjectStatus struct {
	// ScaleTargetKind is "<apiVersion>.<kind>" of the target, e.g. "apps/v1.Deployment".
	// +optional
	ScaleTargetKind string `json:"scaleTargetKind,omitempty"`
	// ScaleTargetGVKR is the resolved target type.
	// +optional
	ScaleTargetGVKR *GroupVersionKindResource `json:"scaleTargetGVKR,omitempty"`
	// OriginalReplicaCount is the target's replica count before Tidal first scaled it.
	// +optional
	OriginalReplicaCount *int32 `json:"originalReplicaCount,omitempty"`
	// LastActiveTime is the last time a trigger was active. While the Active condition is True it is refreshed
	// every 5 minutes, not on every sample; it is exact once the activity ends.
	// +optional
	LastActiveTime *metav1.Time `json:"lastActiveTime,omitempty"`
	// CurrentReplicas is the target's replica count at the last reconcile.
	// +optional
	CurrentReplicas *int32 `json:"currentReplicas,omitempty"`
	// DesiredReplicas is the replica count Tidal last asked for.
	// +optional
	DesiredReplicas *int32 `json:"desiredReplicas,omitempty"`
	// ExternalMetricNames are the external.metrics.k8s.io names served for this object.
	// +optional
	ExternalMetricNames []string `json:"externalMetricNames,omitempty"`
	// ResourceMetricNames are the resource metrics (cpu, memory) used by this object.
	// +optional
	ResourceMetricNames []string `json:"resourceMetricNames,omitempty"`
	// CompositeScalerName is the external metric name of the scalingModifiers composite metric.
	// +optional
	CompositeScalerName string `json:"compositeScalerName,omitempty"`
	// Health per external metric name.
	// +optional
	Health map[string]HealthStatus `json:"health,omitempty"`
	// PausedReplicaCount is the replica count set by the paused-replicas annotation.
	// +optional
	PausedReplicaCount *int32 `json:"pausedReplicaCount,omitempty"`
	// HpaName is the managed HPA (mode hpa).
	// +optional
	HpaName string `json:"hpaName,omitempty"`
	// TriggersTypes is a comma-separated list of trigger types, for printer columns.
	// +optional
	TriggersTypes string `json:"triggersTypes,omitempty"`
	// AuthenticationsTypes is a comma-separated list of referenced authentications, for printer columns.
	// +optional
	AuthenticationsTypes string `json:"authenticationsTypes,omitempty"`
	// Triggers holds the last sample of each trigger. Tidal only.
	// +optional
	// +listType=map
	// +listMapKey=name
	Triggers []TriggerStatus `json:"triggers,omitempty"`
	// ObservedGeneration is the spec generation the status describes. Tidal only.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// DecisionState is the decision history (stabilization recommendations, scale events) the operator
	// restores after a restart or leader change. Tidal only.
	// +optional
	DecisionState *DecisionState `json:"decisionState,omitempty"`
	// LastScaleUp traces the latest scale-up from its event to the capacity request and placement decision.
	// Tidal only.
	// +optional
	LastScaleUp *ScaleUpTrace `json:"lastScaleUp,omitempty"`
	// Conditions: Ready, Active, Fallback, Paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GroupVersionKindResource is the resolved type of a scale target.
type GroupVersionKindResource struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Kind     string `json:"kind"`
	Resource string `json:"resource"`
}

// HealthStatusType is the health of one metric.
type HealthStatusType string

const (
	// HealthStatusHappy: the last sample succeeded.
	HealthStatusHappy HealthStatusType = "Happy"
	// HealthStatusFailing: the last sample failed.
	HealthStatusFailing HealthStatusType = "Failing"
)

// HealthStatus counts consecutive failures of one metric.
type HealthStatus struct {
	// NumberOfFailures is the count of consecutive failed samples.
	// +optional
	NumberOfFailures *int32 `json:"numberOfFailures,omitempty"`
	// Status is Happy or Failing.
	// +optional
	Status HealthStatusType `json:"status,omitempty"`
}
