package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of ScaledJob fields (KEDA's).
const (
	DefaultSuccessfulJobsHistoryLimit int32 = 100
	DefaultFailedJobsHistoryLimit     int32 = 100
)

// ScaledJob runs Kubernetes Jobs in proportion to pending events.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=scaledjobs,scope=Namespaced,shortName=sj;tsj,categories=tidal
// +kubebuilder:printcolumn:name="Min",type="integer",JSONPath=".spec.minReplicaCount"
// +kubebuilder:printcolumn:name="Max",type="integer",JSONPath=".spec.maxReplicaCount"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Active",type="string",JSONPath=".status.conditions[?(@.type==\"Active\")].status"
// +kubebuilder:printcolumn:name="Paused",type="string",JSONPath=".status.conditions[?(@.type==\"Paused\")].status"
// +kubebuilder:printcolumn:name="Triggers",type="string",JSONPath=".status.triggersTypes",priority=1
// +kubebuilder:printcolumn:name="Authentications",type="string",JSONPath=".status.authenticationsTypes",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type ScaledJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ScaledJobSpec `json:"spec"`
	// +optional
	Status ScaledJobStatus `json:"status,omitempty"`
}

// ScaledJobList is a list of ScaledJobs.
//
// +kubebuilder:object:root=true
type ScaledJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ScaledJob `json:"items"`
}

// ScaledJobSpec is the desired job scaling.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicaCount) || !has(self.maxReplicaCount) || self.minReplicaCount <= self.maxReplicaCount",message="spec.minReplicaCount must be less than or equal to spec.maxReplicaCount",fieldPath=".minReplicaCount"
type ScaledJobSpec struct {
	// JobTargetRef is the template of the Jobs to run.
	JobTargetRef *batchv1.JobSpec `json:"jobTargetRef"`

	// PollingInterval is how often, in seconds, triggers are sampled.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	PollingInterval *int32 `json:"pollingInterval,omitempty"`

	// SuccessfulJobsHistoryLimit is how many finished successful Jobs are kept.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`

	// FailedJobsHistoryLimit is how many failed Jobs are kept.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit,omitempty"`

	// EnvSourceContainerName is the container whose environment scalers may read.
	// +optional
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`

	// MinReplicaCount is the number of Jobs kept running even without events.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`

	// MaxReplicaCount is the most Jobs running at once.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`

	// RolloutStrategy is deprecated in KEDA in favour of rollout.strategy; accepted for compatibility.
	// +optional
	// +kubebuilder:validation:Enum=default;gradual
	RolloutStrategy string `json:"rolloutStrategy,omitempty"`

	// Rollout chooses what happens to running Jobs when the ScaledJob changes.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`

	// ScalingStrategy chooses how many Jobs to start per pending event.
	// +optional
	ScalingStrategy *ScalingStrategy `json:"scalingStrategy,omitempty"`

	// Triggers are the event sources.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.name) || size(t.name) == 0 || self.exists_one(u, has(u.name) && u.name == t.name))",message="spec.triggers[].name must be unique"
	Triggers []ScaleTriggers `json:"triggers"`

	// Placement is the burst-or-wait policy for Job pods that need new nodes (docs/placement.md). Tidal only.
	// +optional
	Placement *Placement `json:"placement,omitempty"`
}

// Rollout configures Job replacement on ScaledJob update.
type Rollout struct {
	// Strategy: default deletes running Jobs on update, gradual lets them finish.
	// +optional
	// +kubebuilder:validation:Enum=default;gradual
	Strategy string `json:"strategy,omitempty"`
	// PropagationPolicy for deleting Jobs: background (default) or foreground.
	// +optional
	// +kubebuilder:validation:Enum=background;foreground
	PropagationPolicy string `json:"propagationPolicy,omitempty"`
}

// Rollout strategies of a ScaledJob (KEDA's names, which are Tidal's): rollout.strategy, or the deprecated
// rolloutStrategy; GetRolloutStrategy is the one place that reads them.
const (
	// RolloutStrategyDefault deletes the running Jobs of an older jobTargetRef when the ScaledJob changes.
	RolloutStrategyDefault = "default"
	// RolloutStrategyGradual lets them run to completion; only new Jobs use the new template.
	RolloutStrategyGradual = "gradual"
)

// Scaling strategies of a ScaledJob (KEDA's).
const (
	ScalingStrategyDefault  = "default"
	ScalingStrategyCustom   = "custom"
	ScalingStrategyAccurate = "accurate"
	ScalingStrategyEager    = "eager"
)

// ScalingStrategy configures how pending events turn into new Jobs.
// The custom* fields only matter with strategy custom; like KEDA, they are accepted and ignored otherwise.
type ScalingStrategy struct {
	// Strategy: default, custom, accurate or eager.
	// +optional
	// +kubebuilder:validation:Enum=default;custom;accurate;eager
	Strategy string `json:"strategy,omitempty"`
	// CustomScalingQueueLengthDeduction is subtracted from the queue length (strategy custom).
	// +optional
	CustomScalingQueueLengthDeduction *int32 `json:"customScalingQueueLengthDeduction,omitempty"`
	// CustomScalingRunningJobPercentage is the fraction (non-negative decimal string, usually 0-1) of running
	// Jobs counted as consuming the queue (strategy custom).
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+\.?[0-9]*|\.[0-9]+)$`
	CustomScalingRunningJobPercentage string `json:"customScalingRunningJobPercentage,omitempty"`
	// PendingPodConditions are pod conditions that must all be True on one of a Job's pods for the Job not to count
	// as pending (strategies accurate and eager); without them a Job is pending until it has a ready pod.
	// +optional
	PendingPodConditions []string `json:"pendingPodConditions,omitempty"`
	// MultipleScalersCalculation combines several triggers: max (default), min, avg or sum.
	// +optional
	// +kubebuilder:validation:Enum=max;min;avg;sum
	MultipleScalersCalculation string `json:"multipleScalersCalculation,omitempty"`
}

// ScaledJobStatus is observed by the operator.
type ScaledJobStatus struct {
	// LastActiveTime is the last time a trigger was active.
	// +optional
	LastActiveTime *metav1.Time `json:"lastActiveTime,omitempty"`
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
	// Conditions: Ready, Active, Paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
