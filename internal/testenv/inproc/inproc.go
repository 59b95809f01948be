// Package inproc runs Tidal's operator and metrics adapter inside a test (or benchmark harness) process, as
// cmd/tidal-operator and cmd/tidal-metrics-adapter run them: Start runs any component until stopped, RunOperator
// and RunAdapter build the component and run it until the test ends (RunOperator with test defaults).
//
// It is a package of its own, not part of internal/testenv, because it imports the poller, whose own tests use
// testenv.
package inproc

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	operatorapp "github.com/tidalscale/tidal/autoscaler/operator/app"
	adapterapp "github.com/tidalscale/tidal/metricsadapter/app"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers/registry"
)

// Start runs run in a goroutine with a context derived from ctx. stop cancels that context and waits for run to
// return; it may be called more than once. onErr, when not nil, gets run's error if it fails before stop.
func Start(ctx context.Context, run func(context.Context) error, onErr func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// RunOperator builds an operator from opts and runs it until the test ends or stop is called (stop waits for it
// to be gone, as a killed process would be). Unset options get test defaults: Registry registry.New(), Logger a
// zaptest logger, Source an in-process poller on that registry that stops with the operator (as cmd/tidal-operator
// does without a metrics adapter). Config, Namespace and WatchNamespace are the caller's (a test on a shared
// cluster sets WatchNamespace to its own namespace).
func RunOperator(t testing.TB, ctx context.Context, opts operatorapp.Options) (op *operatorapp.Operator, stop func()) {
	t.Helper()
	if opts.Registry == nil {
		opts.Registry = registry.New()
	}
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	ctx, cancel := context.WithCancel(ctx)
	if opts.Source == nil {
		p, err := poller.Start(ctx, poller.Options{Registry: opts.Registry, Logger: opts.Logger.Named("poller")})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		opts.Source = p
	}
	op, err := operatorapp.New(opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stopRun := Start(ctx, op.Run, func(err error) { t.Logf("operator stopped: %v", err) })
	stop = func() { cancel(); stopRun() }
	t.Cleanup(stop)
	return op, stop
}

// RunAdapter builds a metrics adapter from opts (as adapterapp.New takes them) and runs it until the test ends
// or stop is called (stop waits for it to be gone).
func RunAdapter(t testing.TB, ctx context.Context, opts adapterapp.Options) (a *adapterapp.Adapter, stop func()) {
	t.Helper()
	a, err := adapterapp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop = Start(ctx, a.Run, func(err error) { t.Logf("metrics adapter stopped: %v", err) })
	t.Cleanup(stop)
	return a, stop
}
