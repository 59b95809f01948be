// Package app assembles the Tidal operator: clients, informers, the controllers, leader election and the
// /metrics, /healthz and /readyz endpoints. The sample source (the metrics adapter's stream client, or a poller
// in the same process) is chosen and run by the caller: cmd/tidal-operator is a thin flag parser around Run, and
// tests start the same Run in-process against the dev cluster.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalscheme "github.com/tidalscale/tidal/api/client/clientset/versioned/scheme"
	tidalinformers "github.com/tidalscale/tidal/api/client/informers/externalversions"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/autoscaler/operator/hpademand"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledjob"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledobject"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores"
	scaffold "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/internal/shard"
	"github.com/tidalscale/tidal/scalers"
)

// Options configures the operator.
type Options struct {
	Config *rest.Config
	// Source supplies the samples (required): the metrics adapter's stream client, or a poller the caller runs.
	Source samples.Source
	// Registry builds scalers for the webhook's validation; required with Webhook.
	Registry *scalers.Registry
	// Metrics is the registry /metrics serves; the caller may register its source's collectors in it. A new
	// scaffold.NewRegistry (with the Go and process collectors) when nil; a caller's registry should come from
	// there too.
	Metrics *prometheus.Registry
	Logger  *zap.Logger
	// Namespace is the operator's own namespace: ClusterTriggerAuthentication secrets and the leader lease live
	// there.
	Namespace string
	// WatchNamespace limits the operator to ScaledObjects and ScaledJobs of one namespace (KEDA's
	// WATCH_NAMESPACE); empty watches all namespaces.
	WatchNamespace string
	// AuthFileRoot is where ClusterTriggerAuthentication spec.filePath is read (--filepath-auth-root-path).
	AuthFileRoot string
	// SecretStoreTTL is how long parameters read from external secret stores are used (--secret-store-ttl;
	// stores.DefaultTTL when 0).
	SecretStoreTTL time.Duration
	// Workers is the number of concurrent ScaledObject reconciles (default 4).
	Workers int
	// ServeAddr serves /metrics, /healthz and /readyz ("" disables; ":0" picks a port, see Operator.Addr).
	ServeAddr string
	// Election, when set, runs the controllers only while this replica holds the Lease (Namespace defaults to
	// Options.Namespace, Name to LeaseName).
	Election *scaffold.ElectionOptions
	// Webhook, when set, serves the validating admission webhook and registers it.
	Webhook *WebhookOptions
	// Shard, when set, runs the controllers on every replica, each writing only the objects it owns by
	// consistent hashing over the replicas' Leases (internal/shard). Exclusive with Election.
	Shard *ShardOptions
	// NoCapacityRequests turns the demand signal off (--capacity-requests=false): no CapacityRequest is written
	// before a scale-up, and HPAs are not watched.
	NoCapacityRequests bool
	// CapacityRequestTTL is how long a CapacityRequest counts after its last refresh (capacity.DefaultTTL when 0).
	CapacityRequestTTL time.Duration
}

// ShardOptions configure sharding on Leases: each replica holds the Lease ShardGroup-Identity in Namespace.
type ShardOptions struct {
	// Identity of this replica; default the hostname (the pod name).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in leader election (internal/shard's defaults when 0).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Now is the membership's clock; time.Now when nil.
	Now func() time.Time
}

// ShardGroup labels the operator replicas' member Leases and prefixes their names.
const ShardGroup = "tidal-operator"

// Operator is a running operator.
type Operator struct {
	opts     Options
	log      *zap.Logger
	kube     kubernetes.Interface
	identity *identity.Provider // spec.podIdentity and boundServiceAccountToken; one token cache per process
	tidal    tidalclient.Interface
	registry *prometheus.Registry
	metrics  *operator.Metrics
	capacity *capacity.Publisher // nil with NoCapacityRequests
	election *scaffold.Election
	leading  atomic.Bool // without election: the controllers run
	synced   atomic.Bool
	server   *scaffold.Server
	whListen net.Listener
	stores   *stores.Cache
}

// LeaseName is the operator's default leader-election Lease.
const LeaseName = "tidal-operator"

// New validates options and builds clients; Run starts everything.
func New(opts Options) (*Operator, error) {
	if opts.Config == nil {
		return nil, errors.New("operator: a Kubernetes client config is required")
	}
	if opts.Source == nil {
		return nil, errors.New("operator: a sample source is required")
	}
	opts.Logger, opts.Workers, opts.Namespace = scaffold.Defaults(opts.Logger, opts.Workers, opts.Namespace)
	cfg := scaffold.ClientConfig(opts.Config, 200, 400)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	tc, err := tidalclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("tidal client: %w", err)
	}
	reg := opts.Metrics
	if reg == nil {
		reg = scaffold.NewRegistry()
	}
	o := &Operator{opts: opts, log: opts.Logger, kube: kube, tidal: tc, registry: reg, metrics: operator.NewMetrics(reg),
		stores: stores.NewCache(opts.SecretStoreTTL, nil)}
	o.identity = identity.FromEnvironment(kube, opts.Logger, opts.Namespace, os.Getenv)
	o.opts.Config = cfg
	if !opts.NoCapacityRequests {
		o.capacity = capacity.New(capacity.Options{Client: tc, TTL: opts.CapacityRequestTTL, FieldManager: operator.FieldManager, Registerer: reg})
	}
	if opts.Election != nil && opts.Shard != nil {
		return nil, errors.New("operator: leader election and sharding are exclusive (sharding already gives each object one writer)")
	}
	if opts.Election != nil {
		eo := *opts.Election
		eo.Namespace = cmp.Or(eo.Namespace, opts.Namespace)
		eo.Name = cmp.Or(eo.Name, LeaseName)
		if o.election, err = scaffold.NewElection(kube, eo, nil, opts.Logger); err != nil {
			return nil, err
		}
	}
	if opts.ServeAddr != "" {
		if o.server, err = scaffold.Listen(opts.ServeAddr, reg, o.ready); err != nil {
			return nil, err
		}
	}
	if opts.Webhook != nil {
		if opts.Registry == nil {
			return nil, errors.New("operator: the webhook needs a scaler registry")
		}
		l, err := net.Listen("tcp", opts.Webhook.Addr)
		if err != nil {
			return nil, fmt.Errorf("webhook listen %s: %w", opts.Webhook.Addr, err)
		}
		o.whListen = l
	}
	return o, nil
}

// Addr is the address /metrics, /healthz and /readyz are served on, or "".
func (o *Operator) Addr() string {
	if o.server == nil {
		return ""
	}
	return o.server.Addr()
}

// Leading reports whether this replica currently holds the lease (always true without leader election once
// running).
func (o *Operator) Leading() bool {
	if o.election != nil {
		return o.election.Leading()
	}
	return o.leading.Load()
}

// ready is /readyz: a standby replica is ready (it serves health and waits for the lease); a leader is ready
// once its informers synced.
func (o *Operator) ready() error {
	if o.Leading() && !o.synced.Load() {
		return errors.New("informers not synced")
	}
	return nil
}

// Run serves the endpoints and runs the controllers (under leader election when enabled) until ctx is done.
func (o *Operator) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if o.server != nil {
		wg.Go(func() {
			if err := o.server.Run(ctx); err != nil {
				o.log.Error("metrics/health server stopped", zap.Error(err))
			}
		})
	}
	if o.whListen != nil {
		wg.Go(func() {
			if err := o.serveWebhook(ctx, o.whListen); err != nil {
				o.log.Error("webhook stopped", zap.Error(err))
			}
		})
	}
	if o.election != nil {
		return o.election.Run(ctx, o.runControllers)
	}
	o.leading.Store(true)
	defer o.leading.Store(false)
	return o.runControllers(ctx)
}

// runControllers runs the controllers until ctx is done.
func (o *Operator) runControllers(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	source := o.opts.Source

	sch := runtime.NewScheme()
	if err := scheme.AddToScheme(sch); err != nil {
		return err
	}
	if err := tidalscheme.AddToScheme(sch); err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: o.kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(sch, corev1.EventSource{Component: "tidal-operator"})

	targets, err := scaletarget.New(o.opts.Config, operator.FieldManager)
	if err != nil {
		return err
	}
	// With sharding, a membership change re-reconciles every object: each replica releases what it lost and
	// takes up what it gained. onChange is set before the membership runs.
	var members *shard.Membership
	var sh operator.Shard
	var onChange func()
	if so := o.opts.Shard; so != nil {
		members, err = shard.New(shard.Options{Client: o.kube, Namespace: o.opts.Namespace, Group: ShardGroup, Identity: so.Identity,
			LeaseDuration: so.LeaseDuration, RenewDeadline: so.RenewDeadline, RetryPeriod: so.RetryPeriod, Now: so.Now,
			Logger: o.log, OnChange: func() { onChange() }})
		if err != nil {
			return err
		}
		sh = members
	}
	factory := tidalinformers.NewSharedInformerFactoryWithOptions(o.tidal, 10*time.Minute, tidalinformers.WithNamespace(o.opts.WatchNamespace))
	soInformer := factory.Tidal().V1alpha1().ScaledObjects()
	deps := operator.Deps{Kube: o.kube, Tidal: o.tidal, Resolver: o.resolver(), Source: source, Recorder: recorder,
		Logger: o.log, Metrics: o.metrics, Shard: sh, Capacity: o.capacity}
	soc, err := scaledobject.New(scaledobject.Options{Deps: deps,
		Informer: soInformer.Informer(), Lister: soInformer.Lister(), Targets: targets})
	if err != nil {
		return err
	}
	sjInformer := factory.Tidal().V1alpha1().ScaledJobs()
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(o.kube, 10*time.Minute, kubeinformers.WithNamespace(o.opts.WatchNamespace),
		kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = scaledjob.LabelScaledJobName }))
	jobInformer := kubeFactory.Batch().V1().Jobs()
	sjc, err := scaledjob.New(scaledjob.Options{Deps: deps,
		Informer: sjInformer.Informer(), Lister: sjInformer.Lister(),
		JobInformer: jobInformer.Informer(), JobLister: jobInformer.Lister()})
	if err != nil {
		return err
	}
	// The demand signal of HPA scale-ups: the operator's own HPAs (mode hpa) and everyone else's.
	var hdc *hpademand.Controller
	hpaFactory := kubeinformers.NewSharedInformerFactoryWithOptions(o.kube, 10*time.Minute, kubeinformers.WithNamespace(o.opts.WatchNamespace))
	if o.capacity != nil {
		hpaInformer := hpaFactory.Autoscaling().V2().HorizontalPodAutoscalers()
		hdc, err = hpademand.New(hpademand.Options{Informer: hpaInformer.Informer(), Lister: hpaInformer.Lister(),
			Targets: targets, Capacity: o.capacity, Logger: o.log, Metrics: o.metrics, Shard: sh})
		if err != nil {
			return err
		}
	}
	if members != nil {
		onChange = func() {
			soc.EnqueueAll()
			sjc.EnqueueAll()
			o.log.Info("shard membership changed", zap.Strings("members", members.Members()), zap.Bool("claiming", members.Claiming()),
				zap.Int("ownedScaledObjects", soc.Owned()), zap.Int("ownedScaledJobs", sjc.Owned()))
		}
		unregister := o.metrics.RegisterShard(members.Members, map[string]func() int{"ScaledObject": soc.Owned, "ScaledJob": sjc.Owned})
		defer unregister()
		var mwg sync.WaitGroup
		mctx, mcancel := context.WithCancel(context.WithoutCancel(ctx))
		mwg.Go(func() { _ = members.Run(mctx) })
		// The membership outlives the controllers: it stops claiming and leaves the group (deleting its Lease,
		// so the others take over at once) only after every worker returned.
		defer mwg.Wait()
		defer mcancel()
	}
	factory.Start(ctx.Done())
	kubeFactory.Start(ctx.Done())
	hpaFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer kubeFactory.Shutdown()
	defer hpaFactory.Shutdown()
	go func() {
		factory.WaitForCacheSync(ctx.Done())
		kubeFactory.WaitForCacheSync(ctx.Done())
		hpaFactory.WaitForCacheSync(ctx.Done())
		o.synced.Store(ctx.Err() == nil)
	}()
	runs := []func() error{
		func() error { return soc.Run(ctx, o.opts.Workers) },
		func() error { return sjc.Run(ctx, max(1, o.opts.Workers/2)) },
	}
	if hdc != nil {
		runs = append(runs, func() error { return hdc.Run(ctx, 1) })
	}
	errs := make(chan error, len(runs))
	for _, run := range runs {
		go func() { errs <- run() }()
	}
	err = <-errs
	cancel()
	for range runs[1:] {
		if err2 := <-errs; err == nil {
			err = err2
		}
	}
	return err
}

// resolver resolves triggers' authentication for the controllers and the webhook (which never reads external
// secret stores). The controllers share one secret store cache.
func (o *Operator) resolver() *triggers.Resolver {
	return &triggers.Resolver{Kube: o.kube, Tidal: o.tidal, ClusterObjectNamespace: o.opts.Namespace, FileRoot: o.opts.AuthFileRoot,
		Identity: o.identity, Stores: o.stores}
}
