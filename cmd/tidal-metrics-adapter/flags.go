package main

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/internal/shard"
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

	sharding, shardAdvertise, shardIdentity                           string
	shardLeaseDuration, shardRenewDeadline, shardRetryPeriod          time.Duration
	streamPeerCert, streamPeerKey, streamPeerCA, streamPeerServerName string
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
	fs.StringVar(&f.sharding, "sharding", "", `"leases" splits the objects between the adapter's replicas by consistent hashing over their Leases (each polls only its own, and streams the others' samples from them); empty: every replica polls every object`)
	fs.StringVar(&f.shardIdentity, "shard-identity", os.Getenv("POD_NAME"), "this replica's name among the shard members (default $POD_NAME, else the hostname)")
	fs.StringVar(&f.shardAdvertise, "shard-advertise-address", "", "host:port at which the other replicas reach this one's stream (default: $POD_IP and the --stream-addr port)")
	fs.DurationVar(&f.shardLeaseDuration, "shard-lease-duration", shard.DefaultLeaseDuration, "how long a replica stays a member after its Lease's last renewal")
	fs.DurationVar(&f.shardRenewDeadline, "shard-renew-deadline", shard.DefaultRenewDeadline, "how long a replica keeps its objects after the start of its last successful renewal")
	fs.DurationVar(&f.shardRetryPeriod, "shard-retry-period", shard.DefaultRetryPeriod, "interval between Lease renewals")
	fs.StringVar(&f.streamPeerCert, "stream-peer-tls-cert-file", "", "client certificate for the other replicas' streams (default: --stream-tls-cert-file, which then needs the clientAuth usage)")
	fs.StringVar(&f.streamPeerKey, "stream-peer-tls-key-file", "", "its key (default: --stream-tls-key-file)")
	fs.StringVar(&f.streamPeerCA, "stream-peer-ca-file", "", "CA of the other replicas' stream certificates (default: --stream-client-ca-file)")
	fs.StringVar(&f.streamPeerServerName, "stream-peer-server-name", "", "name the other replicas' stream certificates are verified against (they are dialled by IP)")
}

// options validates the flags into the adapter's Options.
func (f *flags) options(env tidalapp.Env, serving *cmoptions.CustomMetricsAdapterServerOptions, getenv func(string) string) (app.Options, error) {
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
	switch f.sharding {
	case "":
	case "leases":
		if opts.Stream == nil {
			return app.Options{}, errors.New("--sharding=leases: needs the stream (--stream-addr)")
		}
		so, err := f.shardOptions(getenv)
		if err != nil {
			return app.Options{}, err
		}
		opts.Shard = so
	default:
		return app.Options{}, fmt.Errorf(`--sharding: want "leases" or empty, got %q`, f.sharding)
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

// shardOptions are the sharding flags' options; getenv reads POD_IP for the default advertised address.
func (f *flags) shardOptions(getenv func(string) string) (*app.ShardOptions, error) {
	advertise := f.shardAdvertise
	if advertise == "" {
		_, port, err := net.SplitHostPort(f.streamAddr)
		if err != nil {
			return nil, fmt.Errorf("--stream-addr: %w", err)
		}
		ip := getenv("POD_IP")
		if ip == "" {
			return nil, errors.New("--sharding=leases: --shard-advertise-address or $POD_IP is required")
		}
		advertise = net.JoinHostPort(ip, port)
	}
	tlsCfg, err := stream.ClientTLSConfig(stream.TLSFiles{
		CertFile: cmp.Or(f.streamPeerCert, f.streamCert), KeyFile: cmp.Or(f.streamPeerKey, f.streamKey),
		CAFile: cmp.Or(f.streamPeerCA, f.streamClientCA), ServerName: f.streamPeerServerName,
	})
	if err != nil {
		return nil, fmt.Errorf("--stream-peer-*: %w", err)
	}
	return &app.ShardOptions{Identity: f.shardIdentity, Advertise: advertise, PeerTLS: tlsCfg,
		LeaseDuration: f.shardLeaseDuration, RenewDeadline: f.shardRenewDeadline, RetryPeriod: f.shardRetryPeriod}, nil
}
