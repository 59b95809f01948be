package v1alpha1

// Condition types of ScaledObject and ScaledJob status, as in KEDA.
const (
	// ConditionReady is True when the object is valid and its triggers and target are reachable.
	ConditionReady = "Ready"
	// ConditionActive is True when at least one trigger is active (the target is scaled above zero/idle).
	ConditionActive = "Active"
	// ConditionFallback is True when fallback replicas are in effect because triggers keep failing.
	ConditionFallback = "Fallback"
	// ConditionPaused is True when autoscaling is paused by annotation.
	ConditionPaused = "Paused"
	// ConditionPlacement is True when a placement is set, saying which and where it came from (spec.placement or
	// the workload's tidal.dev/placement annotations), and False when the annotations are invalid. Absent when
	// neither is set.
	ConditionPlacement = "Placement"
)

// Condition types of NodeGroup status.
const (
	// NodeGroupConditionReady is True when the provider accepted the group and its nodes can be created.
	NodeGroupConditionReady = "Ready"
	// NodeGroupConditionBackoff is True while scale-up of the group is suspended after failures.
	NodeGroupConditionBackoff = "Backoff"
)

// Annotations that pause autoscaling of a ScaledObject or ScaledJob. The KEDA spellings are listed so that a
// converted manifest keeps its meaning; the operator honours both.
const (
	// PausedAnnotation set to "true" freezes the target at its current replica count.
	PausedAnnotation = "autoscaling.tidal.dev/paused"
	// PausedReplicasAnnotation scales the target to the given count and freezes it there.
	PausedReplicasAnnotation = "autoscaling.tidal.dev/paused-replicas"
	// PausedScaleInAnnotation set to "true" forbids scaling in.
	PausedScaleInAnnotation = "autoscaling.tidal.dev/paused-scale-in"
	// PausedScaleOutAnnotation set to "true" forbids scaling out.
	PausedScaleOutAnnotation = "autoscaling.tidal.dev/paused-scale-out"

	KEDAPausedAnnotation         = "autoscaling.keda.sh/paused"
	KEDAPausedReplicasAnnotation = "autoscaling.keda.sh/paused-replicas"
	KEDAPausedScaleInAnnotation  = "autoscaling.keda.sh/paused-scale-in"
	KEDAPausedScaleOutAnnotation = "autoscaling.keda.sh/paused-scale-out"
)
