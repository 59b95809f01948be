// Package objects keeps the metrics adapter's poller in line with the cluster's ScaledObjects and ScaledJobs
// (one Controller per kind): an informer enqueues keys, and Reconcile builds each object's samples.ObjectSpec
// (auth and environment resolved) and upserts it when its generation changed, or deletes it when the object is
// gone or being deleted. An object whose parameters come from an external secret store is built again at the
// spec's RefreshAt, as the operator does with its own poller: a rotated value rebuilds its scalers, and values
// that expired without a successful read remove them until the store answers again.
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
	"k8s.io/client-go/tools/cache"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/internal/controller"
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

// Options wires a Controller. Every field but Logger, Observer and Metrics is required.
type Options struct {
	// Kind is samples.KindScaledObject or samples.KindScaledJob.
	Kind     string
	Informer cache.SharedIndexInformer
	Get      GetFunc
	Poller   Poller
	Build    BuildFunc
	Observer Observer
	Logger   *zap.Logger
	// Metrics, when set, records reconciles and queue depth.
	Metrics *controller.Metrics
	// Now is the clock RefreshAt is compared with (time.Now when nil).
	Now func() time.Time
	// Owns, when set, shards the adapter's replicas (internal/shard): only objects it owns ("namespace/name")
	// are installed in the poller; any other is removed from it (released) without telling the Observer, since
	// the object lives on at its owner. Call EnqueueAll when ownership may have changed.
	Owns func(key string) bool
}

// built is what the poller holds for an object: its generation, when its secret-store parameters must be read
// again (zero: never), and the digest of the parameters its scalers were built with (triggers.AuthDigest).
type built struct {
	generation int64
	refreshAt  time.Time
	digest     string
}

// Controller reconciles one kind of object into the poller.
type Controller struct {
	opts   Options
	log    *zap.Logger
	runner *controller.Runner

	mu      sync.Mutex
	built   map[string]built    // namespace/name → what was upserted
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Controller{opts: opts, log: opts.Logger, built: map[string]built{}, synced: make(chan struct{})}
	var err error
	c.runner, err = controller.New(controller.Options{
		Name: "adapter-" + strings.ToLower(opts.Kind), Kind: opts.Kind,
		Reconcile: func(ctx context.Context, key string) (controller.Result, error) {
			defer c.reconciled(key)
			return c.Reconcile(ctx, key)
		},
		Synced: []cache.InformerSynced{opts.Informer.HasSynced}, Logger: opts.Logger, Metrics: opts.Metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("objects: %w", err)
	}
	if _, err := opts.Informer.AddEventHandler(c.runner.Handler()); err != nil {
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
	return c.runner.Run(ctx, workers)
}

// Reconcile upserts the object's spec when its generation is new or its secret-store parameters are due for a
// refresh, or deletes it from the poller. The result asks to be called again at the next refresh.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		c.log.Error("dropping bad key", zap.String("key", key), zap.Error(err))
		return controller.Result{}, nil
	}
	pkey := samples.Key{Kind: c.opts.Kind, Namespace: ns, Name: name}
	obj, err := c.opts.Get(ns, name)
	if apierrors.IsNotFound(err) || (err == nil && obj.GetDeletionTimestamp() != nil) {
		if had := c.forget(ctx, key, pkey); !had && c.opts.Owns != nil && c.opts.Observer != nil {
			// Sharded: every replica relays its peers' objects to its stream clients, so each tells its own
			// clients about a deletion, whichever replica polled the object.
			c.opts.Observer.ObjectDeleted(pkey)
		}
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	if c.opts.Owns != nil && !c.opts.Owns(key) {
		c.release(ctx, key, pkey)
		return controller.Result{}, nil
	}
	c.mu.Lock()
	prev, ok := c.built[key]
	c.mu.Unlock()
	refreshing := ok && prev.generation == obj.GetGeneration()
	if refreshing {
		if prev.refreshAt.IsZero() {
			return controller.Result{}, nil
		}
		if wait := prev.refreshAt.Sub(c.opts.Now()); wait > 0 {
			return controller.Result{RequeueAfter: wait}, nil
		}
	}
	spec, err := c.opts.Build(ctx, obj)
	if err != nil {
		if refreshing {
			// The secret-store values expired without a successful read: the scalers built with them go, as
			// if the authentication had never resolved, until a retry succeeds.
			c.forget(ctx, key, pkey)
		}
		// A secret or the target may appear later: retry with back-off.
		return controller.Result{}, fmt.Errorf("%s %s: %w", c.opts.Kind, key, err)
	}
	digest := triggers.AuthDigest(spec.Triggers)
	if refreshing && prev.digest == digest {
		c.mu.Lock()
		c.built[key] = built{generation: prev.generation, refreshAt: spec.RefreshAt, digest: digest}
		c.mu.Unlock()
		return c.next(spec.RefreshAt), nil
	}
	if refreshing {
		// A store returned new values (a rotated secret): rebuild the scalers with them (an Upsert of the held
		// generation is a no-op, so drop the object first).
		c.opts.Poller.Delete(ctx, pkey)
		c.log.Info("secret-store parameters changed: scalers rebuilt", zap.String("kind", c.opts.Kind), zap.String("object", key))
	}
	for _, e := range c.opts.Poller.Upsert(ctx, spec) {
		if e != nil {
			c.log.Warn("trigger cannot be built", zap.String("kind", c.opts.Kind), zap.String("object", key), zap.String("error", e.Error()))
		}
	}
	c.mu.Lock()
	c.built[key] = built{generation: obj.GetGeneration(), refreshAt: spec.RefreshAt, digest: digest}
	c.mu.Unlock()
	if c.opts.Observer != nil {
		c.opts.Observer.ObjectChanged(pkey)
	}
	c.log.Debug("object installed", zap.String("kind", c.opts.Kind), zap.String("object", key), zap.Int64("generation", obj.GetGeneration()))
	return c.next(spec.RefreshAt), nil
}

// next asks for a reconcile at refreshAt (none when zero).
func (c *Controller) next(refreshAt time.Time) controller.Result {
	if refreshAt.IsZero() {
		return controller.Result{}
	}
	return controller.Result{RequeueAfter: max(refreshAt.Sub(c.opts.Now()), time.Millisecond)}
}

// EnqueueAll queues every object of the informer's cache (the ownership of any may have changed).
func (c *Controller) EnqueueAll() {
	for _, key := range c.opts.Informer.GetStore().ListKeys() {
		c.runner.Enqueue(key)
	}
}

// Owned is the number of objects installed in the poller.
func (c *Controller) Owned() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.built)
}

// release removes an object another replica owns from the poller, if it was installed here.
func (c *Controller) release(ctx context.Context, key string, pkey samples.Key) {
	c.mu.Lock()
	_, had := c.built[key]
	delete(c.built, key)
	c.mu.Unlock()
	if had {
		c.opts.Poller.Delete(ctx, pkey)
		c.log.Info("released: owned by another replica", zap.String("kind", c.opts.Kind), zap.String("object", key))
	}
}

// forget removes an object from the poller and tells the Observer if it was installed; it reports whether it was.
func (c *Controller) forget(ctx context.Context, key string, pkey samples.Key) bool {
	c.mu.Lock()
	_, had := c.built[key]
	delete(c.built, key)
	c.mu.Unlock()
	c.opts.Poller.Delete(ctx, pkey)
	if had && c.opts.Observer != nil {
		c.opts.Observer.ObjectDeleted(pkey)
	}
	return had
}
