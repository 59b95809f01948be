// Command tidal-operator runs the ScaledObject controller: it samples triggers in-process (or takes samples from
// the metrics adapter) and scales targets through /scale, to zero and back.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/version"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/stream"
	"github.com/tidalscale/tidal/scalers/redis"
	"github.com/tidalscale/tidal/scalers/registry"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tidal-operator:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("tidal-operator", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "path to a kubeconfig; empty means in-cluster")
	namespace := fs.String("namespace", envOr("POD_NAMESPACE", "tidal-system"), "the operator's namespace (leases, ClusterTriggerAuthentication secrets)")
	workers := fs.Int("workers", 4, "concurrent ScaledObject reconciles")
	addr := fs.String("metrics-addr", ":8080", "address for /metrics, /healthz and /readyz")
	leaderElect := fs.Bool("leader-elect", true, "elect a leader through a Lease so several replicas can run")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	whAddr := fs.String("webhook-addr", ":9443", "TLS address of the validating webhook; empty disables it")
	whHosts := fs.String("webhook-hosts", "tidal-operator.tidal-system.svc", "comma-separated names/IPs for the webhook's serving certificate")
	adapterAddr := fs.String("metrics-adapter-address", "", "host:port of the metrics adapter's sample stream; empty samples triggers in-process")
	adapterCA := fs.String("metrics-adapter-ca", "", "CA bundle that signed the adapter's stream certificate")
	adapterCert := fs.String("metrics-adapter-cert", "", "client certificate for the adapter's stream (mutual TLS)")
	adapterKey := fs.String("metrics-adapter-key", "", "client key for the adapter's stream")
	adapterServerName := fs.String("metrics-adapter-server-name", "", "name expected in the adapter's certificate (default: the address's host)")
	showVersion := fs.Bool("version", false, "print the version and commit, then exit")
	watchNamespace := fs.String("watch-namespace", os.Getenv("WATCH_NAMESPACE"), "only ScaledObjects and ScaledJobs of this namespace; empty watches all")
	whService := fs.String("webhook-service", "tidal-system/tidal-operator:443", "namespace/name:port of the webhook's Service; empty means a URL to the first host")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println(version.String("tidal-operator"))
		return nil
	}
	if *workers < 1 {
		return fmt.Errorf("--workers: must be at least 1, got %d", *workers)
	}
	lvl, err := zapcore.ParseLevel(*level)
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
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: *kubeconfig}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	opts := app.Options{
		Config: cfg, Registry: registry.New(), Metrics: prometheus.NewRegistry(), Logger: log, Namespace: *namespace,
		Workers: *workers, ServeAddr: *addr, LeaderElect: *leaderElect, WatchNamespace: *watchNamespace,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *adapterAddr == "" {
		p, err := poller.Start(ctx, poller.Options{Registry: opts.Registry, Logger: log.Named("poller"), Metrics: opts.Metrics})
		if err != nil {
			return err
		}
		opts.Source = p
	} else {
		tlsCfg, err := stream.ClientTLSConfig(stream.TLSFiles{CertFile: *adapterCert, KeyFile: *adapterKey, CAFile: *adapterCA, ServerName: *adapterServerName})
		if err != nil {
			return fmt.Errorf("--metrics-adapter-cert/key/ca: %w", err)
		}
		client, err := stream.NewClient(stream.ClientOptions{Address: *adapterAddr, TLS: tlsCfg, Name: "tidal-operator", Logger: log.Named("stream")})
		if err != nil {
			return fmt.Errorf("--metrics-adapter-address: %w", err)
		}
		go func() { _ = client.Run(ctx) }()
		opts.Source = client
	}
	if *whAddr != "" {
		wo, err := webhookOptions(*whAddr, *whHosts, *whService)
		if err != nil {
			return err
		}
		opts.Webhook = wo
	}
	op, err := app.New(opts)
	if err != nil {
		return err
	}
	log.Info("starting", zap.String("addr", op.Addr()), zap.Bool("leaderElect", *leaderElect))
	return op.Run(ctx)
}

func webhookOptions(addr, hosts, service string) (*app.WebhookOptions, error) {
	wo := &app.WebhookOptions{Addr: addr}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			wo.Hosts = append(wo.Hosts, h)
		}
	}
	if len(wo.Hosts) == 0 {
		return nil, fmt.Errorf("--webhook-hosts: at least one name is required")
	}
	if service == "" {
		return wo, nil
	}
	nsName, portStr, ok := strings.Cut(service, ":")
	ns, name, ok2 := strings.Cut(nsName, "/")
	port, err := strconv.ParseInt(portStr, 10, 32)
	if !ok || !ok2 || ns == "" || name == "" || err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("--webhook-service: want namespace/name:port, got %q", service)
	}
	p := int32(port)
	wo.Service = &admissionregistrationv1.ServiceReference{Namespace: ns, Name: name, Port: &p}
	return wo, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
