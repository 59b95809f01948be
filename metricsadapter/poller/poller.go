// Package poller owns the scaler instances of every ScaledObject and ScaledJob, samples them on a schedule and
// keeps the latest samples in a cache. The metrics adapter serves external.metrics.k8s.io from that cache and
// streams its updates to the operator; the operator's in-process mode uses it directly.
//
// # Scheduling
//
// One goroutine keeps a timer heap (container/heap) of every trigger's next due time and hands due triggers to
// a bounded pool of workers (Options.Workers). There is no goroutine per object, so 10,000 objects cost one heap
// entry each. A trigger is never sampled twice at once: while a sample is queued or running, further requests
// for it (a push signal, SampleNow) are coalesced into one more sample right after it. Polls are fixed-rate:
// the next one is due one interval after the previous due time, and slots missed while a sample ran late are
// skipped rather than caught up. The first poll of a new object is jittered over min(interval, 5s) to spread
// the load of many objects created together; an object whose spec changed is sampled at once.
//
// Each sample runs with a timeout of min(Options.SampleTimeout, interval), but at least one second: a source
// slower than its polling interval only delays its own next poll, and sub-second intervals (tests) keep a
// workable timeout.
//
// # useCachedMetrics
//
// Lookup always reads the cache; no request from the HPA ever calls a scaler, and every trigger is polled at its
// object's pollingInterval. In KEDA, useCachedMetrics=false (the default) makes every HPA request (every 15s) query
// the scaler; Tidal does not poll faster than the user asked to emulate that: the load on the event source is
// what pollingInterval says, and a source that can push (PushScaler) wakes its trigger between polls. While a
// push watch is healthy, the poll at pollingInterval is its safety net, never more frequent. useCachedMetrics is
// accepted for KEDA compatibility and has no further effect. ScaledJob triggers are polled the same way.
//
// # Clocks
//
// Options.Now stamps samples (TriggerState.SampledAt) and judges staleness in Lookup. The scheduler runs on the
// runtime's monotonic timers, so moving Options.Now in a test ages the cache without triggering polls.
//
// # Concurrency contract
//
// Every method is safe for concurrent use. Upsert and Delete of the same key must be serialised by the caller
// (a workqueue does this: one worker per key); different keys need no coordination. Values returned by Lookup
// and Snapshot share their Samples and MetricNames slices with the cache: treat them as read-only.
package poller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"
)

const (
	// maxInitialJitter caps how long the first poll of a new object may be delayed.
	maxInitialJitter = 5 * time.Second
	// minSampleTimeout is the floor of the per-sample timeout.
	minSampleTimeout = time.Second
)

// Errors returned by Lookup, SampleNow and Upsert; test with errors.Is.
var (
	// ErrNotFound: no such object, no such metric, or no successful sample yet.
	ErrNotFound = errors.New("not found")
	// ErrStale: the last successful sample is older than StaleAfter; it is returned alongside, never as fresh.
	ErrStale = errors.New("sample is stale")
	// ErrSampleFailed: the latest sample of the trigger failed; the cause is wrapped too.
	ErrSampleFailed = errors.New("latest sample failed")
	// ErrClosed: Run has returned; the Poller takes no more objects.
	ErrClosed = errors.New("poller is closed")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("poller is already running")
)

// Options configures a Poller. Only Registry is required.
type Options struct {
	Registry *scalers.Registry
	Logger   *zap.Logger
	// Now stamps samples and judges staleness; time.Now when nil.
	Now func() time.Time
	// Workers bounds concurrent samples; default 2×GOMAXPROCS.
	Workers int
	// StaleAfter maps a trigger's effective polling interval to the age at which its sample is stale; default
	// 3×interval, at least 30s.
	StaleAfter func(pollingInterval time.Duration) time.Duration
	// SampleTimeout caps one sample; default 10s (see the package doc for how the interval bounds it).
	SampleTimeout time.Duration
	// Metrics, when set, receives the Poller's Prometheus collectors (each Poller has its own).
	Metrics prometheus.Registerer
}

// Poller samples scalers on a schedule and caches the results. Build one with New, start it with Run.
type Poller struct {
	reg        *scalers.Registry
	log        *zap.Logger
	now        func() time.Time
	workers    int
	staleAfter func(time.Duration) time.Duration
	timeout    time.Duration
	metrics    *metrics
	sched      *scheduler
	hub        *Hub

	// maxLag is the largest scheduler lag seen, in nanoseconds (for benchmarks and tests).
	maxLag atomic.Int64

	// objects maps Key to *object. Readers (Lookup) load without locking; writers hold mu, so installing,
	// replacing and deleting stay consistent with closed and runCtx.
	objects sync.Map
	mu      sync.RWMutex
	runCtx  context.Context // Run's ctx, kept as the parent of push watches started by later Upserts
	running bool
	closed  bool
}

// New validates opts and builds a Poller.
func New(opts Options) (*Poller, error) {
	if opts.Registry == nil {
		return nil, errors.New("poller: options: registry is required")
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("poller: options: workers: want >= 0, got %d", opts.Workers)
	}
	if opts.SampleTimeout < 0 {
		return nil, fmt.Errorf("poller: options: sampleTimeout: want >= 0, got %s", opts.SampleTimeout)
	}
	p := &Poller{
		reg:        opts.Registry,
		log:        opts.Logger,
		now:        opts.Now,
		workers:    opts.Workers,
		staleAfter: opts.StaleAfter,
		timeout:    opts.SampleTimeout,
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.workers == 0 {
		p.workers = 2 * runtime.GOMAXPROCS(0)
	}
	if p.staleAfter == nil {
		p.staleAfter = DefaultStaleAfter
	}
	if p.timeout == 0 {
		p.timeout = 10 * time.Second
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("poller: options: metrics: %w", err)
	}
	p.metrics = m
	p.sched = newScheduler()
	p.hub = NewHub(m.coalesced)
	return p, nil
}

// Start builds a Poller and runs it until ctx is done: the in-process sample source of an operator that runs
// without a metrics adapter (cmd/tidal-operator, tests). Errors of Run after a successful start are logged.
func Start(ctx context.Context, opts Options) (*Poller, error) {
	p, err := New(opts)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := p.Run(ctx); err != nil {
			p.log.Error("poller stopped", zap.Error(err))
		}
	}()
	return p, nil
}

// DefaultStaleAfter is 3×interval, at least 30s.
func DefaultStaleAfter(interval time.Duration) time.Duration {
	return max(3*interval, 30*time.Second)
}

// Run starts the workers, the scheduler and the push watches, and blocks until ctx is done. It then waits for
// in-flight samples, closes every scaler and returns nil; the Poller is unusable afterwards. Objects may be
// upserted before Run; they are sampled once it starts.
func (p *Poller) Run(ctx context.Context) error {
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return ErrClosed
	case p.running:
		p.mu.Unlock()
		return ErrRunning
	}
	p.running = true
	p.runCtx = ctx
	p.objects.Range(func(_, v any) bool {
		p.startWatchesLocked(v.(*object))
		return true
	})
	p.mu.Unlock()

	jobs := make(chan *trigger, p.workers)
	var wg sync.WaitGroup
	for range p.workers {
		wg.Go(func() { p.work(ctx, jobs) })
	}
	p.sched.run(ctx, jobs)
	wg.Wait()

	p.mu.Lock()
	p.closed = true
	var objs []*object
	p.objects.Range(func(k, v any) bool {
		objs = append(objs, v.(*object))
		p.objects.Delete(k)
		return true
	})
	p.mu.Unlock()
	p.metrics.objects.Sub(float64(len(objs)))
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, obj := range objs {
		p.stopObject(closeCtx, obj)
	}
	return nil
}

// Upsert installs or replaces an object. With the generation already held it is a no-op returning the build
// errors of that generation. Otherwise it builds a scaler per trigger, schedules them, and stops and closes the
// scalers of the previous generation (waiting for their in-flight samples). A spec error leaves the held object
// untouched and is the only error returned; a trigger whose scaler cannot be built is returned as an error and
// kept as that trigger's Err, while the other triggers run.
func (p *Poller) Upsert(ctx context.Context, spec samples.ObjectSpec) []error {
	if err := validateSpec(&spec); err != nil {
		return []error{err}
	}
	p.mu.RLock()
	old, closed := p.object(spec.Key), p.closed
	p.mu.RUnlock()
	if closed {
		return []error{fmt.Errorf("%s %s: %w", spec.Key.Kind, spec.Key, ErrClosed)}
	}
	if old != nil && old.gen == spec.Generation {
		return cloneErrs(old.buildErrs)
	}

	obj := p.build(ctx, spec)
	// Scheduled before it is visible, so a SampleNow that finds the object finds its triggers scheduled.
	p.schedule(obj, old == nil)
	p.metrics.triggers.Add(float64(len(obj.triggers)))

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.stopObject(ctx, obj)
		return []error{fmt.Errorf("%s %s: %w", spec.Key.Kind, spec.Key, ErrClosed)}
	}
	old = p.object(spec.Key)
	p.objects.Store(spec.Key, obj)
	if p.runCtx != nil {
		p.startWatchesLocked(obj)
	}
	p.mu.Unlock()

	if old == nil {
		p.metrics.objects.Inc()
	} else {
		p.stopObject(ctx, old)
		p.metrics.forgetTriggers(old, obj)
	}
	return cloneErrs(obj.buildErrs)
}

// Delete stops sampling an object, waits for its in-flight samples and push watches (bounded by ctx) and closes
// its scalers, releasing their connections. Deleting an unknown key does nothing.
func (p *Poller) Delete(ctx context.Context, key samples.Key) {
	p.mu.Lock()
	v, found := p.objects.LoadAndDelete(key)
	p.mu.Unlock()
	if !found {
		return
	}
	obj := v.(*object)
	p.metrics.objects.Dec()
	p.stopObject(ctx, obj)
	p.metrics.forgetTriggers(obj, nil)
}

// schedule queues the first poll of every sampled trigger of obj: jittered for a new object, at once for a
// rebuilt one.
func (p *Poller) schedule(obj *object, jitter bool) {
	now := time.Now()
	var window time.Duration
	for _, t := range obj.triggers {
		if t.sampled() && (window == 0 || t.interval < window) {
			window = t.interval
		}
	}
	due := now
	if jitter && window > 0 {
		due = now.Add(rand.N(min(window, maxInitialJitter)))
	}
	for _, t := range obj.triggers {
		if t.sampled() {
			p.sched.add(t, due)
		}
	}
}

// startWatchesLocked starts a watch for every push trigger of obj not yet watched. Caller holds p.mu.
func (p *Poller) startWatchesLocked(obj *object) {
	for _, t := range obj.triggers {
		if t.push == nil || t.watchCancel != nil {
			continue
		}
		ctx, cancel := context.WithCancel(p.runCtx)
		t.watchCancel = cancel
		t.watchDone = make(chan struct{})
		go p.watch(ctx, t)
	}
}

// stopObject unschedules obj's triggers, stops their watches, waits for in-flight samples (bounded by ctx) and
// closes the scalers.
func (p *Poller) stopObject(ctx context.Context, obj *object) {
	for _, t := range obj.triggers {
		p.sched.remove(t)
	}
	p.mu.Lock()
	type watch struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var watches []watch
	for _, t := range obj.triggers {
		if t.watchCancel != nil {
			watches = append(watches, watch{t.watchCancel, t.watchDone})
		}
	}
	p.mu.Unlock()
	for _, w := range watches {
		w.cancel()
	}
	for _, w := range watches {
		select {
		case <-w.done:
		case <-ctx.Done():
		}
	}
	for _, t := range obj.triggers {
		if t.scaler == nil {
			continue
		}
		// Holding the run token keeps workers off the scaler while it closes; a worker that gets the token
		// afterwards sees the trigger removed and leaves the scaler alone.
		acquired := false
		select {
		case t.run <- struct{}{}:
			acquired = true
		case <-ctx.Done():
			t.log.Warn("closing scaler while a sample is still running", zap.Error(ctx.Err()))
		}
		if err := t.scaler.Close(ctx); err != nil {
			t.log.Warn("closing scaler failed", zap.String("error", t.cfg.Redact(err.Error())))
		}
		if acquired {
			<-t.run
		}
	}
	p.metrics.triggers.Sub(float64(len(obj.triggers)))
}

func cloneErrs(errs []error) []error {
	if len(errs) == 0 {
		return nil
	}
	return append([]error(nil), errs...)
}
