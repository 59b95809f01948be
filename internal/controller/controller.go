// Package controller is Tidal's one controller runtime: informer event handlers enqueue keys, a rate-limited
// workqueue de-duplicates them, and N workers call Reconcile(ctx, key) with the retry rules of
// kubernetes/sample-controller decided in one place: Done always, Forget on success, AddRateLimited on error,
// AddAfter when the result asks for a requeue.
package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Result tells the runner what to do with a key that reconciled without error.
type Result struct {
	// RequeueAfter, when positive, reconciles the key again after this long.
	RequeueAfter time.Duration
}

// ReconcileFunc reconciles the object named by key ("namespace/name"). It must be idempotent: it re-reads the
// object from a lister. A permanent problem is reported (event, status) and returns nil; a transient one returns
// the error, and the key is retried with back-off.
type ReconcileFunc func(ctx context.Context, key string) (Result, error)

// Options configure a Runner. Name and Reconcile are required.
type Options struct {
	// Name names the queue, the metrics label and the logger ("scaledobjects").
	Name string
	// Kind is the object kind for metrics and the logger key of each reconcile ("ScaledObject").
	Kind string
	// Reconcile is called for each key.
	Reconcile ReconcileFunc
	// Synced are the informers to wait for before the first reconcile.
	Synced []cache.InformerSynced
	Logger *zap.Logger
	// Metrics, when set, records reconciles and queue depth.
	Metrics *Metrics
	// RateLimiter overrides workqueue.DefaultTypedControllerRateLimiter.
	RateLimiter workqueue.TypedRateLimiter[string]
}

// Runner runs one reconciler over one queue.
type Runner struct {
	opts   Options
	log    *zap.Logger
	logKey string
	queue  workqueue.TypedRateLimitingInterface[string]
}

// New builds a Runner; register Handler (or call Enqueue) to feed it, then Run it.
func New(opts Options) (*Runner, error) {
	switch {
	case opts.Name == "":
		return nil, errors.New("controller: options: name is required")
	case opts.Reconcile == nil:
		return nil, fmt.Errorf("controller %s: options: reconcile is required", opts.Name)
	}
	if opts.Kind == "" {
		opts.Kind = opts.Name
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = workqueue.DefaultTypedControllerRateLimiter[string]()
	}
	return &Runner{
		opts:   opts,
		log:    opts.Logger,
		logKey: lowerFirst(opts.Kind),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter,
			workqueue.TypedRateLimitingQueueConfig[string]{Name: opts.Name}),
	}, nil
}

// Enqueue adds key to the queue (duplicates of a waiting key collapse into one).
func (r *Runner) Enqueue(key string) { r.queue.Add(key) }

// EnqueueAfter adds key after d.
func (r *Runner) EnqueueAfter(key string, d time.Duration) { r.queue.AddAfter(key, d) }

// EnqueueObject enqueues an informer object (or a DeletedFinalStateUnknown tombstone) by its namespace/name.
func (r *Runner) EnqueueObject(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		r.log.Warn("cannot key object", zap.String("controller", r.opts.Name), zap.Error(err))
		return
	}
	r.queue.Add(key)
}

// EnqueueAll enqueues every key in store: after a change that may concern all objects, such as a shard
// membership change.
func (r *Runner) EnqueueAll(store cache.Store) {
	for _, key := range store.ListKeys() {
		r.queue.Add(key)
	}
}

// Handler enqueues the object of every add, update and delete.
func (r *Runner) Handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    r.EnqueueObject,
		UpdateFunc: func(_, obj any) { r.EnqueueObject(obj) },
		DeleteFunc: r.EnqueueObject,
	}
}

// Len is the number of keys waiting.
func (r *Runner) Len() int { return r.queue.Len() }

// Run waits for the informers to sync, then runs workers until ctx is done; it shuts the queue down and waits
// for in-flight reconciles before returning.
func (r *Runner) Run(ctx context.Context, workers int) error {
	defer runtime.HandleCrashWithContext(ctx)
	defer r.queue.ShutDown()
	if len(r.opts.Synced) > 0 && !cache.WaitForCacheSync(ctx.Done(), r.opts.Synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("controller %s: informers did not sync", r.opts.Name)
	}
	workers = max(workers, 1)
	r.log.Info("controller started", zap.String("controller", r.opts.Name), zap.Int("workers", workers))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for r.processNextWorkItem(ctx) {
				}
			}, time.Second)
		})
	}
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
	return nil
}

// processNextWorkItem is the single place retries are decided.
func (r *Runner) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(key)
	log := r.log.With(zap.String(r.logKey, key))
	start := time.Now()
	res, err := r.opts.Reconcile(WithLogger(ctx, log), key)
	r.opts.Metrics.observe(r.opts.Kind, r.opts.Name, time.Since(start), err, r.queue.Len())
	if err != nil {
		log.Warn("reconcile failed, retrying", zap.Error(err))
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	if res.RequeueAfter > 0 {
		r.queue.AddAfter(key, res.RequeueAfter)
	}
	return true
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+('a'-'A')) + s[1:]
}
