package provisiontime

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
)

func TestTrackerMeasuresRequestToReady(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var tr Tracker
	// First look: one node already Ready (no sample), nothing measured.
	if e := tr.Observe("g", nil, []Instance{{ID: "old", Ready: true}}, t0); e != nil {
		t.Fatalf("estimate before any measurement: %+v", e)
	}
	tr.Requested("g", 2, t0)
	// a is seen creating, b is only seen once Ready (a fast provider between two loops).
	tr.Observe("g", nil, []Instance{{ID: "old", Ready: true}, {ID: "a", CreatedAt: t0}}, t0.Add(time.Second))
	e := tr.Observe("g", nil, []Instance{
		{ID: "old", Ready: true},
		{ID: "a", Ready: true, ReadyAt: t0.Add(30 * time.Second)},
		{ID: "b", Ready: true, ReadyAt: t0.Add(20 * time.Second)},
	}, t0.Add(40*time.Second))
	if e == nil || e.Samples != 2 {
		t.Fatalf("want 2 samples, got %+v", e)
	}
	// 30s first, then 0.3·20 + 0.7·30 = 27s.
	if e.Estimate.Duration != 27*time.Second || e.Last.Duration != 20*time.Second {
		t.Errorf("estimate %s last %s, want 27s and 20s", e.Estimate.Duration, e.Last.Duration)
	}
	// Seen again: no new sample.
	if e := tr.Observe("g", nil, []Instance{{ID: "a", Ready: true}, {ID: "b", Ready: true}}, t0.Add(50*time.Second)); e.Samples != 2 {
		t.Errorf("re-observed instances sampled again: %d samples", e.Samples)
	}
}

func TestTrackerSeedsFromStatusAndIgnoresUnrequested(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tr := Tracker{MaxAge: time.Minute}
	seed := &v1alpha1.ProvisionTimeEstimate{Estimate: metav1.Duration{Duration: 10 * time.Second}, Samples: 4}
	tr.Observe("g", seed, nil, t0)
	// A node nobody requested through this tracker (someone else grew the group): no sample.
	e := tr.Observe("g", nil, []Instance{{ID: "x", Ready: true, ReadyAt: t0.Add(time.Second)}}, t0.Add(2*time.Second))
	if e.Samples != 4 || e.Estimate.Duration != 10*time.Second {
		t.Fatalf("unrequested node changed the estimate: %+v", e)
	}
	// A request older than MaxAge is dropped, so a later node is not paired with it.
	tr.Requested("g", 1, t0)
	e = tr.Observe("g", nil, []Instance{{ID: "x", Ready: true}, {ID: "y", Ready: true, ReadyAt: t0.Add(2 * time.Minute)}}, t0.Add(2*time.Minute))
	if e.Samples != 4 {
		t.Fatalf("stale request paired: %+v", e)
	}
	tr.Requested("g", 1, t0.Add(3*time.Minute))
	e = tr.Observe("g", nil, []Instance{{ID: "z", Ready: true, ReadyAt: t0.Add(3*time.Minute + 5*time.Second)}}, t0.Add(3*time.Minute+6*time.Second))
	if e.Samples != 5 || e.Last.Duration != 5*time.Second || e.Estimate.Duration != 8500*time.Millisecond {
		t.Fatalf("want 5 samples, last 5s, estimate 8.5s: %+v", e)
	}
}
