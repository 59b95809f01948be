// Package scaledjob is the ScaledJob controller: on every sample of a ScaledJob's triggers it creates Jobs from
// jobTargetRef for the pending events (KEDA's default, custom, accurate and eager strategies, computed by
// autoscaler/core.DecideJobs), keeps the finished-Job history within its limits, and replaces running Jobs
// when the template changes unless rollout.strategy is gradual.
package scaledjob

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidallisters "github.com/tidalscale/tidal/api/client/listers/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/triggers"
)

// Labels on the Jobs a ScaledJob creates.
const (
	LabelScaledJobName = "scaledjob.tidal.dev/name"
	LabelTemplateHash  = "scaledjob.tidal.dev/template-hash"
	kindScaledJob      = "ScaledJob"
)

// Options wires a Controller.
type Options struct {
	Kube        kubernetes.Interface
	Tidal       tidalclient.Interface
	Informer    cache.SharedIndexInformer // ScaledJobs
	Lister      tidallisters.ScaledJobLister
	JobInformer cache.SharedIndexInformer // Jobs labelled scaledjob.tidal.dev/name
	JobLister   batchlisters.JobLister
	Resolver    *triggers.Resolver
	Source      samples.Source
	Recorder    record.EventRecorder
	Logger      *zap.Logger
	Metrics     *operator.Metrics
	Now         func() time.Time
}

// Controller reconciles ScaledJobs.
type Controller struct {
	opts  Options
	log   *zap.Logger
	now   func() time.Time
	queue workqueue.TypedRateLimitingInterface[string]

	mu   sync.Mutex
	jobs map[string]*jobState
}

// jobState is what the controller remembers of one ScaledJob.
type jobState struct {
	generation int64
	buildErr   error
	triggers   map[int]samples.TriggerState
	// consumed is the newest sample time already turned into Jobs: one creation round per sample round.
	consumed time.Time
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
		opts: opts, log: opts.Logger.Named("scaledjob"), now: opts.Now,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "scaledjobs"}),
		jobs: map[string]*jobState{},
	}
	if _, err := opts.Informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue, UpdateFunc: func(_, o any) { c.enqueue(o) }, DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	// A finished Job frees a slot and may need history cleanup: look at its ScaledJob again.
	if _, err := opts.JobInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, o any) { c.enqueueOwner(o) }, DeleteFunc: c.enqueueOwner,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

func (c *Controller) enqueueOwner(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	if name := job.Labels[LabelScaledJobName]; name != "" {
		c.queue.Add(job.Namespace + "/" + name)
	}
}

// Run consumes samples and runs workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer runtime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	updates, cancel := c.opts.Source.Subscribe(1024)
	defer cancel()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				if u.Key.Kind != kindScaledJob {
					continue
				}
				c.observe(u)
				c.queue.Add(u.Key.Namespace + "/" + u.Key.Name)
			}
		}
	}()
	if !cache.WaitForCacheSync(ctx.Done(), c.opts.Informer.HasSynced, c.opts.JobInformer.HasSynced) {
		return fmt.Errorf("scaledjob informers did not sync")
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for c.processNext(ctx) {
				}
			}, time.Second)
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) observe(u samples.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := u.Key.Namespace + "/" + u.Key.Name
	st := c.jobs[key]
	if st == nil {
		st = &jobState{triggers: map[int]samples.TriggerState{}}
		c.jobs[key] = st
	}
	st.triggers[u.Trigger.Index] = u.Trigger
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	log := c.log.With(zap.String("scaledJob", key))
	start := time.Now()
	err := c.Reconcile(operator.WithLogger(ctx, log), key)
	c.opts.Metrics.ObserveReconcile(kindScaledJob, time.Since(start), err)
	if err != nil {
		log.Warn("reconcile failed, retrying", zap.Error(err))
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}
