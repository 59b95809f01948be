package core

import (
	"slices"
	"time"
)

// State is everything a ScaledObject decision needs from earlier decisions. The caller owns it: keep
// Decision.NewState after the decided scale has been applied, and pass it back in next time. To persist it (the
// operator keeps it in the ScaledObject status), bound the history with CompactHistory and compare with
// History.Equivalent; restore it with History.Resume.
type State struct {
	// LastActiveTime is the last time a trigger was active (KEDA's status.lastActiveTime). Nil when never.
	LastActiveTime *time.Time `json:"lastActiveTime,omitempty"`
	// Triggers holds the consecutive-failure count per trigger name (KEDA's status.health).
	Triggers []TriggerHealth `json:"triggers,omitempty"`
	// HPA is the horizontal calculator's history (recommendations and scale events).
	HPA History `json:"hpa"`
}

// TriggerHealth counts consecutive failures of one trigger.
type TriggerHealth struct {
	Name                string `json:"name"`
	ConsecutiveFailures int32  `json:"consecutiveFailures"`
}

// History replaces the HPA controller's in-memory per-HPA logs.
type History struct {
	// Initialized is set once the first decision has recorded the initial recommendation. Upstream seeds the
	// recommendation log with the current replica count on the first reconcile, which delays a scale-down by one
	// stabilization window after a controller restart; an Initialized history with no entries skips that.
	Initialized bool `json:"initialized,omitempty"`
	// Recommendations are the unstabilized recommendations, used by stabilization windows.
	Recommendations []Recommendation `json:"recommendations,omitempty"`
	// ScaleUpEvents and ScaleDownEvents are applied scale changes, used by rate policies (behavior only).
	ScaleUpEvents   []ScaleEvent `json:"scaleUpEvents,omitempty"`
	ScaleDownEvents []ScaleEvent `json:"scaleDownEvents,omitempty"`
	// ScaledToZero mirrors the HPA ScaledToZero condition (HPAScaleToZero): the calculator itself scaled the
	// target to zero, so it may scale it back up from zero.
	ScaledToZero bool `json:"scaledToZero,omitempty"`
}

// Recommendation is one unstabilized replica recommendation.
type Recommendation struct {
	Replicas int32     `json:"replicas"`
	Time     time.Time `json:"time"`
}

// ScaleEvent is one applied scale change; Change is the absolute number of replicas added or removed.
type ScaleEvent struct {
	Change   int32     `json:"change"`
	Time     time.Time `json:"time"`
	Outdated bool      `json:"outdated,omitempty"`
}

// clone returns a copy that shares no backing arrays with h, so the caller's State is never modified.
func (h History) clone() History {
	h.Recommendations = slices.Clone(h.Recommendations)
	h.ScaleUpEvents = slices.Clone(h.ScaleUpEvents)
	h.ScaleDownEvents = slices.Clone(h.ScaleDownEvents)
	return h
}

// failures returns the consecutive failure count recorded for a trigger.
func (s *State) failures(name string) int32 {
	for i := range s.Triggers {
		if s.Triggers[i].Name == name {
			return s.Triggers[i].ConsecutiveFailures
		}
	}
	return 0
}
