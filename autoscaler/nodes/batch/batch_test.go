package batch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
)

func TestClosesAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }
	for _, tc := range []struct {
		name        string
		window      batch.Window
		first, last time.Time
		want        time.Time
	}{
		{name: "idle after the last trigger", window: batch.Window{Idle: time.Second, Max: 10 * time.Second}, first: s(0), last: s(3), want: s(4)},
		{name: "max bounds a window that keeps being triggered", window: batch.Window{Idle: time.Second, Max: 10 * time.Second}, first: s(0), last: s(9.5), want: s(10)},
		{name: "max 0: no bound", window: batch.Window{Idle: time.Second}, first: s(0), last: s(60), want: s(61)},
		{name: "idle 0: at once", window: batch.Window{Max: 10 * time.Second}, first: s(0), last: s(2), want: s(2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.window.ClosesAt(tc.first, tc.last); !got.Equal(tc.want) {
				t.Errorf("ClosesAt = %s after the first trigger, want %s", got.Sub(t0), tc.want.Sub(t0))
			}
		})
	}
}

// fixture runs a Batcher on a fake clock.
type fixture struct {
	t     *testing.T
	clock *clocktesting.FakeClock
	b     *batch.Batcher
}

func start(t *testing.T, w batch.Window) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	f.b = batch.New(w, f.clock)
	done := make(chan struct{})
	go func() { f.b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// armed waits until Run waits on its timer (after a trigger, or after a timer that fired early re-arms).
func (f *fixture) armed() {
	f.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !f.clock.HasWaiters() {
		if time.Now().After(deadline) {
			f.t.Fatal("the batcher never armed its timer")
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fixture) wantWake(what string) {
	f.t.Helper()
	select {
	case <-f.b.Ready():
	case <-time.After(time.Minute):
		f.t.Fatalf("%s: no wake-up", what)
	}
}

func (f *fixture) wantNoWake(what string) {
	f.t.Helper()
	select {
	case <-f.b.Ready():
		f.t.Fatalf("%s: woke up", what)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestIdleWindowExtendsWithEachTrigger: each trigger pushes the close Idle later; the window closes once Idle
// passes without one, as a single wake-up.
func TestIdleWindowExtendsWithEachTrigger(t *testing.T) {
	f := start(t, batch.Window{Idle: time.Second, Max: 10 * time.Second})
	f.b.Trigger()
	f.armed()
	for i := range 5 {
		f.clock.Step(900 * time.Millisecond)
		f.b.Trigger()
		f.armed()
		f.wantNoWake(fmt.Sprintf("a trigger every 0.9 s, trigger %d", i+2))
	}
	f.clock.Step(999 * time.Millisecond)
	f.armed()
	f.wantNoWake("0.999 s after the last trigger")
	f.clock.Step(time.Millisecond)
	f.wantWake("1 s after the last trigger")
	f.wantNoWake("after the wake-up, with no new trigger")
}

// TestMaxBoundsTheWindow: triggers that never leave an idle gap still close the window at Max after the first.
func TestMaxBoundsTheWindow(t *testing.T) {
	f := start(t, batch.Window{Idle: time.Second, Max: 3 * time.Second})
	f.b.Trigger()
	f.armed()
	for range 5 {
		f.clock.Step(500 * time.Millisecond)
		f.b.Trigger()
		f.armed()
	}
	f.wantNoWake("2.5 s of triggers")
	f.clock.Step(500 * time.Millisecond)
	f.wantWake("3 s after the first trigger")
}

// TestNextWindowAfterAWakeUp: a trigger after a wake-up opens a new window, timed from that trigger.
func TestNextWindowAfterAWakeUp(t *testing.T) {
	f := start(t, batch.Window{Idle: time.Second, Max: 10 * time.Second})
	if f.b.Open() {
		t.Fatal("open before any trigger")
	}
	f.b.Trigger()
	if !f.b.Open() {
		t.Fatal("not open after a trigger")
	}
	f.armed()
	f.clock.Step(time.Second)
	f.wantWake("first window")
	if f.b.Open() {
		t.Fatal("still open after the wake-up")
	}
	f.clock.Step(time.Minute)
	f.b.Trigger()
	f.armed()
	f.wantNoWake("second window, just opened")
	f.clock.Step(time.Second)
	f.wantWake("second window")
}

// TestIdleZeroWakesAtOnce: Idle 0 wakes at the first trigger, with no timer.
func TestIdleZeroWakesAtOnce(t *testing.T) {
	f := start(t, batch.Window{})
	f.b.Trigger()
	f.wantWake("idle 0")
}

// TestRunEndsWithContext: an open window ends when ctx is cancelled, without a wake-up.
func TestRunEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b := batch.New(batch.Window{Idle: time.Hour}, nil)
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	b.Trigger()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancel")
	}
	select {
	case <-b.Ready():
		t.Fatal("a wake-up for a cancelled window")
	default:
	}
}
