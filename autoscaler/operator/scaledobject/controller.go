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
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidallisters "github.com/tidalscale/tidal/api/client/listers/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/autoscaler/triggers"
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
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Controller reconciles ScaledObjects.
type Controller struct {
	opts  Options
	log   *zap.Logger
	now   func() time.Time
	queue workqueue.TypedRateLimitingInterface[string]

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
		opts: opts,
		log:  opts.Logger.Named("scaledobject"),
		now:  opts.Now,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "scaledobjects"}),
		objects: map[string]*objectState{},
	}
	_, err := opts.Informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	if err != nil {
		return nil, fmt.Errorf("scaledobject informer: %w", err)
	}
	return c, nil
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Warn("cannot key object", zap.Error(err))
		return
	}
	c.queue.Add(key)
}

// Run starts the sample subscription and workers; it blocks until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer runtime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()

	updates, cancel := c.opts.Source.Subscribe(1024)
	defer cancel()
	for _, st := range c.opts.Source.Snapshot() {
		for _, t := range st.Triggers {
			c.observe(samples.Update{Key: st.Key, Trigger: t})
		}
	}
	go c.consume(ctx, updates)

	if !cache.WaitForCacheSync(ctx.Done(), c.opts.Informer.HasSynced) {
		return fmt.Errorf("scaledobject informer did not sync")
	}
	c.log.Info("started", zap.Int("workers", workers))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait.UntilWithContext(ctx, c.runWorker, time.Second)
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
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
			c.queue.Add(u.Key.Namespace + "/" + u.Key.Name)
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

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

// processNextWorkItem is the single place retries are decided: Done always, Forget on success, AddRateLimited on
// a transient error, AddAfter for a requested requeue.
func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	log := c.log.With(zap.String("scaledObject", key))
	start := time.Now()
	res, err := c.Reconcile(operator.WithLogger(ctx, log), key)
	c.opts.Metrics.ObserveReconcile("ScaledObject", time.Since(start), err)
	c.opts.Metrics.SetQueueDepth("scaledobjects", c.queue.Len())
	if err != nil {
		log.Warn("reconcile failed, retrying", zap.Error(err))
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	if res.RequeueAfter > 0 {
		c.queue.AddAfter(key, res.RequeueAfter)
	}
	return true
}
