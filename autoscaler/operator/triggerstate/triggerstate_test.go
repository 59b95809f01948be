package triggerstate_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidalscale/tidal/autoscaler/operator/triggerstate"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/registry"
)

var key = samples.Key{Kind: samples.KindScaledJob, Namespace: "ns", Name: "orders"}

// resolution is what one Resolve call answers: the secret a store returned, when it is due again, and the error.
type resolution struct {
	secret    string
	refreshAt time.Time
	err       error
	badCron   bool // a trigger the source cannot build
}

// harness runs Ensure against the real in-process poller (not started: nothing is sampled), counting what the
// controller would see.
type harness struct {
	t      *testing.T
	mu     sync.Mutex
	st     triggerstate.State
	src    *poller.Poller
	next   resolution
	calls  int
	resets int
	events []string
}

func newHarness(t *testing.T) *harness {
	p, err := poller.New(poller.Options{Registry: registry.New()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Delete(context.Background(), key) })
	return &harness{t: t, src: p}
}

func (h *harness) ensure(generation int64, now time.Time) []error {
	return h.st.Ensure(h.t.Context(), triggerstate.Registration{
		Lock: &h.mu, Generation: generation, Now: now, Source: h.src,
		Resolve: func(context.Context) (samples.ObjectSpec, error) {
			h.calls++
			md := map[string]string{"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "3"}
			if h.next.badCron {
				md["desiredReplicas"] = "zero"
			}
			return samples.ObjectSpec{Key: key, Generation: generation, PollingInterval: 30 * time.Second,
				RefreshAt: h.next.refreshAt,
				Triggers:  []scalers.TriggerConfig{{Type: "cron", Metadata: md, AuthParams: map[string]string{"token": h.next.secret}}},
			}, h.next.err
		},
		Event: func(reason, _ string) { h.events = append(h.events, reason) },
		Reset: func() { h.resets++ },
	})
}

func (h *harness) registered() bool { return len(h.src.MetricSpecs(key)) > 0 }

func TestEnsureFollowsGenerationAndSecretStoreRefresh(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	storeDown := &triggers.DegradedError{Err: errors.New("spec.secretTargetRef[0]: vault: connection refused")}

	h.next = resolution{secret: "a", refreshAt: t0.Add(time.Minute)}
	if errs := h.ensure(1, t0); len(errs) != 0 || !h.registered() || h.st.Generation != 1 {
		t.Fatalf("first registration: errs %v, registered %v, generation %d", errs, h.registered(), h.st.Generation)
	}
	if got := h.st.RetryAfter(t0.Add(20 * time.Second)); got != 40*time.Second {
		t.Fatalf("RetryAfter before the refresh: got %s, want 40s", got)
	}

	h.ensure(1, t0.Add(59*time.Second))
	if h.calls != 1 {
		t.Fatalf("resolved %d times before refreshAt, want once", h.calls)
	}

	// The store cannot be read: its last values stay in use, reported once, and nothing is rebuilt.
	h.next = resolution{secret: "a", refreshAt: t0.Add(2 * time.Minute), err: storeDown}
	h.ensure(1, t0.Add(time.Minute))
	h.ensure(1, t0.Add(2*time.Minute))
	if h.calls != 3 || h.resets != 0 || !h.registered() || h.st.Degraded == nil {
		t.Fatalf("degraded refreshes: calls %d, resets %d, registered %v, degraded %v", h.calls, h.resets, h.registered(), h.st.Degraded)
	}
	if want := []string{triggerstate.ReasonSecretStoreDegraded}; !slices.Equal(h.events, want) {
		t.Fatalf("events: got %v, want %v", h.events, want)
	}

	// A rotated secret rebuilds the scalers.
	h.next = resolution{secret: "b", refreshAt: t0.Add(3 * time.Minute)}
	h.ensure(1, t0.Add(2*time.Minute+time.Second))
	if h.resets != 1 || !h.registered() || h.st.Degraded != nil {
		t.Fatalf("rotation: resets %d, registered %v, degraded %v", h.resets, h.registered(), h.st.Degraded)
	}

	// Values expired without a successful read: the scalers go and the error is every trigger's.
	expired := errors.New("spec.secretTargetRef[0]: vault: connection refused")
	h.next = resolution{err: expired}
	h.ensure(1, t0.Add(3*time.Minute))
	if h.resets != 2 || h.registered() || h.st.Generation != 0 || !errors.Is(h.st.Err(), expired) {
		t.Fatalf("expiry: resets %d, registered %v, generation %d, err %v", h.resets, h.registered(), h.st.Generation, h.st.Err())
	}
	if got := h.st.RetryAfter(t0.Add(3 * time.Minute)); got != triggerstate.RetryBuildErrors {
		t.Fatalf("RetryAfter after a failed resolution: got %s, want %s", got, triggerstate.RetryBuildErrors)
	}

	// A new generation whose trigger cannot be built: the build error is returned and remembered.
	h.next = resolution{secret: "b", badCron: true}
	errs := h.ensure(2, t0.Add(4*time.Minute))
	if len(errs) != 1 || h.st.Err() == nil || h.st.Generation != 2 || !h.st.RefreshAt.IsZero() {
		t.Fatalf("build error: errs %v, err %v, generation %d, refreshAt %s", errs, h.st.Err(), h.st.Generation, h.st.RefreshAt)
	}
	h.ensure(2, t0.Add(time.Hour))
	if h.calls != 6 {
		t.Fatalf("resolved %d times, want 6: a generation without secret-store values is resolved once", h.calls)
	}
}

func TestDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name                string
		st                  triggerstate.State
		generation          int64
		now                 time.Time
		wantDue, refreshing bool
	}{
		{name: "nothing registered", generation: 1, now: t0, wantDue: true},
		{name: "new generation", st: triggerstate.State{Generation: 1}, generation: 2, now: t0, wantDue: true},
		{name: "registered, no refresh", st: triggerstate.State{Generation: 1}, generation: 1, now: t0, refreshing: true},
		{name: "refresh not yet due", st: triggerstate.State{Generation: 1, RefreshAt: t0.Add(time.Second)}, generation: 1, now: t0, refreshing: true},
		{name: "refresh due", st: triggerstate.State{Generation: 1, RefreshAt: t0}, generation: 1, now: t0, wantDue: true, refreshing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, refreshing := tc.st.Due(tc.generation, tc.now)
			if due != tc.wantDue || refreshing != tc.refreshing {
				t.Fatalf("Due: got (%v, %v), want (%v, %v)", due, refreshing, tc.wantDue, tc.refreshing)
			}
		})
	}
}
