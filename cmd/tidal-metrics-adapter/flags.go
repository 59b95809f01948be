package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/metricsadapter/app"
	"github.com/tidalscale/tidal/metricsadapter/podmetrics"
	"github.com/tidalscale/tidal/metricsadapter/server"
	"github.com/tidalscale/tidal/metricsadapter/stream"
	"github.com/tidalscale/tidal/scalers/registry"
)

// flags are the adapter's own flags; the shared ones and the serving options add theirs.
type flags struct {
	workers int

	streamAddr, streamCert, streamKey, streamClientCA string

	podMetrics         bool
	podNodeSelector    string
	podDefaultFraction float64
	podScrapeSelector  string
	podScrapeInterval  time.Duration
	podKubeletCAFile   string

	registerAPIServices                  bool
	apiserviceService, apiserviceExtName string
	apiserviceCAFile                     string

	allInOne bool
}

func (f *flags) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.workers, "workers", 4, "concurrent ScaledObject reconciles")
	fs.StringVar(&f.streamAddr, "stream-addr", ":9090", "gRPC sample stream address; empty disables the stream")
	fs.StringVar(&f.streamCert, "stream-tls-cert-file", "", "the stream's serving certificate")
	fs.StringVar(&f.streamKey, "stream-tls-key-file", "", "the stream's serving key")
	fs.StringVar(&f.streamClientCA, "stream-client-ca-file", "", "CA that signs the operator's client certificates")
	fs.BoolVar(&f.podMetrics, "pod-metrics", true, "serve metrics.k8s.io for pods on simulated and virtual nodes")
	fs.StringVar(&f.podNodeSelector, "pod-metrics-node-selector", "type in (kwok,virtual-kubelet)", "label selector of the nodes whose pods get simulated metrics")
	fs.Float64Var(&f.podDefaultFraction, "pod-metrics-default-fraction", podmetrics.DefaultFraction, "usage as a fraction of requests for pods without the "+podmetrics.AnnotationSimUsage+" annotation")
	fs.StringVar(&f.podScrapeSelector, "pod-metrics-scrape-node-selector", podmetrics.DefaultScrapeNodeSelector().String(), "label selector of the served nodes whose kubelet /metrics/resource is scraped for real usage (empty: none, every pod simulated)")
	fs.DurationVar(&f.podScrapeInterval, "pod-metrics-scrape-interval", podmetrics.DefaultScrapeInterval, "interval between kubelet scrapes; CPU is the rate between the last two")
	fs.StringVar(&f.podKubeletCAFile, "pod-metrics-kubelet-ca-file", "", "CA of the kubelets' serving certificates; empty skips verification (virtual nodes default to self-signed certificates)")
	fs.BoolVar(&f.registerAPIServices, "register-apiservices", false, "create or update the APIServices (development: the chart owns them in a cluster)")
	fs.StringVar(&f.apiserviceService, "apiservice-service", "tidal-metrics-adapter", "Service the APIServices point at, in --namespace")
	fs.StringVar(&f.apiserviceExtName, "apiservice-external-name", "", "make that Service an ExternalName to this host (an adapter outside the cluster, e.g. localhost for the dev cluster)")
	fs.StringVar(&f.apiserviceCAFile, "apiservice-ca-file", "", "CA bundle of the serving certificate for the APIServices; empty means insecureSkipTLSVerify")
	fs.BoolVar(&f.allInOne, "all-in-one", false, "also run the operator in this process, sharing the adapter's poller")
}

// options validates the flags into the adapter's Options.
func (f *flags) options(env tidalapp.Env, serving *cmoptions.CustomMetricsAdapterServerOptions) (app.Options, error) {
	if f.workers < 1 {
		return app.Options{}, fmt.Errorf("--workers: must be at least 1, got %d", f.workers)
	}
	opts := app.Options{
		Config: env.Config, Registry: registry.New(), Logger: env.Log, Serving: serving,
		Namespace: env.Flags.Namespace, WatchNamespace: env.Flags.WatchNamespace, AuthFileRoot: env.Flags.AuthFileRoot, SecretStoreTTL: env.Flags.SecretStoreTTL, Workers: f.workers, MetricsAddr: env.Flags.MetricsAddr,
	}
	if f.podMetrics {
		sel, err := labels.Parse(f.podNodeSelector)
		if err != nil {
			return app.Options{}, fmt.Errorf("--pod-metrics-node-selector: %w", err)
		}
		if f.podDefaultFraction <= 0 {
			return app.Options{}, fmt.Errorf("--pod-metrics-default-fraction: must be positive, got %v", f.podDefaultFraction)
		}
		opts.PodMetrics = &podmetrics.Options{NodeSelector: sel, Fraction: f.podDefaultFraction}
		if f.podScrapeSelector != "" {
			scrapeSel, err := labels.Parse(f.podScrapeSelector)
			if err != nil {
				return app.Options{}, fmt.Errorf("--pod-metrics-scrape-node-selector: %w", err)
			}
			if f.podScrapeInterval <= 0 {
				return app.Options{}, fmt.Errorf("--pod-metrics-scrape-interval: must be positive, got %v", f.podScrapeInterval)
			}
			opts.PodMetrics.Scrape = &podmetrics.ScrapeOptions{NodeSelector: scrapeSel, Interval: f.podScrapeInterval, KubeletCAFile: f.podKubeletCAFile}
		}
	}
	if f.streamAddr != "" {
		tlsCfg, err := stream.ServerTLSConfig(stream.TLSFiles{CertFile: f.streamCert, KeyFile: f.streamKey, CAFile: f.streamClientCA})
		if err != nil {
			return app.Options{}, fmt.Errorf("--stream-tls-cert-file/--stream-tls-key-file/--stream-client-ca-file: %w", err)
		}
		opts.Stream = &app.StreamOptions{Addr: f.streamAddr, TLS: tlsCfg}
	}
	if f.registerAPIServices {
		ro := &server.RegisterOptions{
			Namespace: env.Flags.Namespace, Service: f.apiserviceService, Port: int32(serving.SecureServing.BindPort),
			ExternalName: f.apiserviceExtName, PodMetrics: f.podMetrics,
		}
		if f.apiserviceCAFile != "" {
			var err error
			if ro.CABundle, err = os.ReadFile(f.apiserviceCAFile); err != nil {
				return app.Options{}, fmt.Errorf("--apiservice-ca-file: %w", err)
			}
		}
		opts.Register = ro
	}
	return opts, nil
}
