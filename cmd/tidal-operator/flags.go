package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/autoscaler/samples"
	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/stream"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/registry"
)

// operatorFlags are the operator's own flags (the common ones are internal/app's).
type operatorFlags struct {
	workers                 int
	sharding, shardIdentity string
	capacityRequests        bool
	capacityRequestTTL      time.Duration
	webhook                 webhookFlags
	adapter                 adapterFlags
}

func (f *operatorFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.workers, "workers", 4, "concurrent ScaledObject reconciles")
	fs.StringVar(&f.sharding, "sharding", "", `"leases" runs the controllers on every replica, each writing only the objects it owns by consistent hashing over the replicas' Leases (timed by the --leader-elect-* flags); empty means one writer overall (--leader-elect)`)
	fs.StringVar(&f.shardIdentity, "shard-identity", os.Getenv("POD_NAME"), "this replica's name among the shard members (default $POD_NAME, else the hostname)")
	fs.BoolVar(&f.capacityRequests, "capacity-requests", true, "publish a CapacityRequest (the demand signal for the node autoscaler) before each scale-up, and for HPAs' scale-ups")
	fs.DurationVar(&f.capacityRequestTTL, "capacity-request-ttl", 0, "how long a CapacityRequest counts after its last refresh (default 2m)")
	f.webhook.register(fs)
	f.adapter.register(fs)
}

// options checks the flags and builds the operator's Options; the sample source (the adapter's stream or an
// in-process poller) starts here and runs until ctx is done.
func (f *operatorFlags) options(ctx context.Context, env tidalapp.Env, common *tidalapp.Flags) (app.Options, error) {
	if f.capacityRequestTTL < 0 {
		return app.Options{}, fmt.Errorf("--capacity-request-ttl: must not be negative, got %s", f.capacityRequestTTL)
	}
	if f.workers < 1 {
		return app.Options{}, fmt.Errorf("--workers: must be at least 1, got %d", f.workers)
	}
	var shard *app.ShardOptions
	switch f.sharding {
	case "":
	case "leases":
		shard = &app.ShardOptions{Identity: f.shardIdentity, LeaseDuration: common.LeaseDuration,
			RenewDeadline: common.RenewDeadline, RetryPeriod: common.RetryPeriod}
	default:
		return app.Options{}, fmt.Errorf(`--sharding: want "leases" or empty, got %q`, f.sharding)
	}
	opts := app.Options{
		Config: env.Config, Registry: registry.New(), Metrics: tidalapp.NewRegistry(), Logger: env.Log,
		Namespace: common.Namespace, WatchNamespace: common.WatchNamespace, AuthFileRoot: common.AuthFileRoot,
		SecretStoreTTL: common.SecretStoreTTL, Workers: f.workers, ServeAddr: common.MetricsAddr,
		Election: env.Election(app.LeaseName), Shard: shard,
		NoCapacityRequests: !f.capacityRequests, CapacityRequestTTL: f.capacityRequestTTL,
	}
	if shard != nil && opts.Election != nil {
		env.Log.Info("--sharding=leases: leader election is off, each object has one writer through its shard")
		opts.Election = nil
	}
	var err error
	if opts.Webhook, err = f.webhook.options(); err != nil {
		return app.Options{}, err
	}
	if opts.Source, err = f.adapter.source(ctx, env.Log, opts.Registry, opts.Metrics); err != nil {
		return app.Options{}, err
	}
	return opts, nil
}

// adapterFlags choose the metrics adapter's sample stream over in-process sampling.
type adapterFlags struct {
	addr, ca, cert, key, serverName string
}

func (f *adapterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "metrics-adapter-address", "", "host:port of the metrics adapter's sample stream; empty samples triggers in-process")
	fs.StringVar(&f.ca, "metrics-adapter-ca", "", "CA bundle that signed the adapter's stream certificate")
	fs.StringVar(&f.cert, "metrics-adapter-cert", "", "client certificate for the adapter's stream (mutual TLS)")
	fs.StringVar(&f.key, "metrics-adapter-key", "", "client key for the adapter's stream")
	fs.StringVar(&f.serverName, "metrics-adapter-server-name", "", "name expected in the adapter's certificate (default: the address's host)")
}

// source is the sample source the flags choose: the adapter's stream when --metrics-adapter-address is set,
// else a poller in this process sampling with reg. Both run until ctx is done.
func (f *adapterFlags) source(ctx context.Context, log *zap.Logger, reg *scalers.Registry, metrics *prometheus.Registry) (samples.Source, error) {
	if f.addr == "" {
		return poller.Start(ctx, poller.Options{Registry: reg, Logger: log.Named("poller"), Metrics: metrics})
	}
	tlsCfg, err := stream.ClientTLSConfig(stream.TLSFiles{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca, ServerName: f.serverName})
	if err != nil {
		return nil, fmt.Errorf("--metrics-adapter-cert/key/ca: %w", err)
	}
	c, err := stream.NewClient(stream.ClientOptions{Address: f.addr, TLS: tlsCfg, Name: "tidal-operator", Logger: log.Named("stream")})
	if err != nil {
		return nil, fmt.Errorf("--metrics-adapter-address: %w", err)
	}
	go func() { _ = c.Run(ctx) }()
	return c, nil
}

// webhookFlags configure the validating admission webhook.
type webhookFlags struct {
	addr, hosts, service string
}

func (f *webhookFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "webhook-addr", ":9443", "TLS address of the validating webhook; empty disables it")
	fs.StringVar(&f.hosts, "webhook-hosts", "tidal-operator.tidal-system.svc", "comma-separated names/IPs for the webhook's serving certificate")
	fs.StringVar(&f.service, "webhook-service", "tidal-system/tidal-operator:443", "namespace/name:port of the webhook's Service; empty means a URL to the first host")
}

// options are the webhook's options, or nil when --webhook-addr is empty.
func (f *webhookFlags) options() (*app.WebhookOptions, error) {
	if f.addr == "" {
		return nil, nil
	}
	wo := &app.WebhookOptions{Addr: f.addr}
	for _, h := range strings.Split(f.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			wo.Hosts = append(wo.Hosts, h)
		}
	}
	if len(wo.Hosts) == 0 {
		return nil, fmt.Errorf("--webhook-hosts: at least one name is required")
	}
	if f.service == "" {
		return wo, nil
	}
	nsName, portStr, ok := strings.Cut(f.service, ":")
	ns, name, ok2 := strings.Cut(nsName, "/")
	port, err := strconv.ParseInt(portStr, 10, 32)
	if !ok || !ok2 || ns == "" || name == "" || err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("--webhook-service: want namespace/name:port, got %q", f.service)
	}
	p := int32(port)
	wo.Service = &admissionregistrationv1.ServiceReference{Namespace: ns, Name: name, Port: &p}
	return wo, nil
}
