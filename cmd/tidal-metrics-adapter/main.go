// Command tidal-metrics-adapter owns the scalers of every ScaledObject, serves external.metrics.k8s.io from their
// cached samples (and metrics.k8s.io for pods on simulated nodes), and streams samples to the operator over
// mutual-TLS gRPC.
//
// Aggregated-API serving flags are the standard ones (--secure-port, --tls-cert-file, --tls-private-key-file,
// --authentication-kubeconfig, --authorization-kubeconfig, --requestheader-*, ...); without the *-kubeconfig
// flags delegated authentication and authorization use the in-cluster config.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/clientcmd"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	operatorapp "github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/version"
	"github.com/tidalscale/tidal/metricsadapter/app"
	"github.com/tidalscale/tidal/metricsadapter/podmetrics"
	"github.com/tidalscale/tidal/metricsadapter/server"
	"github.com/tidalscale/tidal/metricsadapter/stream"
	"github.com/tidalscale/tidal/scalers/redis"
	"github.com/tidalscale/tidal/scalers/registry"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tidal-metrics-adapter:", err)
		os.Exit(1)
	}
}

// flags are the adapter's own flags; the serving options add theirs.
type flags struct {
	kubeconfig, namespace, level string
	watchNamespace               string
	workers                      int
	metricsAddr                  string

	streamAddr, streamCert, streamKey, streamClientCA string

	podMetrics         bool
	podNodeSelector    string
	podDefaultFraction float64

	register                             bool
	apiserviceService, apiserviceExtName string
	apiserviceCAFile                     string

	allInOne, version bool
}

func run(args []string) error {
	fs := pflag.NewFlagSet("tidal-metrics-adapter", pflag.ContinueOnError)
	var f flags
	fs.StringVar(&f.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig for the adapter's own clients; empty means in-cluster")
	fs.StringVar(&f.namespace, "namespace", envOr("POD_NAMESPACE", "tidal-system"), "the adapter's namespace (ClusterTriggerAuthentication secrets, the APIService's Service)")
	fs.StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&f.workers, "workers", 4, "concurrent ScaledObject reconciles")
	fs.StringVar(&f.metricsAddr, "metrics-addr", ":8080", "plain-HTTP address for /metrics, /healthz and /readyz; empty disables")
	fs.StringVar(&f.streamAddr, "stream-addr", ":9090", "gRPC sample stream address; empty disables the stream")
	fs.StringVar(&f.streamCert, "stream-tls-cert-file", "", "the stream's serving certificate")
	fs.StringVar(&f.streamKey, "stream-tls-key-file", "", "the stream's serving key")
	fs.StringVar(&f.streamClientCA, "stream-client-ca-file", "", "CA that signs the operator's client certificates")
	fs.BoolVar(&f.podMetrics, "pod-metrics", true, "serve metrics.k8s.io for pods on simulated and virtual nodes")
	fs.StringVar(&f.podNodeSelector, "pod-metrics-node-selector", "type in (kwok,virtual-kubelet)", "label selector of the nodes whose pods get simulated metrics")
	fs.Float64Var(&f.podDefaultFraction, "pod-metrics-default-fraction", podmetrics.DefaultFraction, "usage as a fraction of requests for pods without the "+podmetrics.AnnotationSimUsage+" annotation")
	fs.BoolVar(&f.register, "register-apiservices", false, "create or update the APIServices (development: the chart owns them in a cluster)")
	fs.StringVar(&f.apiserviceService, "apiservice-service", "tidal-metrics-adapter", "Service the APIServices point at, in --namespace")
	fs.StringVar(&f.apiserviceExtName, "apiservice-external-name", "", "make that Service an ExternalName to this host (an adapter outside the cluster, e.g. localhost for the dev cluster)")
	fs.StringVar(&f.apiserviceCAFile, "apiservice-ca-file", "", "CA bundle of the serving certificate for the APIServices; empty means insecureSkipTLSVerify")
	fs.BoolVar(&f.allInOne, "all-in-one", false, "also run the operator in this process, sharing the adapter's poller")
	fs.BoolVar(&f.version, "version", false, "print the version and commit, then exit")
	fs.StringVar(&f.watchNamespace, "watch-namespace", os.Getenv("WATCH_NAMESPACE"), "only ScaledObjects and ScaledJobs of this namespace; empty watches all")
	serving := cmoptions.NewCustomMetricsAdapterServerOptions()
	serving.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.version {
		fmt.Println(version.String("tidal-metrics-adapter"))
		return nil
	}
	if f.workers < 1 {
		return fmt.Errorf("--workers: must be at least 1, got %d", f.workers)
	}
	lvl, err := zapcore.ParseLevel(f.level)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	zcfg := zap.NewProductionConfig()
	zcfg.Level = zap.NewAtomicLevelAt(lvl)
	log, err := zcfg.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	redis.SetLogger(log) // go-redis logs reconnects through its own global logger

	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: f.kubeconfig}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	opts := app.Options{
		Config: cfg, Registry: registry.New(), Logger: log, Serving: serving,
		Namespace: f.namespace, WatchNamespace: f.watchNamespace, Workers: f.workers, MetricsAddr: f.metricsAddr,
	}
	if f.podMetrics {
		sel, err := labels.Parse(f.podNodeSelector)
		if err != nil {
			return fmt.Errorf("--pod-metrics-node-selector: %w", err)
		}
		if f.podDefaultFraction <= 0 {
			return fmt.Errorf("--pod-metrics-default-fraction: must be positive, got %v", f.podDefaultFraction)
		}
		opts.PodMetrics = &podmetrics.Options{NodeSelector: sel, Fraction: f.podDefaultFraction}
	}
	if f.streamAddr != "" {
		tlsCfg, err := stream.ServerTLSConfig(stream.TLSFiles{CertFile: f.streamCert, KeyFile: f.streamKey, CAFile: f.streamClientCA})
		if err != nil {
			return fmt.Errorf("--stream-tls-cert-file/--stream-tls-key-file/--stream-client-ca-file: %w", err)
		}
		opts.Stream = &app.StreamOptions{Addr: f.streamAddr, TLS: tlsCfg}
	}
	if f.register {
		ro := &server.RegisterOptions{
			Namespace: f.namespace, Service: f.apiserviceService, Port: int32(serving.SecureServing.BindPort),
			ExternalName: f.apiserviceExtName, PodMetrics: f.podMetrics,
		}
		if f.apiserviceCAFile != "" {
			if ro.CABundle, err = os.ReadFile(f.apiserviceCAFile); err != nil {
				return fmt.Errorf("--apiservice-ca-file: %w", err)
			}
		}
		opts.Register = ro
	}
	a, err := app.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !f.allInOne {
		return a.Run(ctx)
	}
	op, err := operatorapp.New(operatorapp.Options{Config: cfg, Source: a.Source(), Logger: log.Named("operator"), Namespace: f.namespace, WatchNamespace: f.watchNamespace, Workers: f.workers})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = a.Run(ctx); cancel() })
	wg.Go(func() { errs[1] = op.Run(ctx); cancel() })
	wg.Wait()
	return errors.Join(errs...)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
