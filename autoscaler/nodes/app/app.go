// Package app wires the node autoscaler into a process: clients, providers, event recorder, /metrics and
// health endpoints, and leader election through a Lease so several replicas can run with one active.
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
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/clusterapi"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/externalgrpc"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
)

// Options of a node autoscaler process.
type Options struct {
	Config *rest.Config
	Logger *zap.Logger
	// Namespace of the lease (and the default status ConfigMap namespace).
	Namespace string
	// ServeAddr for /metrics, /healthz, /readyz; empty disables the server.
	ServeAddr   string
	LeaderElect bool
	// Identity in the lease; default hostname.
	Identity string
	// SimProvisioningDelay is the sim provider's default delay.
	SimProvisioningDelay time.Duration
	// ExternalGRPCDialOptions secure the externalgrpc provider's connections; empty means plaintext.
	ExternalGRPCDialOptions []grpc.DialOption
	Autoscaler              nodes.Config
}

// LeaseName is the leader-election Lease.
const LeaseName = "tidal-node-autoscaler"

// Run runs the autoscaler until ctx is cancelled.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	client, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	tidal, err := tidalclient.NewForConfig(opts.Config)
	if err != nil {
		return fmt.Errorf("tidal client: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := nodes.NewMetrics(reg)

	var running atomic.Bool // the autoscaler loop is running (this replica leads), for /readyz
	if opts.ServeAddr != "" {
		srv, err := serve(opts.ServeAddr, reg, &running, opts.LeaderElect)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	// Events get their own client, so their writes never wait in the rate limiter behind a scale-up's calls.
	events, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: events.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "tidal-node-autoscaler"})

	if opts.Autoscaler.StatusNamespace == "" {
		opts.Autoscaler.StatusNamespace = opts.Namespace
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	providers := provider.Registry{v1alpha1.ProviderClusterAPI: clusterapi.New(dyn)}
	run := func(ctx context.Context) error {
		as, err := nodes.New(ctx, nodes.Options{
			Client: client, TidalClient: tidal, Providers: providers, Recorder: recorder, Logger: log,
			Metrics: metrics, Config: opts.Autoscaler,
		})
		if err != nil {
			return err
		}
		simProv, err := sim.New(sim.Options{
			Client: client, Nodes: as.Informers().Core().V1().Nodes().Lister(),
			DefaultDelay: opts.SimProvisioningDelay, Logger: log,
		})
		if err != nil {
			return err
		}
		providers[v1alpha1.ProviderSim] = simProv
		grpcProv, err := externalgrpc.New(externalgrpc.Options{
			Nodes: as.Informers().Core().V1().Nodes().Lister(), DialOptions: opts.ExternalGRPCDialOptions,
		})
		if err != nil {
			return err
		}
		defer func() { _ = grpcProv.Close() }()
		providers[v1alpha1.ProviderExternalGRPC] = grpcProv
		if err := as.Start(ctx); err != nil {
			return err
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); simProv.Run(ctx) }()
		running.Store(true)
		log.Info("node autoscaler running", zap.Duration("scanInterval", opts.Autoscaler.ScanInterval))
		as.Run(ctx)
		wg.Wait()
		return nil
	}
	if !opts.LeaderElect {
		return run(ctx)
	}
	id := opts.Identity
	if id == "" {
		if id, err = os.Hostname(); err != nil {
			return fmt.Errorf("leader election identity: %w", err)
		}
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: LeaseName, Namespace: opts.Namespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder},
	}
	var runErr error
	leaderCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	leaderelection.RunOrDie(leaderCtx, leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.Info("became leader", zap.String("identity", id))
				runErr = run(ctx)
				cancel()
			},
			OnStoppedLeading: func() {
				running.Store(false)
				log.Info("stopped leading", zap.String("identity", id))
				cancel()
			},
		},
	})
	if runErr == nil && ctx.Err() == nil {
		return errors.New("lost leader election")
	}
	return runErr
}

// serve starts the HTTP server. /readyz is ok while the loop runs, or always with leader election (a standby
// replica is ready to take over).
func serve(addr string, reg *prometheus.Registry, running *atomic.Bool, leaderElect bool) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !running.Load() && !leaderElect {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %q: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
