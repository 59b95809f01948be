package core

import "time"

// DefaultCooldownPeriod is KEDA's default cooldownPeriod.
const DefaultCooldownPeriod = 300 * time.Second

// activationInput is what KEDA's scale executor looks at for the 0 <-> 1 (or idle <-> min) part of a decision.
type activationInput struct {
	current, minReplicas  int32
	idle                  *int32
	active, failing       bool
	cooldown, initialCool time.Duration
	createdAt             time.Time
	lastActive            *time.Time
	now                   time.Time
}

// activationStep says what happens next: a fixed count, or the HPA math.
type activationStep struct {
	replicas int32 // meaningful when !useHPA
	useHPA   bool
	reason   Reason
}

// activate reproduces KEDA's ScaledObject executor (RequestScale) for one decision. Differences, by design:
// errors never lead to zero or idle (KEDA also holds when a trigger fails without fallback, and with fallback it
// defers to the HPA), and a target sitting at its idle count stays there instead of being left to an HPA whose
// minimum is above it.
func activate(in activationInput) activationStep {
	if in.active {
		if (in.idle != nil && in.current < in.minReplicas) || in.current == 0 {
			return activationStep{replicas: max(in.minReplicas, 1), reason: ReasonActivated}
		}
		return activationStep{useHPA: true, reason: ReasonHPA}
	}
	switch {
	case in.failing:
		if in.current == 0 {
			// The HPA does not act on a target at zero; neither does fallback in KEDA.
			return activationStep{replicas: 0, reason: ReasonTriggerError}
		}
		return activationStep{useHPA: true, reason: ReasonTriggerError}
	case (in.idle != nil && in.current > *in.idle) || (in.current > 0 && in.minReplicas == 0):
		if !in.createdAt.Add(in.initialCool).Before(in.now) {
			return activationStep{useHPA: true, reason: ReasonInitialCooldown}
		}
		if in.lastActive != nil && !in.lastActive.Add(in.cooldown).Before(in.now) {
			return activationStep{useHPA: true, reason: ReasonCooldown}
		}
		if in.idle != nil {
			return activationStep{replicas: *in.idle, reason: ReasonScaleToIdle}
		}
		return activationStep{replicas: 0, reason: ReasonScaleToZero}
	case in.current < in.minReplicas && in.idle == nil:
		return activationStep{replicas: in.minReplicas, reason: ReasonScaleToMin}
	case in.current == 0 || (in.idle != nil && in.current == *in.idle):
		return activationStep{replicas: in.current, reason: ReasonInactive}
	}
	return activationStep{useHPA: true, reason: ReasonHPA}
}
