// Package scaledobjects keeps the metrics adapter's poller in line with the cluster's ScaledObjects: an
// informer enqueues keys, and Reconcile builds each object's poller.ObjectSpec (auth and environment
// resolved) and upserts it when its generation changed, or deletes it when the object is gone or being deleted.
package scaledobjects

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	tidallisters "github.com/tidalscale/tidal/api/client/listers/api/v1alpha1"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/metricsadapter/poller"
)

// Poller is the part of *poller.Poller the controller drives.
type Poller interface {
	Upsert(ctx context.Context, spec poller.ObjectSpec) []error
	Delete(ctx context.Context, key poller.Key)
}

// BuildFunc turns a ScaledObject into its ObjectSpec (operator.ObjectSpec with the adapter's clients). Its
// errors name the field and never a resolved value.
type BuildFunc func(ctx context.Context, so *tidalv1alpha1.ScaledObject) (poller.ObjectSpec, error)

// Observer hears about objects the controller installed or removed; the stream server uses it to send an
// object's metric specs before its first sample and to tell clients about deletions. Calls must not block.
type Observer interface {
	ObjectChanged(key poller.Key)
	ObjectDeleted(key poller.Key)
}

// Options wires a Controller. Every field but Logger and Observer is required.
type Options struct {
	Informer cache.SharedIndexInformer // ScaledObjects
	Lister   tidallisters.ScaledObjectLister
	Poller   Poller
	Build    BuildFunc
	Observer Observer
	Logger   *zap.Logger
}

// Controller reconciles ScaledObjects into the poller.
type Controller struct {
	opts  Options
	log   *zap.Logger
	queue workqueue.TypedRateLimitingInterface[string]

	mu    sync.Mutex
	built map[string]int64 // namespace/name → generation upserted
}

// New validates opts, builds a Controller and registers its informer handlers.
func New(opts Options) (*Controller, error) {
	switch {
	case opts.Informer == nil:
		return nil, errors.New("scaledobjects: options: informer is required")
	case opts.Lister == nil:
		return nil, errors.New("scaledobjects: options: lister is required")
	case opts.Poller == nil:
		return nil, errors.New("scaledobjects: options: poller is required")
	case opts.Build == nil:
		return nil, errors.New("scaledobjects: options: build is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Controller{
		opts: opts,
		log:  opts.Logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "adapter-scaledobjects"}),
		built: map[string]int64{},
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
		return nil, fmt.Errorf("scaledobjects: informer: %w", err)
	}
	return c, nil
}

// HasSynced reports whether the informer has delivered the initial list.
func (c *Controller) HasSynced() bool { return c.opts.Informer.HasSynced() }

// Run processes the queue with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.opts.Informer.HasSynced) {
		return errors.New("scaledobjects: informer did not sync")
	}
	c.log.Info("started", zap.Int("workers", workers))
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
	if err := c.Reconcile(ctx, key); err != nil {
		c.log.Warn("reconcile failed, retrying", zap.String("scaledObject", key), zap.Error(err))
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
	pkey := poller.Key{Kind: poller.KindScaledObject, Namespace: ns, Name: name}
	so, err := c.opts.Lister.ScaledObjects(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && so.DeletionTimestamp != nil) {
		c.forget(ctx, key, pkey)
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	gen, ok := c.built[key]
	c.mu.Unlock()
	if ok && gen == so.Generation {
		return nil
	}
	spec, err := c.opts.Build(ctx, so)
	if err != nil {
		// A secret or the target may appear later: retry with back-off.
		return fmt.Errorf("ScaledObject %s: %w", key, err)
	}
	for _, e := range c.opts.Poller.Upsert(ctx, spec) {
		if e != nil {
			c.log.Warn("trigger cannot be built", zap.String("scaledObject", key), zap.String("error", e.Error()))
		}
	}
	c.mu.Lock()
	c.built[key] = so.Generation
	c.mu.Unlock()
	if c.opts.Observer != nil {
		c.opts.Observer.ObjectChanged(pkey)
	}
	c.log.Debug("scaledObject installed", zap.String("scaledObject", key), zap.Int64("generation", so.Generation))
	return nil
}

func (c *Controller) forget(ctx context.Context, key string, pkey poller.Key) {
	c.mu.Lock()
	_, had := c.built[key]
	delete(c.built, key)
	c.mu.Unlock()
	c.opts.Poller.Delete(ctx, pkey)
	if had && c.opts.Observer != nil {
		c.opts.Observer.ObjectDeleted(pkey)
	}
}
