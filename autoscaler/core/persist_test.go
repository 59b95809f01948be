package core

import (
	"math/rand/v2"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

// windowBehavior sets both stabilization windows (seconds).
func windowBehavior(up, down int32) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(up)},
		ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(down)},
	}
}

// extreme is what a stabilization window sees at t: the highest (down) or lowest (up) recommendation made after
// t-window; ok is false when there is none.
func extreme(recs []Recommendation, window time.Duration, t time.Time, highest bool) (v int32, ok bool) {
	for _, r := range recs {
		if !r.Time.After(t.Add(-window)) {
			continue
		}
		if !ok || (highest && r.Replicas > v) || (!highest && r.Replicas < v) {
			v, ok = r.Replicas, true
		}
	}
	return v, ok
}

func TestCompactHistory(t *testing.T) {
	sec := func(s int) time.Time { return testNow.Add(time.Duration(s) * time.Second) }
	cases := []struct {
		name     string
		behavior *autoscalingv2.HorizontalPodAutoscalerBehavior
		recs     []Recommendation
		want     []Recommendation
	}{
		{
			name: "a steady metric keeps one recommendation, at its newest time rounded up to the grain (300s/15)",
			recs: []Recommendation{{5, sec(-250)}, {5, sec(-120)}, {5, sec(-1)}},
			want: []Recommendation{{5, sec(0)}},
		},
		{
			name: "after a drop the higher count stays until its window ends",
			recs: []Recommendation{{8, sec(-100)}, {8, sec(-41)}, {3, sec(-30)}, {3, sec(-5)}},
			want: []Recommendation{{8, sec(-40)}, {3, sec(0)}},
		},
		{
			name: "expired recommendations go",
			recs: []Recommendation{{9, sec(-300)}, {8, sec(-299)}, {3, sec(-5)}},
			want: []Recommendation{{8, sec(-280)}, {3, sec(0)}},
		},
		{
			name: "one maximum per grain",
			recs: []Recommendation{{4, sec(-39)}, {7, sec(-38)}, {6, sec(-25)}, {2, sec(-21)}},
			want: []Recommendation{{7, sec(-20)}},
		},
		{
			name:     "a scale-up window keeps the running minimum too",
			behavior: windowBehavior(60, 120),
			recs:     []Recommendation{{2, sec(-200)}, {3, sec(-55)}, {9, sec(-50)}, {4, sec(-30)}, {6, sec(-3)}},
			want:     []Recommendation{{3, sec(-48)}, {9, sec(-48)}, {4, sec(-24)}, {6, sec(0)}},
		},
		{
			name:     "no windows keep nothing",
			behavior: windowBehavior(0, 0),
			recs:     []Recommendation{{4, sec(-1)}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := History{Initialized: true, Recommendations: tc.recs}
			got := CompactHistory(in, tc.behavior, nil, testNow)
			if !got.Initialized {
				t.Error("Initialized lost")
			}
			if len(got.Recommendations) != len(tc.want) {
				t.Fatalf("got %v, want %v", got.Recommendations, tc.want)
			}
			for i := range tc.want {
				if got.Recommendations[i].Replicas != tc.want[i].Replicas || !got.Recommendations[i].Time.Equal(tc.want[i].Time) {
					t.Fatalf("got %v, want %v", got.Recommendations, tc.want)
				}
			}
		})
	}
}

// However many and however noisy the recommendations, the compacted history is bounded, and every window sees in
// it a count at least as far from scaling as in the full history (never earlier), and no further than the full
// history one grain before (at most a grain later).
func TestCompactHistoryBoundedAndConservative(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range []*autoscalingv2.HorizontalPodAutoscalerBehavior{nil, windowBehavior(30, 300), windowBehavior(120, 45)} {
		var up, down scalingRules
		resolveRules(pacedBehavior(b).ScaleUp, true, 5*time.Minute, &up)
		resolveRules(pacedBehavior(b).ScaleDown, false, 5*time.Minute, &down)
		g := grain(max(up.window, down.window))
		for round := 0; round < 50; round++ {
			var recs []Recommendation
			at := testNow.Add(-10 * time.Minute)
			for at.Before(testNow) {
				recs = append(recs, Recommendation{Replicas: rng.Int32N(40), Time: at})
				at = at.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
			}
			c := CompactHistory(History{Recommendations: recs}, b, nil, testNow)
			if n := len(c.Recommendations); n > MaxRecommendations {
				t.Fatalf("%d recommendations kept, want at most %d", n, MaxRecommendations)
			}
			for ts := testNow; ts.Before(testNow.Add(6 * time.Minute)); ts = ts.Add(700 * time.Millisecond) {
				for _, w := range []struct {
					window  time.Duration
					highest bool
				}{{down.window, true}, {up.window, false}} {
					if w.window == 0 {
						continue
					}
					full, okFull := extreme(recs, w.window, ts, w.highest)
					comp, okComp := extreme(c.Recommendations, w.window, ts, w.highest)
					if okFull && (!okComp || (w.highest && comp < full) || (!w.highest && comp > full)) {
						t.Fatalf("window %s at %s: compacted sees %d (%v), full %d: would scale early", w.window, ts.Sub(testNow), comp, okComp, full)
					}
					late, okLate := extreme(recs, w.window, ts.Add(-g), w.highest)
					if okComp && (!okLate || (w.highest && comp > late) || (!w.highest && comp < late)) {
						t.Fatalf("window %s at %s: compacted sees %d, full a grain earlier %d (%v): holds more than a grain", w.window, ts.Sub(testNow), comp, late, okLate)
					}
				}
			}
		}
	}
}

func TestCompactScaleEvents(t *testing.T) {
	var events []ScaleEvent
	for i := 0; i < 200; i++ { // a scale every 100ms over the last 20s, one of them already reused
		events = append(events, ScaleEvent{Change: 1, Time: testNow.Add(-20*time.Second + time.Duration(i)*100*time.Millisecond)})
	}
	events[150].Outdated = true
	c := CompactHistory(History{ScaleUpEvents: events}, nil, nil, testNow)
	if n := len(c.ScaleUpEvents); n > MaxScaleEvents || n == 0 {
		t.Fatalf("%d events kept, want 1..%d", n, MaxScaleEvents)
	}
	// Default scale-up policies count the last 15s: the sum is kept, never less, at times no earlier.
	for ts := testNow; ts.Before(testNow.Add(20 * time.Second)); ts = ts.Add(250 * time.Millisecond) {
		full := replicasChangePerPeriod(15, events, ts)
		comp := replicasChangePerPeriod(15, c.ScaleUpEvents, ts)
		if comp < full-1 { // the outdated event is not counted by the compacted history
			t.Fatalf("at %s: compacted counts %d, full %d", ts.Sub(testNow), comp, full)
		}
	}
}

func TestEquivalentAndResume(t *testing.T) {
	a := History{Initialized: true, Recommendations: []Recommendation{{8, testNow.Add(-time.Minute)}, {3, testNow}}}
	b := History{Initialized: true, Recommendations: []Recommendation{{8, testNow.Add(-time.Minute)}, {3, testNow.Add(time.Minute)}}}
	if !a.Equivalent(b) {
		t.Error("histories differing only in the newest recommendation's time are not equivalent")
	}
	b.Recommendations[0].Time = testNow.Add(-30 * time.Second)
	if a.Equivalent(b) {
		t.Error("histories differing in an older recommendation's time are equivalent")
	}
	b = History{Initialized: true, Recommendations: []Recommendation{{8, testNow.Add(-time.Minute)}, {4, testNow}}}
	if a.Equivalent(b) {
		t.Error("histories differing in a count are equivalent")
	}
	later := testNow.Add(2 * time.Minute)
	r := a.Resume(later)
	if !r.Recommendations[1].Time.Equal(later) || !r.Recommendations[0].Time.Equal(testNow.Add(-time.Minute)) {
		t.Errorf("Resume: got %v, want the newest recommendation moved to now", r.Recommendations)
	}
	if !a.Recommendations[1].Time.Equal(testNow) {
		t.Error("Resume modified its receiver")
	}
}
