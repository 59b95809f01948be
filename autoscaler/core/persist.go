package core

import (
	"slices"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Persisting the history.
//
// In direct mode the history gains a recommendation on every decision (every sample) inside the stabilization
// windows, and a scale event on every scale. CompactHistory cuts it down to what can still change a decision,
// rounding every doubt towards holding replicas longer, so a compacted history never lets a scale happen earlier
// than the full one would; it may hold a count up to one grain longer:
//   - recommendations inside a window only, and of those only the ones no later recommendation dominates: the
//     running maximum from the newest backwards within the scale-down window (which takes the highest) and,
//     when the scale-up window is not zero, the running minimum within it (which takes the lowest);
//   - recommendation times rounded up to a grain of 1/CompactSlots of the longest window (at least a second),
//     keeping one maximum and one minimum per grain; a later time keeps an entry in its window longer;
//   - scale events inside their direction's longest policy period, merged per grain of that period (changes
//     summed, at the later time).
//
// So a compacted history holds at most MaxRecommendations recommendations and MaxScaleEvents events per
// direction, whatever the sample rate.

// CompactSlots is the number of grains a window is cut into.
const CompactSlots = 15

const (
	// MaxRecommendations bounds the recommendations of a compacted history: a maximum and a minimum for each
	// grain end in (now-window, now+grain].
	MaxRecommendations = 2 * (CompactSlots + 2)
	// MaxScaleEvents bounds the scale events of one direction in a compacted history.
	MaxScaleEvents = CompactSlots + 2
)

// CompactHistory returns the bounded form of h described above, for decisions from now on with behavior b (nil:
// the default rules, as Decide applies them) and cfg (nil: DefaultConfig). h is not modified.
func CompactHistory(h History, b *autoscalingv2.HorizontalPodAutoscalerBehavior, cfg *Config, now time.Time) History {
	c := DefaultConfig()
	if cfg != nil {
		c = *cfg
	}
	b = pacedBehavior(b)
	var up, down scalingRules
	resolveRules(b.ScaleUp, true, c.DownscaleStabilizationWindow, &up)
	resolveRules(b.ScaleDown, false, c.DownscaleStabilizationWindow, &down)
	out := History{Initialized: h.Initialized, ScaledToZero: h.ScaledToZero}
	out.Recommendations = compactRecommendations(h.Recommendations, up.window, down.window, now)
	out.ScaleUpEvents = compactEvents(h.ScaleUpEvents, periodOf(&up), now)
	out.ScaleDownEvents = compactEvents(h.ScaleDownEvents, periodOf(&down), now)
	return out
}

// grain is the rounding step for a window: window/CompactSlots rounded up to a second, at least a second.
func grain(window time.Duration) time.Duration {
	g := (window + CompactSlots - 1) / CompactSlots
	g = (g + time.Second - 1).Truncate(time.Second)
	return max(g, time.Second)
}

// ceilTime rounds t up to a multiple of g since the Unix epoch, at millisecond resolution.
func ceilTime(t time.Time, g time.Duration) time.Time {
	ms, gm := t.UnixMilli(), g.Milliseconds()
	if t.After(time.UnixMilli(ms)) { // sub-millisecond rest
		ms++
	}
	return time.UnixMilli((ms + gm - 1) / gm * gm).UTC()
}

func compactRecommendations(recs []Recommendation, upWindow, downWindow time.Duration, now time.Time) []Recommendation {
	longest := max(upWindow, downWindow)
	if longest <= 0 || len(recs) == 0 {
		return nil
	}
	g := grain(longest)
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b Recommendation) int { return a.Time.Compare(b.Time) })
	var out []Recommendation
	// staircase keeps, from the newest backwards, each grain's extreme that beats every later one.
	staircase := func(window time.Duration, better func(a, b int32) bool) {
		if window <= 0 {
			return
		}
		cutoff := now.Add(-window)
		var kept []Recommendation
		for i := len(sorted) - 1; i >= 0; i-- {
			r := sorted[i]
			if !r.Time.After(cutoff) {
				break
			}
			at := ceilTime(r.Time, g)
			n := len(kept)
			switch {
			case n > 0 && kept[n-1].Time.Equal(at):
				if better(r.Replicas, kept[n-1].Replicas) {
					kept[n-1].Replicas = r.Replicas // still beats every later grain's entry
				}
			case n == 0 || better(r.Replicas, kept[n-1].Replicas):
				kept = append(kept, Recommendation{Replicas: r.Replicas, Time: at})
			}
		}
		out = append(out, kept...)
	}
	staircase(downWindow, func(a, b int32) bool { return a > b })
	staircase(upWindow, func(a, b int32) bool { return a < b })
	slices.SortFunc(out, func(a, b Recommendation) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return int(a.Replicas) - int(b.Replicas)
	})
	return slices.CompactFunc(out, func(a, b Recommendation) bool { return a.Replicas == b.Replicas && a.Time.Equal(b.Time) })
}

// periodOf is the longest policy period of a direction: older events no longer count.
func periodOf(r *scalingRules) time.Duration { return time.Duration(longestPeriod(r)) * time.Second }

func compactEvents(events []ScaleEvent, period time.Duration, now time.Time) []ScaleEvent {
	if period <= 0 || len(events) == 0 {
		return nil
	}
	g := grain(period)
	cutoff := now.Add(-period)
	var out []ScaleEvent
	for _, e := range events {
		if e.Outdated || !e.Time.After(cutoff) {
			continue
		}
		out = append(out, ScaleEvent{Change: e.Change, Time: ceilTime(e.Time, g)})
	}
	slices.SortStableFunc(out, func(a, b ScaleEvent) int { return a.Time.Compare(b.Time) })
	merged := out[:0]
	for _, e := range out {
		if n := len(merged); n > 0 && merged[n-1].Time.Equal(e.Time) {
			merged[n-1].Change = saturatingAdd32(merged[n-1].Change, e.Change)
			continue
		}
		merged = append(merged, e)
	}
	if len(merged) == 0 {
		return nil
	}
	return merged
}

// Equivalent reports whether two compacted histories decide alike once resumed (see Resume): equal but for the
// time of their newest recommendations. A caller persisting a history need not write it again when only that
// time moved, which is what every decision on a steady metric does.
func (h History) Equivalent(o History) bool {
	if h.Initialized != o.Initialized || h.ScaledToZero != o.ScaledToZero ||
		!slices.Equal(h.ScaleUpEvents, o.ScaleUpEvents) || !slices.Equal(h.ScaleDownEvents, o.ScaleDownEvents) ||
		len(h.Recommendations) != len(o.Recommendations) {
		return false
	}
	hn, on := newest(h.Recommendations), newest(o.Recommendations)
	for i, a := range h.Recommendations {
		b := o.Recommendations[i]
		if a.Replicas != b.Replicas {
			return false
		}
		if !a.Time.Equal(b.Time) && !(a.Time.Equal(hn) && b.Time.Equal(on)) {
			return false
		}
	}
	return true
}

// Resume prepares a persisted history for deciding again at now: its newest recommendations are taken as made
// until now. The writer (see Equivalent) wrote the history again whenever anything but their time changed, so
// they were still the latest recommendations when it stopped, at or before now.
func (h History) Resume(now time.Time) History {
	h = h.clone()
	n := newest(h.Recommendations)
	for i := range h.Recommendations {
		if h.Recommendations[i].Time.Equal(n) && n.Before(now) {
			h.Recommendations[i].Time = now
		}
	}
	return h
}

func newest(recs []Recommendation) time.Time {
	var t time.Time
	for _, r := range recs {
		if r.Time.After(t) {
			t = r.Time
		}
	}
	return t
}
