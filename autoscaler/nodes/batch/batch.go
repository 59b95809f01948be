// Package batch gathers bursts of triggers into one wake-up, like Karpenter's provisioning batcher: the first
// trigger opens a window that closes after Idle without a new trigger, or after Max in all, whichever is first.
// A burst of pending pods created one after another then becomes one scale-up decision, not many.
package batch

import (
	"context"
	"time"
)

// Window is the batching window. Idle 0 wakes at the first trigger; Max 0 means no upper bound.
type Window struct {
	Idle time.Duration
	Max  time.Duration
}

// Batcher turns triggers into wake-ups. Trigger is safe from any goroutine (informer handlers); Run delivers.
type Batcher struct {
	window  Window
	trigger chan struct{}
	ready   chan struct{}
}

// New returns a Batcher; Run must be running for Ready to fire.
func New(w Window) *Batcher {
	return &Batcher{window: w, trigger: make(chan struct{}, 1), ready: make(chan struct{}, 1)}
}

// Trigger notes that something happened. It never blocks.
func (b *Batcher) Trigger() {
	select {
	case b.trigger <- struct{}{}:
	default:
	}
}

// Ready receives once per closed window.
func (b *Batcher) Ready() <-chan struct{} { return b.ready }

// Run batches triggers until ctx is cancelled.
func (b *Batcher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.trigger:
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

// wait holds the open window until it closes; false when ctx ends first.
func (b *Batcher) wait(ctx context.Context) bool {
	if b.window.Idle <= 0 {
		return ctx.Err() == nil
	}
	idle := time.NewTimer(b.window.Idle)
	defer idle.Stop()
	var maxC <-chan time.Time
	if b.window.Max > 0 {
		maxT := time.NewTimer(b.window.Max)
		defer maxT.Stop()
		maxC = maxT.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-b.trigger:
			idle.Reset(b.window.Idle)
		case <-idle.C:
			return true
		case <-maxC:
			return true
		}
	}
}
