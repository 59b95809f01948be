// Package batch gathers bursts of triggers into one wake-up, like Karpenter's provisioning batcher: the first
// trigger opens a window that closes after Idle without a new trigger, or after Max in all, whichever is first.
// A burst of pending pods created one after another then becomes one scale-up decision, not many.
package batch

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Window is the batching window. Idle 0 wakes at the first trigger; Max 0 means no upper bound.
type Window struct {
	Idle time.Duration
	Max  time.Duration
}

// ClosesAt is when a window opened by a trigger at first, last triggered at last, closes.
func (w Window) ClosesAt(first, last time.Time) time.Time {
	at := last.Add(w.Idle)
	if w.Max > 0 && first.Add(w.Max).Before(at) {
		at = first.Add(w.Max)
	}
	return at
}

// Batcher turns triggers into wake-ups. Trigger is safe from any goroutine (informer handlers); Run delivers.
// Trigger notes its time itself, so when a window closes depends only on the triggers' times, never on when Run
// gets to them.
type Batcher struct {
	window Window
	clock  clock.Clock
	kick   chan struct{} // a trigger happened since Run last looked
	ready  chan struct{}

	mu          sync.Mutex
	first, last time.Time // triggers of the open window; zero when none is open
}

// New returns a Batcher on clk (nil: the real clock); Run must be running for Ready to fire.
func New(w Window, clk clock.Clock) *Batcher {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Batcher{window: w, clock: clk, kick: make(chan struct{}, 1), ready: make(chan struct{}, 1)}
}

// Trigger notes that something happened. It never blocks.
func (b *Batcher) Trigger() {
	now := b.clock.Now()
	b.mu.Lock()
	if b.first.IsZero() {
		b.first = now
	}
	b.last = now
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Open reports whether a window is open: triggered, not yet closed.
func (b *Batcher) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.first.IsZero()
}

// Ready receives once per closed window.
func (b *Batcher) Ready() <-chan struct{} { return b.ready }

// Run batches triggers until ctx is cancelled.
func (b *Batcher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
		if !b.wait(ctx) {
			return
		}
		select {
		case b.ready <- struct{}{}:
		default: // a wake-up is already waiting: it covers this window too
		}
	}
}

// wait holds the open window until it closes (true) or ctx ends (false). A kick left over from a window that
// already closed finds no window open and waits for the next trigger.
func (b *Batcher) wait(ctx context.Context) bool {
	for {
		b.mu.Lock()
		if b.first.IsZero() {
			b.mu.Unlock()
			select {
			case <-ctx.Done():
				return false
			case <-b.kick:
				continue
			}
		}
		now, at := b.clock.Now(), b.window.ClosesAt(b.first, b.last)
		if !now.Before(at) {
			b.first, b.last = time.Time{}, time.Time{}
			b.mu.Unlock()
			return ctx.Err() == nil
		}
		b.mu.Unlock()
		t := b.clock.NewTimer(at.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C():
		}
	}
}
