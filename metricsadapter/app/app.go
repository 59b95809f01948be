// Package app assembles the Tidal metrics adapter: the poller that owns the scalers of every ScaledObject and
// ScaledJob, the controllers that feed it from the cluster's objects, the aggregated API server (external.metrics.k8s.io
// from the poller's cache, metrics.k8s.io for simulated pods), the gRPC sample stream to the operator, and the
// /metrics, /healthz and /readyz endpoints. cmd/tidal-metrics-adapter is a thin flag parser around Run, and
// tests start the same Run in-process against the dev cluster.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalinformers "github.com/tidalscale/tidal/api/client/informers/externalversions"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores"
	scaffold "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/internal/controller"
	"github.com/tidalscale/tidal/internal/shard"
	"github.com/tidalscale/tidal/metricsadapter/external"
	"github.com/tidalscale/tidal/metricsadapter/objects"
	"github.com/tidalscale/tidal/metricsadapter/podmetrics"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/server"
	"github.com/tidalscale/tidal/metricsadapter/stream"
	"github.com/tidalscale/tidal/scalers"
)

// StreamOptions configures the gRPC sample stream.
type StreamOptions struct {
	// Addr is the listen address (":0" picks a port, see Adapter.StreamAddr).
	Addr string
	// TLS is the server side of mutual TLS (stream.ServerTLSConfig).
	TLS *tls.Config
}

// Options configures the adapter. Config, Registry and Serving are required.
type Options struct {
	Config   *rest.Config
	Registry *scalers.Registry
	Logger   *zap.Logger
	// Serving are the aggregated API server's options (secure serving, delegated authn/authz).
	Serving *cmoptions.CustomMetricsAdapterServerOptions
	// Namespace is where ClusterTriggerAuthentication secrets live (the operator's namespace).
	Namespace string
	// WatchNamespace limits the adapter to ScaledObjects and ScaledJobs of one namespace; empty watches all.
	WatchNamespace string
	// AuthFileRoot is where ClusterTriggerAuthentication spec.filePath is read (--filepath-auth-root-path).
	AuthFileRoot string
	// SecretStoreTTL is how long parameters read from external secret stores are used (--secret-store-ttl;
	// stores.DefaultTTL when 0).
	SecretStoreTTL time.Duration
	// Workers is the number of concurrent ScaledObject reconciles (default 4).
	Workers int
	// Poller tunes the poller; Registry, Logger and Metrics are set by the adapter.
	Poller poller.Options
	// PodMetrics, when set, serves metrics.k8s.io for pods on simulated nodes.
	PodMetrics *podmetrics.Options
	// Stream, when set, serves the sample stream to the operator.
	Stream *StreamOptions
	// MetricsAddr serves /metrics, /healthz and /readyz over plain HTTP ("" disables; ":0" picks a port).
	MetricsAddr string
	// Register, when set, creates or updates the APIServices (and an ExternalName Service) once serving.
	Register *server.RegisterOptions
	// Shard, when set, splits the objects between the adapter's replicas (see ShardOptions).
	Shard *ShardOptions
}

// Adapter is a built metrics adapter; Run starts it.
type Adapter struct {
	opts     Options
	log      *zap.Logger
	kube     kubernetes.Interface
	agg      aggregator.Interface
	registry *prometheus.Registry
	poller   *poller.Poller
	stream   *stream.Server
	shared   *sharedSource
	soCtl    *objects.Controller
	sjCtl    *objects.Controller
	tidalInf tidalinformers.SharedInformerFactory
	kubeInf  informers.SharedInformerFactory
	api      *server.Server
	members  *shard.Membership // nil unless sharded
	sharded  *sharded

	streamListener net.Listener
	server         *scaffold.Server
	running        atomic.Bool
}

// New validates options, builds clients and every component, and opens the listeners.
func New(opts Options) (*Adapter, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("metrics adapter: a Kubernetes client config is required")
	case opts.Registry == nil:
		return nil, errors.New("metrics adapter: a scaler registry is required")
	case opts.Serving == nil:
		return nil, errors.New("metrics adapter: serving options are required")
	case opts.Stream != nil && opts.Stream.TLS == nil:
		return nil, errors.New("metrics adapter: stream: TLS is required (the stream is mutual TLS)")
	case opts.Shard != nil && (opts.Stream == nil || opts.Shard.PeerTLS == nil || opts.Shard.Advertise == ""):
		return nil, errors.New("metrics adapter: sharding needs the stream, an advertised stream address and the peers' client TLS")
	}
	opts.Logger, opts.Workers, opts.Namespace = scaffold.Defaults(opts.Logger, opts.Workers, opts.Namespace)
	cfg := scaffold.ClientConfig(opts.Config, 100, 200)
	a := &Adapter{opts: opts, log: opts.Logger}
	var err error
	if a.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("metrics adapter: kubernetes client: %w", err)
	}
	if a.agg, err = aggregator.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("metrics adapter: aggregator client: %w", err)
	}
	tc, err := tidalclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metrics adapter: tidal client: %w", err)
	}
	a.registry = scaffold.NewRegistry()

	po := opts.Poller
	po.Registry, po.Logger, po.Metrics = opts.Registry, opts.Logger.Named("poller"), a.registry
	if a.poller, err = poller.New(po); err != nil {
		return nil, fmt.Errorf("metrics adapter: %w", err)
	}

	a.tidalInf = tidalinformers.NewSharedInformerFactoryWithOptions(tc, 10*time.Minute, tidalinformers.WithNamespace(opts.WatchNamespace))
	soInf := a.tidalInf.Tidal().V1alpha1().ScaledObjects()
	targets, err := scaletarget.New(cfg, "tidal-metrics-adapter") // reads only: the adapter never writes /scale
	if err != nil {
		return nil, fmt.Errorf("metrics adapter: %w", err)
	}
	resolver := &triggers.Resolver{Kube: a.kube, Tidal: tc, ClusterObjectNamespace: opts.Namespace, FileRoot: opts.AuthFileRoot,
		Identity: identity.FromEnvironment(a.kube, opts.Logger, opts.Namespace, os.Getenv),
		Stores:   stores.NewCache(opts.SecretStoreTTL, nil)}
	a.shared = newSharedSource(a.poller)
	observer := observers{a.shared}
	// cacheView is what external.metrics.k8s.io and the operators' streams read: every object.
	var cacheView interface {
		external.Cache
		stream.Source
	} = a.poller
	var owns func(string) bool
	if so := opts.Shard; so != nil {
		a.members, err = shard.New(shard.Options{Client: a.kube, Namespace: opts.Namespace, Group: ShardGroup, Identity: so.Identity,
			LeaseDuration: so.LeaseDuration, RenewDeadline: so.RenewDeadline, RetryPeriod: so.RetryPeriod, Logger: opts.Logger,
			Annotations: map[string]string{AnnotationStreamAddress: so.Advertise}, OnChange: a.membershipChanged})
		if err != nil {
			return nil, fmt.Errorf("metrics adapter: %w", err)
		}
		a.sharded = newSharded(a.poller, a.members, so.PeerTLS, opts.Logger.Named("peers"))
		cacheView, owns = a.sharded, a.members.Owns
		observer = append(observer, a.sharded) // forgets a deleted object's relay stamps
	}
	if opts.Stream != nil {
		if a.stream, err = stream.NewServer(stream.ServerOptions{Source: cacheView, PeerSource: a.poller, Logger: opts.Logger.Named("stream"), Metrics: a.registry}); err != nil {
			return nil, fmt.Errorf("metrics adapter: %w", err)
		}
		observer = append(observer, a.stream)
	}
	runtimeMetrics := controller.NewMetrics(a.registry, "metrics_adapter")
	soLog := opts.Logger.Named("scaledobjects")
	a.soCtl, err = objects.New(objects.Options{
		Kind: samples.KindScaledObject, Informer: soInf.Informer(), Poller: a.poller, Observer: observer, Logger: soLog, Metrics: runtimeMetrics, Owns: owns,
		Get: func(ns, name string) (metav1.Object, error) {
			so, err := soInf.Lister().ScaledObjects(ns).Get(name)
			if err != nil {
				return nil, err
			}
			return so, nil
		},
		Build: func(ctx context.Context, obj metav1.Object) (samples.ObjectSpec, error) {
			return usable(triggers.ForScaledObject(ctx, obj.(*tidalv1alpha1.ScaledObject), targets, resolver, soLog))(soLog, obj)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("metrics adapter: %w", err)
	}
	sjInf := a.tidalInf.Tidal().V1alpha1().ScaledJobs()
	sjLog := opts.Logger.Named("scaledjobs")
	a.sjCtl, err = objects.New(objects.Options{
		Kind: samples.KindScaledJob, Informer: sjInf.Informer(), Poller: a.poller, Observer: observer, Logger: sjLog, Metrics: runtimeMetrics, Owns: owns,
		Get: func(ns, name string) (metav1.Object, error) {
			sj, err := sjInf.Lister().ScaledJobs(ns).Get(name)
			if err != nil {
				return nil, err
			}
			return sj, nil
		},
		Build: func(ctx context.Context, obj metav1.Object) (samples.ObjectSpec, error) {
			return usable(triggers.ForScaledJob(ctx, obj.(*tidalv1alpha1.ScaledJob), resolver, sjLog))(sjLog, obj)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("metrics adapter: %w", err)
	}
	provider, err := external.New(external.Options{Cache: cacheView, Lister: soInf.Lister(), Logger: opts.Logger.Named("external"), Metrics: a.registry})
	if err != nil {
		return nil, fmt.Errorf("metrics adapter: %w", err)
	}

	a.kubeInf = informers.NewSharedInformerFactory(a.kube, 10*time.Minute)
	var pm *podmetrics.Options
	if opts.PodMetrics != nil {
		o := *opts.PodMetrics
		if o.Logger == nil {
			o.Logger = opts.Logger.Named("podmetrics")
		}
		// Requested before the server starts the factory.
		o.Pods = a.kubeInf.Core().V1().Pods().Lister()
		o.Nodes = a.kubeInf.Core().V1().Nodes().Lister()
		pm = &o
	}
	a.api, err = server.New(server.Options{
		Serving: opts.Serving, ClientConfig: cfg, Informers: a.kubeInf, External: provider, PodMetrics: pm,
		ReadyChecks: []server.ReadyCheck{{Name: "tidal-scaledobjects-synced", Check: a.readyCheck}},
	})
	if err != nil {
		return nil, err
	}
	if opts.Stream != nil {
		if a.streamListener, err = net.Listen("tcp", opts.Stream.Addr); err != nil {
			return nil, fmt.Errorf("metrics adapter: stream listen %s: %w", opts.Stream.Addr, err)
		}
	}
	if opts.MetricsAddr != "" {
		if a.server, err = scaffold.Listen(opts.MetricsAddr, a.registry, func() error { return a.readyCheck(nil) }); err != nil {
			if a.streamListener != nil {
				_ = a.streamListener.Close()
			}
			return nil, fmt.Errorf("metrics adapter: %w", err)
		}
	}
	return a, nil
}

// membershipChanged re-checks every object's ownership and the peers streamed from.
func (a *Adapter) membershipChanged() {
	a.soCtl.EnqueueAll()
	a.sjCtl.EnqueueAll()
	a.sharded.syncPeers()
	a.log.Info("shard membership changed", zap.Strings("members", a.members.Members()), zap.Bool("claiming", a.members.Claiming()),
		zap.Int("ownedScaledObjects", a.soCtl.Owned()), zap.Int("ownedScaledJobs", a.sjCtl.Owned()))
}

// Members is the adapter's shard membership, nil unless sharded.
func (a *Adapter) Members() *shard.Membership { return a.members }

// Owned is the number of ScaledObjects and ScaledJobs this replica polls.
func (a *Adapter) Owned() int { return a.soCtl.Owned() + a.sjCtl.Owned() }

// Poller is the adapter's poller (for an all-in-one process, see Source).
func (a *Adapter) Poller() *poller.Poller { return a.poller }

// StreamAddr is the sample stream's address, or "".
func (a *Adapter) StreamAddr() string {
	if a.streamListener == nil {
		return ""
	}
	return a.streamListener.Addr().String()
}

// MetricsAddr is the /metrics, /healthz and /readyz address, or "".
func (a *Adapter) MetricsAddr() string {
	if a.server == nil {
		return ""
	}
	return a.server.Addr()
}

// Prometheus is the adapter's metrics registry.
func (a *Adapter) Prometheus() *prometheus.Registry { return a.registry }

func (a *Adapter) readyCheck(*http.Request) error {
	if !a.running.Load() || !a.soCtl.HasSynced() || !a.sjCtl.HasSynced() {
		return errors.New("ScaledObject and ScaledJob informers not synced")
	}
	return nil
}

// Run serves everything until ctx is done, then stops every component and waits for them.
func (a *Adapter) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	errs := make(chan error, 8)
	wg.Go(func() {
		if err := a.poller.Run(ctx); err != nil {
			errs <- fmt.Errorf("poller: %w", err)
		}
	})
	a.tidalInf.Start(ctx.Done())
	defer a.tidalInf.Shutdown()
	claiming := make(chan struct{})
	if a.members != nil {
		// The membership outlives ctx by its release (it deletes its Lease so the others take over at once); the
		// peers' streams stop with ctx.
		mctx, mcancel := context.WithCancel(context.WithoutCancel(ctx))
		var mwg sync.WaitGroup
		mwg.Go(func() { _ = a.members.Run(mctx) })
		defer mwg.Wait()
		defer mcancel()
		wg.Go(func() { a.sharded.run(ctx) })
		// The controllers start once this replica may claim objects, so their first pass installs what it owns
		// (the stream serves only after that pass).
		wg.Go(func() {
			defer close(claiming)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for !a.members.Claiming() {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	} else {
		close(claiming)
	}
	for _, ctl := range []*objects.Controller{a.soCtl, a.sjCtl} {
		wg.Go(func() {
			select {
			case <-claiming:
			case <-ctx.Done():
				return
			}
			if err := ctl.Run(ctx, a.opts.Workers); err != nil && ctx.Err() == nil {
				errs <- err
			}
		})
	}
	if a.stream != nil {
		g := stream.NewGRPCServer(a.opts.Stream.TLS, a.stream)
		wg.Go(func() {
			// Serve only once every object of the initial lists is installed: a snapshot of a cache still
			// filling would tell the operator less than it knows.
			for _, ctl := range []*objects.Controller{a.soCtl, a.sjCtl} {
				select {
				case <-ctl.Synced():
				case <-ctx.Done():
					_ = a.streamListener.Close()
					return
				}
			}
			a.log.Info("objects synced, serving the sample stream")
			if err := g.Serve(a.streamListener); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("stream server: %w", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			// Stop, not GracefulStop: watch streams never end on their own.
			g.Stop()
		})
	}
	if a.server != nil {
		wg.Go(func() {
			if err := a.server.Run(ctx); err != nil {
				errs <- err
			}
		})
	}
	if a.opts.Register != nil {
		wg.Go(func() { a.register(ctx) })
	}
	a.running.Store(true)
	defer a.running.Store(false)
	wg.Go(func() {
		if err := a.api.Run(ctx); err != nil && ctx.Err() == nil {
			errs <- fmt.Errorf("api server: %w", err)
		}
	})
	a.log.Info("metrics adapter started", zap.String("stream", a.StreamAddr()), zap.String("metrics", a.MetricsAddr()))
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		a.log.Error("metrics adapter component failed, stopping", zap.Error(err))
		return err
	}
}

// register applies the APIServices, retrying until it succeeds or ctx ends.
func (a *Adapter) register(ctx context.Context) {
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		err := server.Register(ctx, a.kube, a.agg, *a.opts.Register)
		if err == nil {
			a.log.Info("APIServices registered", zap.String("service", a.opts.Register.Namespace+"/"+a.opts.Register.Service))
			return
		}
		a.log.Warn("registering APIServices failed, retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// usable installs a spec resolved with a *triggers.DegradedError (an external secret store failed and its last
// values are used; the operator reports it on the object), logging the error, which names the field and never a
// value.
func usable(spec samples.ObjectSpec, err error) func(*zap.Logger, metav1.Object) (samples.ObjectSpec, error) {
	return func(log *zap.Logger, obj metav1.Object) (samples.ObjectSpec, error) {
		if triggers.IsDegraded(err) {
			log.Warn("secret store degraded", zap.String("object", obj.GetNamespace()+"/"+obj.GetName()), zap.String("error", err.Error()))
			return spec, nil
		}
		return spec, err
	}
}
