// Package app wires the node autoscaler into a process: clients, providers, event recorder, /metrics and
// health endpoints, and leader election through a Lease so several replicas can run with one active.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/clusterapi"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/externalgrpc"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	scaffold "github.com/tidalscale/tidal/internal/app"
)

// Options of a node autoscaler process.
type Options struct {
	Config *rest.Config
	Logger *zap.Logger
	// Namespace of the lease (and the default status ConfigMap namespace).
	Namespace string
	// ServeAddr for /metrics, /healthz, /readyz; empty disables the server.
	ServeAddr string
	// Election, when set, runs the autoscaler only while this replica holds the Lease (Namespace defaults to
	// Options.Namespace, Name to LeaseName).
	Election *scaffold.ElectionOptions
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
	reg := scaffold.NewRegistry()
	metrics := nodes.NewMetrics(reg)

	var running atomic.Bool // the autoscaler loop is running (this replica leads), for /readyz
	if opts.ServeAddr != "" {
		// /readyz is ok while the loop runs, or always with leader election (a standby is ready to take over).
		srv, err := scaffold.Listen(opts.ServeAddr, reg, func() error {
			if !running.Load() && opts.Election == nil {
				return errors.New("starting")
			}
			return nil
		})
		if err != nil {
			return err
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Run(sctx) }()
		defer func() { stop(); <-done }()
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
	if opts.Election == nil {
		return run(ctx)
	}
	eo := *opts.Election
	eo.Namespace = cmp.Or(eo.Namespace, opts.Namespace)
	eo.Name = cmp.Or(eo.Name, LeaseName)
	election, err := scaffold.NewElection(client, eo, recorder, log)
	if err != nil {
		return err
	}
	return election.Run(ctx, func(ctx context.Context) error {
		defer running.Store(false)
		return run(ctx)
	})
}
