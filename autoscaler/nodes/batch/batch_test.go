package batch_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
)

// TestBurstBecomesOneWakeUp: triggers closer together than the idle window give one wake-up.
func TestBurstBecomesOneWakeUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := batch.New(batch.Window{Idle: 2 * time.Second, Max: time.Hour})
	go b.Run(ctx)
	for range 5 {
		b.Trigger()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-b.Ready():
	case <-time.After(time.Minute):
		t.Fatal("no wake-up after a burst of triggers")
	}
	select {
	case <-b.Ready():
		t.Fatal("a second wake-up for one burst")
	case <-time.After(500 * time.Millisecond):
	}
}

// TestMaxBoundsTheWindow: triggers that never leave an idle gap still wake up once Max has passed.
func TestMaxBoundsTheWindow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := batch.New(batch.Window{Idle: time.Hour, Max: 100 * time.Millisecond})
	go b.Run(ctx)
	b.Trigger()
	select {
	case <-b.Ready():
	case <-time.After(time.Minute):
		t.Fatal("no wake-up after the max window")
	}
}

// TestRunEndsWithContext: an open window ends when ctx is cancelled, without a wake-up.
func TestRunEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b := batch.New(batch.Window{Idle: time.Hour})
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	b.Trigger()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancel")
	}
}
