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
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"

	tidallisters "github.com/tidalscale/tidal/api/client/listers/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/triggerstate"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/internal/controller"
)

// Labels on the Jobs a ScaledJob creates.
const (
	LabelScaledJobName = "scaledjob.tidal.dev/name"
	LabelTemplateHash  = "scaledjob.tidal.dev/template-hash"
	kindScaledJob      = "ScaledJob"
)

// Options wires a Controller.
type Options struct {
	operator.Deps
	Informer    cache.SharedIndexInformer // ScaledJobs
	Lister      tidallisters.ScaledJobLister
	JobInformer cache.SharedIndexInformer // Jobs labelled scaledjob.tidal.dev/name
	JobLister   batchlisters.JobLister
}

// Controller reconciles ScaledJobs.
type Controller struct {
	opts   Options
	log    *zap.Logger
	now    func() time.Time
	runner *controller.Runner

	mu   sync.Mutex
	jobs map[string]*jobState
}

// jobState is what the controller remembers of one ScaledJob.
type jobState struct {
	reg      triggerstate.State // the registration of its triggers with the source
	triggers map[int]samples.TriggerState
	// consumed is the newest sample time already turned into Jobs: one creation round per sample round.
	consumed time.Time
}

// retryAfter is when key must be reconciled again without an event (triggerstate.State.RetryAfter): no sample
// and perhaps no Job event will come to wake a ScaledJob whose triggers could not be built.
func (c *Controller) retryAfter(key string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.jobs[key]; st != nil {
		return st.reg.RetryAfter(c.now())
	}
	return 0
}

// New builds a Controller and registers its informer handlers.
func New(opts Options) (*Controller, error) {
	opts.Deps = opts.Deps.WithDefaults()
	c := &Controller{opts: opts, log: opts.Logger.Named("scaledjob"), now: opts.Now, jobs: map[string]*jobState{}}
	var err error
	c.runner, err = controller.New(controller.Options{
		Name: "scaledjobs", Kind: kindScaledJob,
		Reconcile: func(ctx context.Context, key string) (controller.Result, error) {
			err := c.Reconcile(ctx, key)
			return controller.Result{RequeueAfter: c.retryAfter(key)}, err
		},
		Synced: []cache.InformerSynced{opts.Informer.HasSynced, opts.JobInformer.HasSynced},
		Logger: c.log, Metrics: opts.Metrics.Runtime(),
	})
	if err != nil {
		return nil, err
	}
	if _, err := opts.Informer.AddEventHandler(c.runner.Handler()); err != nil {
		return nil, fmt.Errorf("scaledjob informer: %w", err)
	}
	// A finished Job frees a slot and may need history cleanup: look at its ScaledJob again.
	if _, err := opts.JobInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, o any) { c.enqueueOwner(o) }, DeleteFunc: c.enqueueOwner,
	}); err != nil {
		return nil, fmt.Errorf("job informer: %w", err)
	}
	return c, nil
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
		c.runner.Enqueue(job.Namespace + "/" + name)
	}
}

// EnqueueAll reconciles every cached ScaledJob (after a shard membership change).
func (c *Controller) EnqueueAll() {
	c.runner.EnqueueAll(c.opts.Informer.GetStore())
}

// Owned counts the cached ScaledJobs this replica owns (all of them without a shard).
func (c *Controller) Owned() int {
	return operator.CountOwned(c.opts.Shard, c.opts.Informer.GetStore().ListKeys())
}

// Run consumes samples and runs workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	updates, cancel := c.opts.Source.Subscribe(1024)
	defer cancel()
	go samples.Consume(ctx, updates, func(u samples.Update) {
		if u.Key.Kind == kindScaledJob {
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
	c.stateLocked(key).triggers[u.Trigger.Index] = u.Trigger
}
