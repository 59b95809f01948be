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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidallisters "github.com/tidalscale/tidal/api/client/listers/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/internal/controller"
)

// Options wires a Controller.
type Options struct {
	Kube     kubernetes.Interface
	Tidal    tidalclient.Interface
	Informer cache.SharedIndexInformer // ScaledObjects
	Lister   tidallisters.ScaledObjectLister
	Targets  *scaletarget.Client
	Resolver *triggers.Resolver
	Source   samples.Source
	Recorder record.EventRecorder
	Logger   *zap.Logger
	Metrics  *operator.Metrics
	// Shard, when set, limits this replica to the objects it owns: others are released, and every write
	// re-checks ownership first.
	Shard operator.Shard
	// Capacity publishes a CapacityRequest before each scale-up; nil publishes none.
	Capacity *capacity.Publisher
	// Now is the clock; time.Now when nil.
	Now func() time.Time
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
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
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
	for _, obj := range c.opts.Informer.GetStore().List() {
		c.runner.EnqueueObject(obj)
	}
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
	go c.consume(ctx, updates)
	return c.runner.Run(ctx, workers)
}

// consume turns every sample update into a reconcile of its object: this is what makes direct mode react to a
// push within milliseconds rather than at a sync period.
func (c *Controller) consume(ctx context.Context, updates <-chan samples.Update) {
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			if u.Key.Kind != "" && u.Key.Kind != kindScaledObject {
				continue
			}
			c.observe(u)
			c.runner.Enqueue(u.Key.Namespace + "/" + u.Key.Name)
		}
	}
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
