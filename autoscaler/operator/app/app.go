// Package app assembles the Tidal operator: clients, informers, the controllers, leader election and the
// /metrics, /healthz and /readyz endpoints. The sample source (the metrics adapter's stream client, or a poller
// in the same process) is chosen and run by the caller: cmd/tidal-operator is a thin flag parser around Run, and
// tests start the same Run in-process against the dev cluster.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalscheme "github.com/tidalscale/tidal/api/client/clientset/versioned/scheme"
	tidalinformers "github.com/tidalscale/tidal/api/client/informers/externalversions"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledjob"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledobject"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/scalers"
)

// Options configures the operator.
type Options struct {
	Config *rest.Config
	// Source supplies the samples (required): the metrics adapter's stream client, or a poller the caller runs.
	Source samples.Source
	// Registry builds scalers for the webhook's validation; required with Webhook.
	Registry *scalers.Registry
	// Metrics is the registry /metrics serves; the caller may register its source's collectors in it. A new one
	// when nil.
	Metrics *prometheus.Registry
	Logger  *zap.Logger
	// Namespace is the operator's own namespace: ClusterTriggerAuthentication secrets and the leader lease live
	// there.
	Namespace string
	// WatchNamespace limits the operator to ScaledObjects and ScaledJobs of one namespace (KEDA's
	// WATCH_NAMESPACE); empty watches all namespaces.
	WatchNamespace string
	// Workers is the number of concurrent ScaledObject reconciles (default 4).
	Workers int
	// ServeAddr serves /metrics, /healthz and /readyz ("" disables; ":0" picks a port, see Operator.Addr).
	ServeAddr string
	// LeaderElect turns on leader election through a Lease named LeaseName in Namespace.
	LeaderElect   bool
	LeaseName     string
	Identity      string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Webhook, when set, serves the validating admission webhook and registers it.
	Webhook *WebhookOptions
}

// Operator is a running operator.
type Operator struct {
	opts     Options
	log      *zap.Logger
	kube     kubernetes.Interface
	tidal    tidalclient.Interface
	registry *prometheus.Registry
	metrics  *operator.Metrics
	leading  atomic.Bool
	synced   atomic.Bool
	listener net.Listener
	whListen net.Listener
}

// New validates options and builds clients; Run starts everything.
func New(opts Options) (*Operator, error) {
	if opts.Config == nil {
		return nil, errors.New("operator: a Kubernetes client config is required")
	}
	if opts.Source == nil {
		return nil, errors.New("operator: a sample source is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Namespace == "" {
		opts.Namespace = "tidal-system"
	}
	if opts.LeaseName == "" {
		opts.LeaseName = "tidal-operator"
	}
	if opts.Identity == "" {
		host, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewDeadline == 0 {
		opts.RenewDeadline = 10 * time.Second
	}
	if opts.RetryPeriod == 0 {
		opts.RetryPeriod = 2 * time.Second
	}
	cfg := rest.CopyConfig(opts.Config)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 200, 400
	}
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
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o := &Operator{opts: opts, log: opts.Logger, kube: kube, tidal: tc, registry: reg, metrics: operator.NewMetrics(reg)}
	o.opts.Config = cfg
	if opts.ServeAddr != "" {
		l, err := net.Listen("tcp", opts.ServeAddr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", opts.ServeAddr, err)
		}
		o.listener = l
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
	if o.listener == nil {
		return ""
	}
	return o.listener.Addr().String()
}

// Leading reports whether this replica currently holds the lease (always true without leader election once
// running).
func (o *Operator) Leading() bool { return o.leading.Load() }

// Run serves the endpoints and runs the controllers (under leader election when enabled) until ctx is done.
func (o *Operator) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if o.listener != nil {
		srv := &http.Server{Handler: o.handler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(o.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				o.log.Error("metrics/health server stopped", zap.Error(err))
			}
		}()
		go func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	if o.whListen != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.serveWebhook(ctx, o.whListen); err != nil {
				o.log.Error("webhook stopped", zap.Error(err))
			}
		}()
	}
	if !o.opts.LeaderElect {
		o.leading.Store(true)
		return o.runControllers(ctx)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.opts.Namespace, o.opts.LeaseName,
		o.kube.CoreV1(), o.kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: o.opts.Identity})
	if err != nil {
		return fmt.Errorf("leader election lock: %w", err)
	}
	// The elector runs OnStartedLeading in a goroutine of its own and does not wait for it: collect its result.
	var started atomic.Bool
	done := make(chan error, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.opts.LeaseDuration,
		RenewDeadline:   o.opts.RenewDeadline,
		RetryPeriod:     o.opts.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.opts.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				o.log.Info("became leader", zap.String("identity", o.opts.Identity))
				started.Store(true)
				o.leading.Store(true)
				done <- o.runControllers(lctx)
			},
			OnStoppedLeading: func() {
				o.leading.Store(false)
				o.log.Info("stopped leading", zap.String("identity", o.opts.Identity))
				cancel()
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(ctx)
	cancel()
	if started.Load() {
		return <-done
	}
	return nil
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
	factory := tidalinformers.NewSharedInformerFactoryWithOptions(o.tidal, 10*time.Minute, tidalinformers.WithNamespace(o.opts.WatchNamespace))
	soInformer := factory.Tidal().V1alpha1().ScaledObjects()
	soc, err := scaledobject.New(scaledobject.Options{
		Kube: o.kube, Tidal: o.tidal,
		Informer: soInformer.Informer(), Lister: soInformer.Lister(),
		Targets:  targets,
		Resolver: &triggers.Resolver{Kube: o.kube, Tidal: o.tidal, ClusterObjectNamespace: o.opts.Namespace},
		Source:   source, Recorder: recorder, Logger: o.log, Metrics: o.metrics,
	})
	if err != nil {
		return err
	}
	sjInformer := factory.Tidal().V1alpha1().ScaledJobs()
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(o.kube, 10*time.Minute, kubeinformers.WithNamespace(o.opts.WatchNamespace),
		kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = scaledjob.LabelScaledJobName }))
	jobInformer := kubeFactory.Batch().V1().Jobs()
	sjc, err := scaledjob.New(scaledjob.Options{
		Kube: o.kube, Tidal: o.tidal,
		Informer: sjInformer.Informer(), Lister: sjInformer.Lister(),
		JobInformer: jobInformer.Informer(), JobLister: jobInformer.Lister(),
		Resolver: &triggers.Resolver{Kube: o.kube, Tidal: o.tidal, ClusterObjectNamespace: o.opts.Namespace},
		Source:   source, Recorder: recorder, Logger: o.log, Metrics: o.metrics,
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	kubeFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer kubeFactory.Shutdown()
	go func() {
		factory.WaitForCacheSync(ctx.Done())
		kubeFactory.WaitForCacheSync(ctx.Done())
		o.synced.Store(ctx.Err() == nil)
	}()
	errs := make(chan error, 2)
	go func() { errs <- soc.Run(ctx, o.opts.Workers) }()
	go func() { errs <- sjc.Run(ctx, max(1, o.opts.Workers/2)) }()
	err = <-errs
	cancel()
	if err2 := <-errs; err == nil {
		err = err2
	}
	return err
}

func (o *Operator) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		// A standby replica is ready: it serves health and waits for the lease.
		if o.leading.Load() && !o.synced.Load() {
			http.Error(w, "informers not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}
