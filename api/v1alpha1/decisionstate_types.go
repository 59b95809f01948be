package v1alpha1

// DecisionState is the operator's decision history for one ScaledObject (autoscaler/core.History in compact
// form): the unstabilized replica recommendations that stabilization windows still look at, and the recent
// scale events that rate policies count. The operator writes it with the status whenever it changes in a way
// that can change a later decision, and restores it after a restart or a leader change, so a stabilization
// window or a rate limit continues where it was. Tidal only; written by the operator, not by users.
//
// It is bounded: entries outside every window are dropped, times are rounded up to a grain of 1/15 of the
// window (at least a second), and recommendations no later one outweighs are dropped.
type DecisionState struct {
	// Initialized is set once the first decision recorded its recommendation.
	// +optional
	Initialized bool `json:"initialized,omitempty"`
	// ScaledToZero is set when the HPA math itself scaled the target to zero.
	// +optional
	ScaledToZero bool `json:"scaledToZero,omitempty"`
	// Recommendations are replica recommendations inside the stabilization windows, oldest first.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Recommendations []DecisionPoint `json:"recommendations,omitempty"`
	// ScaleUpEvents are recent scale-ups (Count is the number of replicas added), oldest first.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	ScaleUpEvents []DecisionPoint `json:"scaleUpEvents,omitempty"`
	// ScaleDownEvents are recent scale-downs (Count is the number of replicas removed), oldest first.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	ScaleDownEvents []DecisionPoint `json:"scaleDownEvents,omitempty"`
}

// DecisionPoint is a replica count at a time.
type DecisionPoint struct {
	// Count is the recommended replica count, or the number of replicas a scale event added or removed.
	// +kubebuilder:validation:Minimum=0
	Count int32 `json:"count"`
	// UnixMilli is the time, in milliseconds since the Unix epoch.
	// +kubebuilder:validation:Minimum=0
	UnixMilli int64 `json:"unixMilli"`
}
