package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CapacityRequest is the demand signal: a scaler that has just decided a workload needs more replicas announces the
// pods it is about to create, before it creates them, so the node autoscaler can grow node groups ahead of the
// pods instead of after they go Pending. The operator writes one per scale target, owned by the ScaledObject,
// ScaledJob or HorizontalPodAutoscaler that decided; the node autoscaler counts
// max(0, spec.replicas − pods of spec.selector that exist) simulated pods of spec.pod until spec.expiresAt.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=capacityrequests,scope=Namespaced,shortName=capreq,categories=tidal
// +kubebuilder:printcolumn:name="Replicas",type="integer",JSONPath=".spec.replicas"
// +kubebuilder:printcolumn:name="Missing",type="integer",JSONPath=".status.missingReplicas"
// +kubebuilder:printcolumn:name="Expires",type="date",JSONPath=".spec.expiresAt"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type CapacityRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec CapacityRequestSpec `json:"spec"`
	// +optional
	Status CapacityRequestStatus `json:"status,omitempty"`
}

// CapacityRequestList is a list of CapacityRequests.
//
// +kubebuilder:object:root=true
type CapacityRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CapacityRequest `json:"items"`
}

// MaxCapacityRequestReplicas bounds spec.replicas, so a typo cannot ask for a city of nodes.
const MaxCapacityRequestReplicas = 100000

// CapacityRequestSpec is the expected demand of one workload.
type CapacityRequestSpec struct {
	// Replicas is the pod count the workload is about to have (the scaler's decision, not the increase).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	Replicas int32 `json:"replicas"`

	// Selector matches the workload's pods (the target's /scale status.selector); pods it matches that exist,
	// scheduled or pending, are subtracted from Replicas, so a pod is never counted twice. It must not be empty.
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="spec.selector must select the workload's pods: give matchLabels or matchExpressions"
	Selector metav1.LabelSelector `json:"selector"`

	// Pod is the scheduling shape of one replica.
	Pod CapacityRequestPod `json:"pod"`

	// ExpiresAt ends the request: after it the node autoscaler ignores it and the headroom it held is released
	// by the normal scale-down rules.
	ExpiresAt metav1.Time `json:"expiresAt"`

	// Placement is the workload's burst-or-wait policy (the scaler object's spec.placement); the node
	// autoscaler decides with it and records the decision in status.placement.
	// +optional
	Placement *Placement `json:"placement,omitempty"`
}

// CapacityRequestPod is the part of a pod spec that decides where it can be scheduled.
type CapacityRequestPod struct {
	// Labels of the pod (topology spread and pod (anti-)affinity count pods by label).
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Labels map[string]string `json:"labels,omitempty"`

	// Requests of one pod, init containers and overhead included (k8s.io/component-helpers resource.PodRequests).
	// Quantities must not be negative.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, !string(self[k]).startsWith('-'))",message="spec.pod.requests: quantities must not be negative"
	Requests corev1.ResourceList `json:"requests,omitempty"`

	// NodeSelector of the pod.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the pod.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity of the pod.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// TopologySpreadConstraints of the pod.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
}

// CapacityRequestStatus is written by the node autoscaler.
type CapacityRequestStatus struct {
	// MissingReplicas is the number of replicas the last loop simulated: spec.replicas minus the pods that exist,
	// zero once expired.
	// +optional
	MissingReplicas int32 `json:"missingReplicas"`
	// ProvisionedNodes counts the nodes the node autoscaler requested for this request's simulated pods, before
	// those pods existed.
	// +optional
	ProvisionedNodes int32 `json:"provisionedNodes"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Placement is the burst-or-wait decision for spec.placement and its inputs.
	// +optional
	Placement *PlacementDecision `json:"placement,omitempty"`
}
