// Package nodes is the node autoscaler: every loop it collects unschedulable pods, simulates scheduling them on
// existing, upcoming and template nodes with the kube-scheduler's own filter plugins (autoscaler/nodes/simulator),
// grows the node groups the expander chooses, and removes nodes whose pods fit elsewhere.
//
// Decisions live in small packages: scaleup (Planner), scaledown (Planner, Actuator), estimator (binpacking),
// expander, backoff. This package observes the cluster, calls them in order in RunOnce, and reports (status
// ConfigMap, NodeGroup status, events, metrics).
package nodes

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalinformers "github.com/tidalscale/tidal/api/client/informers/externalversions"
	"github.com/tidalscale/tidal/autoscaler/nodes/backoff"
	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
	"github.com/tidalscale/tidal/autoscaler/nodes/expander"
	"github.com/tidalscale/tidal/autoscaler/nodes/placement"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provisiontime"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaleup"
	"github.com/tidalscale/tidal/autoscaler/nodes/simulator"
	"github.com/tidalscale/tidal/internal/kubenode"
)

// DefaultStatusConfigMap is the name of the status ConfigMap.
const DefaultStatusConfigMap = "tidal-node-autoscaler-status"

// Config is the autoscaler's behaviour; zero values take cluster-autoscaler's defaults.
type Config struct {
	// ScanInterval between loops (default 10s). A newly unschedulable pod starts a loop sooner, after Batch.
	ScanInterval time.Duration
	// Batch is the window that gathers newly unschedulable pods into one loop (Karpenter's batch idle/max
	// duration; the command's defaults are 1s idle, 10s max). Zero starts a loop at the first such pod. A
	// ScanInterval tick while the window is open waits for it to close, so one burst is one decision.
	Batch batch.Window
	// Expanders in chain order (default least-waste).
	Expanders []string
	// PriorityConfigMap names a ConfigMap in StatusNamespace with cluster-autoscaler's "priorities" key for the
	// priority expander; empty uses each NodeGroup's spec.priority.
	PriorityConfigMap string
	// Limits are cluster-wide caps for scale-up.
	Limits scaleup.Limits
	// MaxNodeProvisionTime after which an unregistered instance counts as failed (default 15m).
	MaxNodeProvisionTime time.Duration
	Backoff              backoff.Options
	// EnforceMinSize grows groups below spec.minSize to it even without pending pods (cluster-autoscaler's
	// --enforce-node-group-min-size).
	EnforceMinSize bool
	// ScaleUpForBurstPods counts pods running on virtual nodes (label type=virtual-kubelet) as demand for real
	// nodes, so the virtual node's backfill can move them back once the nodes are there. Virtual nodes are never
	// scheduling destinations in the simulation either way.
	ScaleUpForBurstPods bool
	// ScaleDownDisabled turns scale-down off.
	ScaleDownDisabled bool
	ScaleDown         scaledown.Options
	// ScaleDownDelayAfterAdd: no scale-down this long after a scale-up (0: the default 10m; negative: none).
	ScaleDownDelayAfterAdd time.Duration
	// DrainTimeout bounds one node's drain (default 10m).
	DrainTimeout time.Duration
	// StatusNamespace holds the status ConfigMap (default kube-system).
	StatusNamespace string
	// StatusConfigMap name (default DefaultStatusConfigMap).
	StatusConfigMap string
	// PodNamespace restricts the pods the autoscaler sees to one namespace (tests, tenants); empty sees all.
	PodNamespace string
	// NodeGroupSelector restricts the NodeGroups the autoscaler manages; nil manages all.
	NodeGroupSelector labels.Selector
}

func (c *Config) defaults() {
	if c.ScanInterval <= 0 {
		c.ScanInterval = 10 * time.Second
	}
	if c.MaxNodeProvisionTime <= 0 {
		c.MaxNodeProvisionTime = 15 * time.Minute
	}
	if c.ScaleDownDelayAfterAdd == 0 {
		c.ScaleDownDelayAfterAdd = 10 * time.Minute
	}
	if c.StatusNamespace == "" {
		c.StatusNamespace = "kube-system"
	}
	if c.StatusConfigMap == "" {
		c.StatusConfigMap = DefaultStatusConfigMap
	}
	if c.NodeGroupSelector == nil {
		c.NodeGroupSelector = labels.Everything()
	}
}

// Options are what New needs.
type Options struct {
	Client      kubernetes.Interface
	TidalClient tidalclient.Interface
	// Providers by name; the sim provider must also be Run by the caller.
	Providers provider.Registry
	Recorder  record.EventRecorder
	Logger    *zap.Logger
	// Metrics; nil creates unregistered ones.
	Metrics *Metrics
	Config  Config
}

// Autoscaler is the node autoscaler. Start it, then call Run (or RunOnce from tests).
type Autoscaler struct {
	opts    Options
	cfg     Config
	log     *zap.Logger
	metrics *Metrics

	informers informers.SharedInformerFactory
	// priorityInformers watches the priority expander's ConfigMap; nil when none is configured.
	priorityInformers informers.SharedInformerFactory
	tidalInformers    tidalinformers.SharedInformerFactory
	snap              *simulator.Snapshot
	backoff           *backoff.Tracker
	down              *scaledown.Planner
	batcher           *batch.Batcher // woken by newly unschedulable pods
	provision         *provisiontime.Tracker
	virtualStart      placement.VirtualStart
	bursting          sync.Map // pod UID → struct{}: a toleration patch is under way
	readySeen         sync.Map // node name → time.Time the informer first saw it Ready (condition times are in seconds)
	actuator          *scaledown.Actuator

	mu            sync.Mutex // guards the fields below (the actuator reports from its goroutines)
	lastScaleUp   map[string]time.Time
	lastScaleDown map[string]time.Time
	anyScaleUp    time.Time
	eventsSent    map[string]time.Time // pod UID + reason → last event time
	firstSeen     map[string]time.Time // group/instance ID → first loop it was seen creating
	seenNow       map[string]time.Time // the same, for this loop
}

// New builds an Autoscaler and its informers (started by Start).
func New(ctx context.Context, opts Options) (*Autoscaler, error) {
	if opts.Client == nil || opts.TidalClient == nil {
		return nil, fmt.Errorf("node autoscaler: Options.Client and Options.TidalClient are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	cfg := opts.Config
	cfg.defaults()
	var factoryOpts []informers.SharedInformerOption
	if cfg.PodNamespace != "" {
		factoryOpts = append(factoryOpts, informers.WithNamespace(cfg.PodNamespace))
	}
	a := &Autoscaler{
		opts:           opts,
		cfg:            cfg,
		log:            opts.Logger,
		metrics:        opts.Metrics,
		informers:      informers.NewSharedInformerFactoryWithOptions(opts.Client, 0, factoryOpts...),
		tidalInformers: tidalinformers.NewSharedInformerFactory(opts.TidalClient, 0),
		backoff:        backoff.New(cfg.Backoff),
		down:           scaledown.NewPlanner(cfg.ScaleDown),
		batcher:        batch.New(cfg.Batch, nil),
		provision:      &provisiontime.Tracker{MaxAge: cfg.MaxNodeProvisionTime},
		lastScaleUp:    map[string]time.Time{},
		lastScaleDown:  map[string]time.Time{},
		eventsSent:     map[string]time.Time{},
		firstSeen:      map[string]time.Time{},
		seenNow:        map[string]time.Time{},
	}
	a.actuator = scaledown.NewActuator(scaledown.ActuatorOptions{
		Client:       opts.Client,
		Providers:    opts.Providers,
		Recorder:     opts.Recorder,
		Logger:       opts.Logger,
		DrainTimeout: cfg.DrainTimeout,
		OnDone:       a.scaleDownDone,
	})
	// Register the listers RunOnce uses before the factories start. Node events record when each node turned
	// Ready, for the provision time (the Ready condition's own time has a resolution of a second).
	if _, err := a.informers.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.noteReady(obj) },
		UpdateFunc: func(_, obj any) { a.noteReady(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				a.readySeen.Delete(n.Name)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("node autoscaler: node handler: %w", err)
	}
	if _, err := a.informers.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok && isUnschedulable(p) {
				a.unschedulable(p)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Pod)
			n, ok2 := newObj.(*corev1.Pod)
			if ok1 && ok2 && !isUnschedulable(o) && isUnschedulable(n) {
				a.unschedulable(n)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("node autoscaler: pod handler: %w", err)
	}
	a.informers.Policy().V1().PodDisruptionBudgets().Informer()
	if cfg.PriorityConfigMap != "" {
		// Only the one ConfigMap, in the status namespace: no cluster-wide ConfigMap watch.
		a.priorityInformers = informers.NewSharedInformerFactoryWithOptions(opts.Client, 0,
			informers.WithNamespace(cfg.StatusNamespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.PriorityConfigMap).String()
			}))
		a.priorityInformers.Core().V1().ConfigMaps().Informer()
	}
	a.tidalInformers.Tidal().V1alpha1().NodeGroups().Informer()
	if err := a.watchDemand(); err != nil {
		return nil, err
	}
	snap, err := simulator.New(ctx, simulator.Options{InformerFactory: a.informers})
	if err != nil {
		return nil, err
	}
	a.snap = snap
	if _, err := expander.New(expander.Config{Names: cfg.Expanders}); err != nil {
		return nil, fmt.Errorf("node autoscaler: expanders: %w", err)
	}
	return a, nil
}

func (a *Autoscaler) noteReady(obj any) {
	if n, ok := obj.(*corev1.Node); ok && kubenode.Schedulable(n) {
		a.readySeen.LoadOrStore(n.Name, time.Now())
	}
}

// readySince is when the node turned Ready: when this autoscaler's informer first saw it Ready, else its Ready
// condition's transition time (zero when unknown).
func (a *Autoscaler) readySince(n *corev1.Node) time.Time {
	if t, ok := a.readySeen.Load(n.Name); ok {
		return t.(time.Time)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// Informers is the autoscaler's core informer factory, for providers that share its node cache (sim). Register
// extra informers before Start.
func (a *Autoscaler) Informers() informers.SharedInformerFactory { return a.informers }

// Start starts the informers and waits for their caches.
func (a *Autoscaler) Start(ctx context.Context) error {
	a.informers.Start(ctx.Done())
	a.tidalInformers.Start(ctx.Done())
	for typ, ok := range a.informers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("node autoscaler: cache of %v did not sync", typ)
		}
	}
	if a.priorityInformers != nil {
		a.priorityInformers.Start(ctx.Done())
		for typ, ok := range a.priorityInformers.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("node autoscaler: cache of %v did not sync", typ)
			}
		}
	}
	for typ, ok := range a.tidalInformers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("node autoscaler: cache of %v did not sync", typ)
		}
	}
	return nil
}

// Run first settles what a previous run left half-done (recoverAfterRestart, retried before each loop until it
// succeeds), then calls RunOnce every ScanInterval, and as soon as a batch of newly unschedulable pods has
// gathered (see next), until ctx is cancelled; then it waits for running drains.
func (a *Autoscaler) Run(ctx context.Context) {
	defer a.actuator.Wait()
	ticker := time.NewTicker(a.cfg.ScanInterval)
	defer ticker.Stop()
	batchCtx, stopBatch := context.WithCancel(ctx)
	defer stopBatch()
	go a.batcher.Run(batchCtx)
	recovered := false
	for {
		if !recovered {
			if err := a.recoverAfterRestart(ctx); err != nil {
				a.log.Error("recovering from the previous run failed; retrying next loop", zap.Error(err))
			} else {
				recovered = true
			}
		}
		if err := a.RunOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			a.log.Error("autoscaler loop failed", zap.Error(err))
		}
		if !a.next(ctx, ticker) {
			return
		}
	}
}

// next waits until the next loop is due (true) or ctx ends (false): a batch window closed, or a tick came with no
// window open. A tick inside an open window waits for it to close, so a burst of pending pods is one decision, not
// split at the tick. The window closes within Batch.Max; with no Max, only one tick in a row is put off, so the
// loop (scale-down, the safety net) still runs at least every second ScanInterval if pods never stop arriving.
func (a *Autoscaler) next(ctx context.Context, ticker *time.Ticker) bool {
	putOff := false
	for {
		select {
		case <-ctx.Done():
			return false
		case <-a.batcher.Ready():
			ticker.Reset(a.cfg.ScanInterval)
			return true
		case <-ticker.C:
			if !a.batcher.Open() || (putOff && a.cfg.Batch.Max <= 0) {
				return true
			}
			putOff = true
		}
	}
}

// RunOnce is one autoscaler loop at now: observe, scale up, scale down, report.
func (a *Autoscaler) RunOnce(ctx context.Context, now time.Time) error {
	start := time.Now()
	defer func() { a.metrics.FunctionDuration.WithLabelValues("main").Observe(time.Since(start).Seconds()) }()
	a.metrics.LastActivity.WithLabelValues("main").Set(float64(now.Unix()))

	st, err := a.observe(ctx, now)
	if err != nil {
		return err
	}
	upStart := time.Now()
	plan, err := a.planScaleUp(ctx, st)
	a.metrics.FunctionDuration.WithLabelValues("scaleUp").Observe(time.Since(upStart).Seconds())
	if err != nil {
		return fmt.Errorf("scale-up: %w", err)
	}
	scaledUp := a.executeScaleUp(ctx, now, st, plan)
	a.place(ctx, now, st, plan)
	if a.cfg.EnforceMinSize && a.enforceMinSize(ctx, now, st) {
		scaledUp = true
	}

	var down scaledown.Plan
	if !a.cfg.ScaleDownDisabled {
		downStart := time.Now()
		down, err = a.scaleDown(ctx, now, st, scaledUp)
		a.metrics.FunctionDuration.WithLabelValues("scaleDown").Observe(time.Since(downStart).Seconds())
		if err != nil {
			return fmt.Errorf("scale-down: %w", err)
		}
	}
	a.report(ctx, now, st, plan, down)
	a.reportDemand(ctx, st)
	return nil
}

// planScaleUp simulates the pending pods on existing plus upcoming nodes, then on templates.
func (a *Autoscaler) planScaleUp(ctx context.Context, st *state) (scaleup.Plan, error) {
	demand := append(append([]*corev1.Pod(nil), st.pending...), st.demand.Pods...)
	if a.cfg.ScaleUpForBurstPods {
		demand = append(demand, st.burstDemand()...)
	}
	if len(demand) == 0 {
		return scaleup.Plan{}, nil
	}
	a.snap.Fork()
	defer a.snap.Revert()
	if err := a.addUpcoming(st); err != nil {
		return scaleup.Plan{}, err
	}
	rest, err := scaleup.FilterSchedulable(ctx, a.snap, demand)
	if err != nil {
		return scaleup.Plan{}, err
	}
	filters, err := expander.New(expander.Config{Names: a.cfg.Expanders, Priorities: st.priorities})
	if err != nil {
		return scaleup.Plan{}, err
	}
	planner := scaleup.Planner{Expander: filters, Limits: a.cfg.Limits}
	var groups []scaleup.Group
	for _, g := range st.groups {
		groups = append(groups, scaleup.Group{NodeGroup: g.group, Target: g.target, Backoff: g.backoff})
	}
	return planner.Plan(ctx, a.snap, scaleup.Input{Pending: rest, Groups: groups, Usage: st.usage})
}

// executeScaleUp asks the providers for the planned nodes, every group at once, and reports it; it returns
// whether any group grew. Events are recorded after all the requests are in.
func (a *Autoscaler) executeScaleUp(ctx context.Context, now time.Time, st *state, plan scaleup.Plan) bool {
	errs := make([]error, len(plan.ScaleUps))
	var wg sync.WaitGroup
	for i, up := range plan.ScaleUps {
		wg.Add(1)
		a.provision.Requested(up.NodeGroup.Name, up.Delta, now)
		go func() {
			defer wg.Done()
			errs[i] = a.opts.Providers[up.NodeGroup.Spec.ProviderRef.Name].IncreaseSize(ctx, up.NodeGroup, up.Delta)
		}()
	}
	wg.Wait()
	grew := false
	for i, up := range plan.ScaleUps {
		g := up.NodeGroup
		log := a.log.With(zap.String("nodeGroup", g.Name))
		if err := errs[i]; err != nil {
			bs := a.backoff.Fail(g.Name, "increase size failed: "+err.Error(), now)
			a.metrics.FailedScaleUps.WithLabelValues(g.Name, "providerError").Inc()
			log.Warn("scale-up failed; backing off", zap.Error(err), zap.Time("until", bs.Until))
			continue
		}
		grew = true
		a.mu.Lock()
		a.lastScaleUp[g.Name] = now
		a.anyScaleUp = now
		a.mu.Unlock()
		if gs := st.byName[g.Name]; gs != nil {
			gs.target += up.Delta
		}
		a.metrics.ScaleUps.WithLabelValues(g.Name).Inc()
		a.metrics.ScaledUpNodes.WithLabelValues(g.Name).Add(float64(up.Delta))
		a.metrics.LastActivity.WithLabelValues("scaleUp").Set(float64(now.Unix()))
		ahead := a.countAhead(st, up)
		log.Info("scaled up", zap.Int("from", up.From), zap.Int("to", up.From+up.Delta), zap.Int("pods", len(up.Pods)),
			zap.Int("simulatedPods", ahead))
	}
	for i, up := range plan.ScaleUps {
		if errs[i] != nil {
			continue
		}
		g := up.NodeGroup
		msg := fmt.Sprintf("pod triggered scale-up: [{%s %d->%d (max: %d)}]", g.Name, up.From, up.From+up.Delta, g.Spec.MaxSize)
		for _, pod := range up.Pods {
			a.podEvent(now, pod, corev1.EventTypeNormal, EventTriggeredScaleUp, msg)
		}
	}
	for _, n := range plan.NoScaleUp {
		a.podEvent(now, n.Pod, corev1.EventTypeNormal, EventNotTriggerScaleUp, n.Message())
	}
	if grew {
		a.down.Reset()
	}
	return grew
}

// enforceMinSize raises groups below their minimum, unless backed off; it returns whether any grew.
func (a *Autoscaler) enforceMinSize(ctx context.Context, now time.Time, st *state) bool {
	grew := false
	for _, gs := range st.groups {
		g := gs.group
		missing := int(g.Spec.MinSize) - gs.target
		if missing <= 0 || gs.backoff != "" {
			continue
		}
		log := a.log.With(zap.String("nodeGroup", g.Name))
		a.provision.Requested(g.Name, missing, now)
		if err := a.opts.Providers[g.Spec.ProviderRef.Name].IncreaseSize(ctx, g, missing); err != nil {
			bs := a.backoff.Fail(g.Name, "increase size to minSize failed: "+err.Error(), now)
			a.metrics.FailedScaleUps.WithLabelValues(g.Name, "providerError").Inc()
			log.Warn("scale-up to minSize failed; backing off", zap.Error(err), zap.Time("until", bs.Until))
			continue
		}
		log.Info("scaled up to minSize", zap.Int("from", gs.target), zap.Int("to", int(g.Spec.MinSize)))
		a.mu.Lock()
		a.lastScaleUp[g.Name] = now
		a.anyScaleUp = now
		a.mu.Unlock()
		a.metrics.ScaleUps.WithLabelValues(g.Name).Inc()
		a.metrics.ScaledUpNodes.WithLabelValues(g.Name).Add(float64(missing))
		gs.target += missing
		grew = true
	}
	return grew
}

// scaleDown plans on the real nodes (pending pods that fit existing nodes placed first, so their room is kept)
// and starts the removals.
func (a *Autoscaler) scaleDown(ctx context.Context, now time.Time, st *state, scaledUp bool) (scaledown.Plan, error) {
	a.mu.Lock()
	last := a.anyScaleUp
	a.mu.Unlock()
	if scaledUp || (!last.IsZero() && now.Sub(last) < a.cfg.ScaleDownDelayAfterAdd) {
		return scaledown.Plan{}, nil
	}
	a.snap.Fork()
	defer a.snap.Revert()
	// Room for the announced demand and headroom too, so a node added ahead of its pods is not removed before
	// they come.
	keep := append(append([]*corev1.Pod(nil), st.pending...), st.demand.Pods...)
	if a.cfg.ScaleUpForBurstPods {
		keep = append(keep, st.burstDemand()...) // room for the backfill
	}
	if _, err := scaleup.FilterSchedulable(ctx, a.snap, keep); err != nil {
		return scaledown.Plan{}, err
	}
	in := scaledown.Input{Sizes: map[string]scaledown.GroupSize{}, PDBs: st.pdbs, Deleting: a.actuator.Deleting()}
	for _, g := range st.groups {
		// A node whose removal is still under way (draining, deleting) still counts in the target: without
		// subtracting it, the next loop would remove another node and take the group below its minimum.
		target := g.target
		for _, n := range g.nodes {
			if in.Deleting[n] {
				target--
			}
		}
		in.Sizes[g.group.Name] = scaledown.GroupSize{Target: target, Min: int(g.group.Spec.MinSize)}
	}
	for _, c := range st.candidates {
		usage, ok := a.snap.Requested(c.node.Name)
		if !ok {
			continue
		}
		in.Candidates = append(in.Candidates, scaledown.Candidate{Node: c.node, Group: c.group, Pods: a.snap.PodsOn(c.node.Name), Usage: usage})
	}
	plan, err := a.down.Plan(ctx, a.snap, now, in)
	if err != nil {
		return plan, err
	}
	a.metrics.UnneededNodes.Set(float64(len(plan.Unneeded)))
	for _, r := range plan.Remove {
		if gs := st.byName[r.Group.Name]; gs != nil {
			gs.target--
		}
	}
	a.actuator.Start(ctx, plan.Remove)
	return plan, nil
}

func (a *Autoscaler) scaleDownDone(r scaledown.Removal, err error) {
	if err != nil {
		return
	}
	now := time.Now()
	a.mu.Lock()
	a.lastScaleDown[r.Group.Name] = now
	a.mu.Unlock()
	a.metrics.ScaledDownNodes.WithLabelValues(r.Group.Name).Inc()
	a.metrics.LastActivity.WithLabelValues("scaleDown").Set(float64(now.Unix()))
}

// WaitForDrains blocks until started removals finish (tests, shutdown).
func (a *Autoscaler) WaitForDrains() { a.actuator.Wait() }
