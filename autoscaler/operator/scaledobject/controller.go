// Package scaledobject is the ScaledObject controller: it registers each object's triggers with a sample
// source, reacts to every sample the source pushes, decides replicas with autoscaler/core (mode direct) or
// owns an HPA and handles 0↔1 itself (mode hpa), and writes /scale and status.
package scaledobject

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/cache"

	tidallisters "github.com/tidalscale/tidal/api/client/listers/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/internal/controller"
)

// Options wires a Controller.
type Options struct {
	operator.Deps
	Informer cache.SharedIndexInformer // ScaledObjects
	Lister   tidallisters.ScaledObjectLister
	Targets  *scaletarget.Client
}

// Controller reconciles ScaledObjects.
type Controller struct {
	opts   Options
	log    *zap.Logger
	now    func() time.Time
	runner *controller.Runner

	mu      sync.Mutex
	objects map[string]*objectState // by namespace/name
}

// New builds a Controller and registers its informer handlers.
func New(opts Options) (*Controller, error) {
	opts.Deps = opts.Deps.WithDefaults()
	c := &Controller{
		opts:    opts,
		log:     opts.Logger.Named("scaledobject"),
		now:     opts.Now,
		objects: map[string]*objectState{},
	}
	var err error
	c.runner, err = controller.New(controller.Options{
		Name: "scaledobjects", Kind: kindScaledObject, Reconcile: c.Reconcile,
		Synced: []cache.InformerSynced{opts.Informer.HasSynced}, Logger: c.log, Metrics: opts.Metrics.Runtime(),
	})
	if err != nil {
		return nil, err
	}
	if _, err := opts.Informer.AddEventHandler(c.runner.Handler()); err != nil {
		return nil, fmt.Errorf("scaledobject informer: %w", err)
	}
	return c, nil
}

// EnqueueAll reconciles every ScaledObject in the informer's cache: after a shard membership change, each
// replica releases the objects it lost and takes up the ones it gained.
func (c *Controller) EnqueueAll() {
	c.runner.EnqueueAll(c.opts.Informer.GetStore())
}

// Owned counts the cached ScaledObjects this replica owns (all of them without a shard).
func (c *Controller) Owned() int {
	return operator.CountOwned(c.opts.Shard, c.opts.Informer.GetStore().ListKeys())
}

// Run starts the sample subscription and workers; it blocks until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	updates, cancel := c.opts.Source.Subscribe(1024)
	defer cancel()
	for _, st := range c.opts.Source.Snapshot() {
		for _, t := range st.Triggers {
			c.observe(samples.Update{Key: st.Key, Trigger: t})
		}
	}
	// Every sample update becomes a reconcile of its object: this is what makes direct mode react to a push
	// within milliseconds rather than at a sync period.
	go samples.Consume(ctx, updates, func(u samples.Update) {
		if u.Key.Kind == "" || u.Key.Kind == kindScaledObject {
			c.observe(u)
			c.runner.Enqueue(u.Key.Namespace + "/" + u.Key.Name)
		}
	})
	return c.runner.Run(ctx, workers)
}

func (c *Controller) observe(u samples.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := u.Key.Namespace + "/" + u.Key.Name
	st := c.objects[key]
	if st == nil {
		st = newObjectState()
		c.objects[key] = st
	}
	st.triggers[u.Trigger.Index] = u.Trigger
	st.sampleSeen = c.now()
}
