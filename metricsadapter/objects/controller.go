// Package objects keeps the metrics adapter's poller in line with the cluster's ScaledObjects and ScaledJobs
// (one Controller per kind): an informer enqueues keys, and Reconcile builds each object's samples.ObjectSpec
// (auth and environment resolved) and upserts it when its generation changed, or deletes it when the object is
// gone or being deleted.
package objects

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/tidalscale/tidal/autoscaler/samples"
)

// Poller is the part of *poller.Poller the controller drives.
type Poller interface {
	Upsert(ctx context.Context, spec samples.ObjectSpec) []error
	Delete(ctx context.Context, key samples.Key)
}

// GetFunc reads an object from the informer's cache (a lister); NotFound when it is gone.
type GetFunc func(namespace, name string) (metav1.Object, error)

// BuildFunc turns an object returned by GetFunc into its ObjectSpec (triggers.ForScaledObject or
// triggers.ForScaledJob with the adapter's clients). Its errors name the field and never a resolved value.
type BuildFunc func(ctx context.Context, obj metav1.Object) (samples.ObjectSpec, error)

// Observer hears about objects the controller installed or removed; the stream server uses it to send an
// object's metric specs before its first sample and to tell clients about deletions. Calls must not block.
type Observer interface {
	ObjectChanged(key samples.Key)
	ObjectDeleted(key samples.Key)
}

// Options wires a Controller. Every field but Logger and Observer is required.
type Options struct {
	// Kind is samples.KindScaledObject or samples.KindScaledJob.
	Kind     string
	Informer cache.SharedIndexInformer
	Get      GetFunc
	Poller   Poller
	Build    BuildFunc
	Observer Observer
	Logger   *zap.Logger
}

// Controller reconciles one kind of object into the poller.
type Controller struct {
	opts  Options
	log   *zap.Logger
	queue workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	built   map[string]int64    // namespace/name → generation upserted
	initial map[string]struct{} // keys of the initial list not reconciled yet; nil before the cache synced
	synced  chan struct{}       // closed once every object of the initial list was reconciled once
}

// New validates opts, builds a Controller and registers its informer handlers.
func New(opts Options) (*Controller, error) {
	switch {
	case opts.Kind != samples.KindScaledObject && opts.Kind != samples.KindScaledJob:
		return nil, fmt.Errorf("objects: options: kind: want %s or %s, got %q", samples.KindScaledObject, samples.KindScaledJob, opts.Kind)
	case opts.Informer == nil:
		return nil, errors.New("objects: options: informer is required")
	case opts.Get == nil:
		return nil, errors.New("objects: options: get is required")
	case opts.Poller == nil:
		return nil, errors.New("objects: options: poller is required")
	case opts.Build == nil:
		return nil, errors.New("objects: options: build is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Controller{
		opts: opts,
		log:  opts.Logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "adapter-" + strings.ToLower(opts.Kind)}),
		built:  map[string]int64{},
		synced: make(chan struct{}),
	}
	enqueue := func(obj any) {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			c.log.Warn("cannot key object", zap.Error(err))
			return
		}
		c.queue.Add(key)
	}
	_, err := opts.Informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	if err != nil {
		return nil, fmt.Errorf("objects: %s informer: %w", opts.Kind, err)
	}
	return c, nil
}

// HasSynced reports whether the informer has delivered the initial list.
func (c *Controller) HasSynced() bool { return c.opts.Informer.HasSynced() }

// Synced is closed once every object of the informer's initial list has been reconciled once (installed in the
// poller, or failed to build): the stream starts serving only then, so an operator never takes a restarted
// adapter's empty cache for the truth.
func (c *Controller) Synced() <-chan struct{} { return c.synced }

// reconciled marks key as seen for Synced.
func (c *Controller) reconciled(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.initial == nil {
		return
	}
	delete(c.initial, key)
	if len(c.initial) == 0 {
		c.initial = nil
		close(c.synced)
	}
}

// Run processes the queue with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.opts.Informer.HasSynced) {
		return fmt.Errorf("objects: %s informer did not sync", c.opts.Kind)
	}
	c.mu.Lock()
	c.initial = map[string]struct{}{}
	for _, key := range c.opts.Informer.GetStore().ListKeys() {
		c.initial[key] = struct{}{}
	}
	if len(c.initial) == 0 {
		c.initial = nil
		close(c.synced)
	}
	c.mu.Unlock()
	c.log.Info("started", zap.String("kind", c.opts.Kind), zap.Int("workers", workers))
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runWorker, time.Second) })
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

// processNextWorkItem is the one place retries are decided.
func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	defer c.reconciled(key)
	if err := c.Reconcile(ctx, key); err != nil {
		c.log.Warn("reconcile failed, retrying", zap.String("kind", c.opts.Kind), zap.String("object", key), zap.Error(err))
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// Reconcile upserts the object's spec when its generation is new, or deletes it from the poller.
func (c *Controller) Reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		c.log.Error("dropping bad key", zap.String("key", key), zap.Error(err))
		return nil
	}
	pkey := samples.Key{Kind: c.opts.Kind, Namespace: ns, Name: name}
	obj, err := c.opts.Get(ns, name)
	if apierrors.IsNotFound(err) || (err == nil && obj.GetDeletionTimestamp() != nil) {
		c.forget(ctx, key, pkey)
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	gen, ok := c.built[key]
	c.mu.Unlock()
	if ok && gen == obj.GetGeneration() {
		return nil
	}
	spec, err := c.opts.Build(ctx, obj)
	if err != nil {
		// A secret or the target may appear later: retry with back-off.
		return fmt.Errorf("%s %s: %w", c.opts.Kind, key, err)
	}
	for _, e := range c.opts.Poller.Upsert(ctx, spec) {
		if e != nil {
			c.log.Warn("trigger cannot be built", zap.String("kind", c.opts.Kind), zap.String("object", key), zap.String("error", e.Error()))
		}
	}
	c.mu.Lock()
	c.built[key] = obj.GetGeneration()
	c.mu.Unlock()
	if c.opts.Observer != nil {
		c.opts.Observer.ObjectChanged(pkey)
	}
	c.log.Debug("object installed", zap.String("kind", c.opts.Kind), zap.String("object", key), zap.Int64("generation", obj.GetGeneration()))
	return nil
}

func (c *Controller) forget(ctx context.Context, key string, pkey samples.Key) {
	c.mu.Lock()
	_, had := c.built[key]
	delete(c.built, key)
	c.mu.Unlock()
	c.opts.Poller.Delete(ctx, pkey)
	if had && c.opts.Observer != nil {
		c.opts.Observer.ObjectDeleted(pkey)
	}
}
