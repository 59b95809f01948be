package coreinput_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/coreinput"
)

var stateNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return stateNow.Add(time.Duration(sec) * time.Second) }

// A history written with the status and read back decides the same: what a restarted operator starts from.
func TestPersistRestoreRoundTrip(t *testing.T) {
	so := scaledObject(0)
	last := metav1.NewTime(at(-40))
	so.Status.LastActiveTime = &last
	s := core.State{HPA: core.History{
		Initialized:     true,
		Recommendations: []core.Recommendation{{Replicas: 8, Time: at(-61)}, {Replicas: 3, Time: at(-30)}, {Replicas: 3, Time: at(-1)}},
		ScaleUpEvents:   []core.ScaleEvent{{Change: 4, Time: at(-9)}},
	}}
	ds, changed := coreinput.PersistState(so, s, stateNow)
	if !changed || ds == nil {
		t.Fatalf("a new history is not written: %v %v", ds, changed)
	}
	want := []tidalv1alpha1.DecisionPoint{{Count: 8, UnixMilli: at(-60).UnixMilli()}, {Count: 3, UnixMilli: stateNow.UnixMilli()}}
	if len(ds.Recommendations) != 2 || ds.Recommendations[0] != want[0] || ds.Recommendations[1] != want[1] {
		t.Fatalf("recommendations: got %+v, want %+v", ds.Recommendations, want)
	}
	if len(ds.ScaleUpEvents) != 1 || ds.ScaleUpEvents[0] != (tidalv1alpha1.DecisionPoint{Count: 4, UnixMilli: at(-9).UnixMilli()}) {
		t.Fatalf("scale-up events: got %+v", ds.ScaleUpEvents)
	}
	so.Status.DecisionState = ds

	restart := at(20)
	got, err := coreinput.RestoreState(so, restart)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastActiveTime == nil || !got.LastActiveTime.Equal(at(-40)) || !got.HPA.Initialized {
		t.Fatalf("restored %+v", got)
	}
	recs := got.HPA.Recommendations
	if len(recs) != 2 || recs[0].Replicas != 8 || !recs[0].Time.Equal(at(-60)) || recs[1].Replicas != 3 || !recs[1].Time.Equal(restart) {
		t.Fatalf("restored recommendations %+v: want 8 at its time and 3 resumed at the restart", recs)
	}
}

// Every decision on a steady metric records a new recommendation; none of them needs a write until the counts
// change.
func TestPersistStateWritesOnlyOnChange(t *testing.T) {
	so := scaledObject(0)
	h := core.History{Initialized: true}
	writes := 0
	for i := 0; i < 600; i++ { // ten minutes of decisions every second, steady at 4
		now := stateNow.Add(time.Duration(i) * time.Second)
		h.Recommendations = append(h.Recommendations, core.Recommendation{Replicas: 4, Time: now})
		if ds, changed := coreinput.PersistState(so, core.State{HPA: h}, now); changed {
			writes++
			so.Status.DecisionState = ds
		}
	}
	if writes != 1 {
		t.Fatalf("%d writes for a steady metric, want 1", writes)
	}
	// A lower recommendation starts a stabilized scale-down: once it is no longer in the 4's grain (20s), the
	// 4's time is fixed and written.
	for i := 600; i < 630; i++ {
		now := stateNow.Add(time.Duration(i) * time.Second)
		h.Recommendations = append(h.Recommendations, core.Recommendation{Replicas: 2, Time: now})
		if ds, changed := coreinput.PersistState(so, core.State{HPA: h}, now); changed {
			if len(ds.Recommendations) != 2 || ds.Recommendations[0].Count != 4 || ds.Recommendations[1].Count != 2 {
				t.Fatalf("after a drop wrote %+v, want the 4 and the 2", ds.Recommendations)
			}
			return
		}
	}
	t.Fatal("a lower recommendation (the start of a stabilized scale-down) is never written")
}

// A noisy metric changes the recommendation on every decision; writes stay bounded by the grain of the window
// (20s for the default 300s), not by the decision rate.
func TestPersistStateNoisyMetricBounded(t *testing.T) {
	so := scaledObject(0)
	h := core.History{Initialized: true}
	writes := 0
	const decisions = 3000 // 10 minutes at 5 decisions a second
	for i := 0; i < decisions; i++ {
		now := stateNow.Add(time.Duration(i) * 200 * time.Millisecond)
		h.Recommendations = append(h.Recommendations, core.Recommendation{Replicas: int32(3 + (i*7)%5), Time: now})
		h = core.CompactHistory(h, nil, nil, now) // the operator's memory need not grow either
		h.Recommendations = append([]core.Recommendation(nil), h.Recommendations...)
		if ds, changed := coreinput.PersistState(so, core.State{HPA: h}, now); changed {
			writes++
			so.Status.DecisionState = ds
		}
	}
	if limit := 1 + 2*600/20; writes > limit {
		t.Fatalf("%d writes in 10 minutes of %d decisions, want at most %d", writes, decisions, limit)
	}
	t.Logf("%d writes for %d decisions", writes, decisions)
}

// A decision state the operator would not have written is ignored: the state falls back to lastActiveTime alone,
// so nothing scales to zero early, and the error names the field.
func TestRestoreStateIgnoresGarbage(t *testing.T) {
	many := make([]tidalv1alpha1.DecisionPoint, 500)
	for i := range many {
		many[i] = tidalv1alpha1.DecisionPoint{Count: 1, UnixMilli: at(-100 + i/10).UnixMilli()}
	}
	cases := []struct {
		name string
		ds   *tidalv1alpha1.DecisionState
		want string
	}{
		{"too many recommendations", &tidalv1alpha1.DecisionState{Initialized: true, Recommendations: many}, "recommendations: 500 entries"},
		{"too many events", &tidalv1alpha1.DecisionState{ScaleDownEvents: many}, "scaleDownEvents: 500 entries"},
		{"negative count", &tidalv1alpha1.DecisionState{Recommendations: []tidalv1alpha1.DecisionPoint{{Count: -3, UnixMilli: at(-1).UnixMilli()}}}, "recommendations[0].count"},
		{"zero change", &tidalv1alpha1.DecisionState{ScaleUpEvents: []tidalv1alpha1.DecisionPoint{{Count: 0, UnixMilli: at(-1).UnixMilli()}}}, "scaleUpEvents[0].count"},
		{"before the epoch", &tidalv1alpha1.DecisionState{Recommendations: []tidalv1alpha1.DecisionPoint{{Count: 3, UnixMilli: -5}}}, "recommendations[0].unixMilli"},
		{"far future", &tidalv1alpha1.DecisionState{Recommendations: []tidalv1alpha1.DecisionPoint{{Count: 90, UnixMilli: at(365 * 24 * 3600).UnixMilli()}}}, "recommendations[0].unixMilli: 2027-03-01T12:00:00Z is more than 10m0s ahead of now"},
		{"out of order", &tidalv1alpha1.DecisionState{Recommendations: []tidalv1alpha1.DecisionPoint{{Count: 3, UnixMilli: at(-1).UnixMilli()}, {Count: 4, UnixMilli: at(-9).UnixMilli()}}}, "recommendations[1].unixMilli: out of order"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			so := scaledObject(0)
			last := metav1.NewTime(at(-10))
			so.Status.LastActiveTime = &last
			so.Status.DecisionState = tc.ds
			s, err := coreinput.RestoreState(so, stateNow)
			if err == nil || !strings.Contains(err.Error(), "status.decisionState: "+tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
			if s.HPA.Initialized || len(s.HPA.Recommendations) > 0 || len(s.HPA.ScaleUpEvents)+len(s.HPA.ScaleDownEvents) > 0 {
				t.Fatalf("garbage restored: %+v", s.HPA)
			}
			if s.LastActiveTime == nil || !s.LastActiveTime.Equal(at(-10)) {
				t.Fatalf("lastActiveTime lost: %v", s.LastActiveTime)
			}
			// The next decision replaces the garbage.
			if ds, changed := coreinput.PersistState(so, s, stateNow); !changed || ds != nil {
				t.Fatalf("garbage not replaced: %+v %v", ds, changed)
			}
		})
	}
}

// The CRD refuses more entries than the API types allow; the operator writes fewer than that.
func TestDecisionStateFitsSchema(t *testing.T) {
	if core.MaxRecommendations > 64 || core.MaxScaleEvents > 32 {
		t.Fatalf("core keeps up to %d recommendations and %d events per direction; the CRD allows 64 and 32", core.MaxRecommendations, core.MaxScaleEvents)
	}
}

// lastActiveTime is refreshed only every few minutes while active: an object whose Active condition is True
// counts as active until the restore, so its cooldown never ends early; once inactive, the time is exact.
func TestRestoreStateLastActive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		active metav1.ConditionStatus
		want   time.Time
	}{
		{"active: until now", metav1.ConditionTrue, stateNow},
		{"inactive: as written", metav1.ConditionFalse, at(-200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			so := scaledObject(0)
			last := metav1.NewTime(at(-200))
			so.Status.LastActiveTime = &last
			so.Status.Conditions = []metav1.Condition{{Type: tidalv1alpha1.ConditionActive, Status: tc.active}}
			s, err := coreinput.RestoreState(so, stateNow)
			if err != nil {
				t.Fatal(err)
			}
			if s.LastActiveTime == nil || !s.LastActiveTime.Equal(tc.want) {
				t.Fatalf("lastActiveTime %v, want %v", s.LastActiveTime, tc.want)
			}
		})
	}
}
