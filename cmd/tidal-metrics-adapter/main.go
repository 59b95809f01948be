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
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/pflag"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	operatorapp "github.com/tidalscale/tidal/autoscaler/operator/app"
	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/metricsadapter/app"
	"github.com/tidalscale/tidal/scalers/redis"
)

func main() {
	fs := pflag.NewFlagSet("tidal-metrics-adapter", pflag.ContinueOnError)
	var common tidalapp.Flags
	common.Register(fs, tidalapp.RegisterOptions{WatchNamespace: true})
	var f flags
	f.register(fs)
	serving := cmoptions.NewCustomMetricsAdapterServerOptions()
	// Without --tls-cert-file the server signs its own certificate into --cert-dir, by default a directory
	// relative to the working directory; keep it out of whatever directory the adapter was started in.
	serving.SecureServing.ServerCert.CertDirectory = filepath.Join(os.TempDir(), "tidal-metrics-adapter", "certificates")
	serving.AddFlags(fs)
	tidalapp.Main("metrics-adapter", fs, &common, func(ctx context.Context, env tidalapp.Env) error {
		redis.SetLogger(env.Log) // go-redis logs reconnects through its own global logger
		opts, err := f.options(env, serving, os.Getenv)
		if err != nil {
			return err
		}
		a, err := app.New(opts)
		if err != nil {
			return err
		}
		if f.allInOne && opts.Shard != nil {
			return errors.New("--all-in-one and --sharding are exclusive (the in-process operator reads this replica's poller only)")
		}
		if !f.allInOne {
			return a.Run(ctx)
		}
		return runAllInOne(ctx, a, operatorapp.Options{Config: env.Config, Source: a.Source(), Logger: env.Log.Named("operator"),
			Namespace: common.Namespace, WatchNamespace: common.WatchNamespace, AuthFileRoot: common.AuthFileRoot,
			SecretStoreTTL: common.SecretStoreTTL, Workers: f.workers})
	})
}

// runAllInOne runs the adapter and an operator on its poller in this process until ctx is done or either stops.
func runAllInOne(ctx context.Context, a *app.Adapter, opts operatorapp.Options) error {
	op, err := operatorapp.New(opts)
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
