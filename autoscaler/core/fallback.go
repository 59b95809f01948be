package core

import "fmt"

// FallbackBehavior is KEDA's fallback.behavior.
type FallbackBehavior string

// Fallback behaviors, as in KEDA.
const (
	// FallbackStatic uses fallback.replicas (the default).
	FallbackStatic FallbackBehavior = "static"
	// FallbackCurrentReplicas keeps the current replica count.
	FallbackCurrentReplicas FallbackBehavior = "currentReplicas"
	// FallbackCurrentReplicasIfHigher uses the current count when it is higher than fallback.replicas.
	FallbackCurrentReplicasIfHigher FallbackBehavior = "currentReplicasIfHigher"
	// FallbackCurrentReplicasIfLower uses the current count when it is lower than fallback.replicas.
	FallbackCurrentReplicasIfLower FallbackBehavior = "currentReplicasIfLower"
)

// Fallback is KEDA's spec.fallback: once a trigger has failed more than FailureThreshold times in a row, it
// proposes the replica count given by Behavior and Replicas instead of a computed one. The proposal then goes
// through the HPA math like any other (largest proposal, min/max, behavior).
type Fallback struct {
	FailureThreshold int32
	Replicas         int32
	Behavior         FallbackBehavior
}

func (f *Fallback) validate() error {
	switch {
	case f.FailureThreshold < 0:
		return fmt.Errorf("fallback.failureThreshold: must not be negative, got %d", f.FailureThreshold)
	case f.Replicas < 0:
		return fmt.Errorf("fallback.replicas: must not be negative, got %d", f.Replicas)
	}
	switch f.Behavior {
	case "", FallbackStatic, FallbackCurrentReplicas, FallbackCurrentReplicasIfHigher, FallbackCurrentReplicasIfLower:
		return nil
	}
	return fmt.Errorf("fallback.behavior: unknown value %q (want static, currentReplicas, currentReplicasIfHigher or currentReplicasIfLower)", f.Behavior)
}

// Triggered reports whether a trigger with this many consecutive failures is in fallback. As in KEDA the count
// must exceed the threshold: with failureThreshold 3 the fourth consecutive failure falls back.
func (f *Fallback) Triggered(consecutiveFailures int32) bool {
	return f != nil && consecutiveFailures > f.FailureThreshold
}

// ReplicasFor returns the replica count a fallback proposes given the current count.
func (f *Fallback) ReplicasFor(current int32) int32 {
	switch f.Behavior {
	case FallbackCurrentReplicas:
		return current
	case FallbackCurrentReplicasIfHigher:
		return max(current, f.Replicas)
	case FallbackCurrentReplicasIfLower:
		return min(current, f.Replicas)
	}
	return f.Replicas
}
