package coreinput

import (
	"errors"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
)

// maxFuture is how far ahead of now a persisted time may lie: times are rounded up by at most a grain (1/15 of
// the longest window, at most 4 minutes), plus clock skew between operator replicas. Later times are garbage
// that would hold a scale for as long as they say.
const maxFuture = 10 * time.Minute

// RestoreState rebuilds the state of earlier decisions from the object's status (status.decisionState,
// status.lastActiveTime and the Active condition), ready to decide at now: what an operator starting (or becoming leader) decides with.
// A decision state that is malformed or larger than the operator ever writes is ignored: RestoreState then
// returns the state without it (the HPA math seeds its history with the current count, which holds a
// scale-down for one stabilization window) and an error naming the field, for the caller to log.
func RestoreState(so *tidalv1alpha1.ScaledObject, now time.Time) (core.State, error) {
	var s core.State
	if t := so.Status.LastActiveTime; t != nil {
		at := t.Time
		// While active, the operator refreshes lastActiveTime only every few minutes, and writes it exactly
		// with Active=False when the activity ends: an object last seen active counts as active until now.
		if meta.IsStatusConditionTrue(so.Status.Conditions, tidalv1alpha1.ConditionActive) && at.Before(now) {
			at = now
		}
		s.LastActiveTime = &at
	}
	h, err := decodeHistory(so.Status.DecisionState, now)
	if err != nil {
		return s, fmt.Errorf("status.decisionState: %w", err)
	}
	s.HPA = h.Resume(now)
	return s, nil
}

// PersistState returns the status.decisionState to write for state s after a decision at now, and whether it
// differs from the one in so's status in a way that can change a later decision. When it does not (the usual
// case: every decision on a steady metric only moves the newest recommendation's time), the caller keeps the
// status as it is, so a decision costs no write. Only the HPA history is persisted; lastActiveTime has its own
// status field, and trigger failures are counted again by the sample source.
func PersistState(so *tidalv1alpha1.ScaledObject, s core.State, now time.Time) (*tidalv1alpha1.DecisionState, bool) {
	b := behavior(so)
	next := core.CompactHistory(s.HPA, b, nil, now)
	if prev, err := decodeHistory(so.Status.DecisionState, now); err == nil {
		// Compared as a restore at now would see it: a steady recommendation persisted long ago still counts.
		if core.CompactHistory(prev.Resume(now), b, nil, now).Equivalent(next) {
			return so.Status.DecisionState, false
		}
	}
	return encodeHistory(next), true
}

func behavior(so *tidalv1alpha1.ScaledObject) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	if a := so.Spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil {
		return a.HorizontalPodAutoscalerConfig.Behavior
	}
	return nil
}

func encodeHistory(h core.History) *tidalv1alpha1.DecisionState {
	if !h.Initialized && !h.ScaledToZero && len(h.Recommendations) == 0 && len(h.ScaleUpEvents) == 0 && len(h.ScaleDownEvents) == 0 {
		return nil
	}
	ds := &tidalv1alpha1.DecisionState{Initialized: h.Initialized, ScaledToZero: h.ScaledToZero}
	for _, r := range h.Recommendations {
		ds.Recommendations = append(ds.Recommendations, tidalv1alpha1.DecisionPoint{Count: r.Replicas, UnixMilli: r.Time.UnixMilli()})
	}
	events := func(in []core.ScaleEvent) []tidalv1alpha1.DecisionPoint {
		var out []tidalv1alpha1.DecisionPoint
		for _, e := range in {
			out = append(out, tidalv1alpha1.DecisionPoint{Count: e.Change, UnixMilli: e.Time.UnixMilli()})
		}
		return out
	}
	ds.ScaleUpEvents, ds.ScaleDownEvents = events(h.ScaleUpEvents), events(h.ScaleDownEvents)
	return ds
}

// decodeHistory reads a decision state, refusing anything the operator would not have written: more entries
// than a compacted history holds, negative counts, times before the epoch, out of order or too far ahead.
func decodeHistory(ds *tidalv1alpha1.DecisionState, now time.Time) (core.History, error) {
	if ds == nil {
		return core.History{}, nil
	}
	h := core.History{Initialized: ds.Initialized, ScaledToZero: ds.ScaledToZero}
	recs, err := points("recommendations", ds.Recommendations, core.MaxRecommendations, 0, now)
	if err != nil {
		return core.History{}, err
	}
	for _, p := range recs {
		h.Recommendations = append(h.Recommendations, core.Recommendation{Replicas: p.count, Time: p.at})
	}
	for _, dir := range []struct {
		field string
		in    []tidalv1alpha1.DecisionPoint
		out   *[]core.ScaleEvent
	}{{"scaleUpEvents", ds.ScaleUpEvents, &h.ScaleUpEvents}, {"scaleDownEvents", ds.ScaleDownEvents, &h.ScaleDownEvents}} {
		ps, err := points(dir.field, dir.in, core.MaxScaleEvents, 1, now)
		if err != nil {
			return core.History{}, err
		}
		for _, p := range ps {
			*dir.out = append(*dir.out, core.ScaleEvent{Change: p.count, Time: p.at})
		}
	}
	return h, nil
}

type point struct {
	count int32
	at    time.Time
}

func points(field string, in []tidalv1alpha1.DecisionPoint, maxLen int, minCount int32, now time.Time) ([]point, error) {
	if len(in) > maxLen {
		return nil, fmt.Errorf("%s: %d entries, want at most %d", field, len(in), maxLen)
	}
	out := make([]point, 0, len(in))
	var errs []error
	for i, p := range in {
		at := time.UnixMilli(p.UnixMilli).UTC()
		switch {
		case p.Count < minCount:
			errs = append(errs, fmt.Errorf("%s[%d].count: want at least %d, got %d", field, i, minCount, p.Count))
		case p.UnixMilli <= 0:
			errs = append(errs, fmt.Errorf("%s[%d].unixMilli: want a time after the epoch, got %d", field, i, p.UnixMilli))
		case at.After(now.Add(maxFuture)):
			errs = append(errs, fmt.Errorf("%s[%d].unixMilli: %s is more than %s ahead of now", field, i, at.Format(time.RFC3339), maxFuture))
		case i > 0 && p.UnixMilli < in[i-1].UnixMilli:
			errs = append(errs, fmt.Errorf("%s[%d].unixMilli: out of order", field, i))
		}
		out = append(out, point{count: p.Count, at: at})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
