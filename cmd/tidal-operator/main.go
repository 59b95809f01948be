// Command tidal-operator runs the ScaledObject and ScaledJob controllers: it samples triggers in-process (or takes
// samples from the metrics adapter) and scales targets through /scale, to zero and back.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/autoscaler/operator/app"
	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/scalers/redis"
	"github.com/tidalscale/tidal/scalers/registry"
)

func main() {
	fs := flag.NewFlagSet("tidal-operator", flag.ContinueOnError)
	var common tidalapp.Flags
	common.Register(fs, tidalapp.RegisterOptions{LeaderElect: true, WatchNamespace: true})
	workers := fs.Int("workers", 4, "concurrent ScaledObject reconciles")
	sharding := fs.String("sharding", "", `"leases" runs the controllers on every replica, each writing only the objects it owns by consistent hashing over the replicas' Leases (timed by the --leader-elect-* flags); empty means one writer overall (--leader-elect)`)
	shardIdentity := fs.String("shard-identity", os.Getenv("POD_NAME"), "this replica's name among the shard members (default $POD_NAME, else the hostname)")
	capacityRequests := fs.Bool("capacity-requests", true, "publish a CapacityRequest (the demand signal for the node autoscaler) before each scale-up, and for HPAs' scale-ups")
	capacityRequestTTL := fs.Duration("capacity-request-ttl", 0, "how long a CapacityRequest counts after its last refresh (default 2m)")
	var wh webhookFlags
	wh.register(fs)
	var adapter adapterFlags
	adapter.register(fs)
	tidalapp.Main("operator", fs, &common, func(ctx context.Context, env tidalapp.Env) error {
		if *capacityRequestTTL < 0 {
			return fmt.Errorf("--capacity-request-ttl: must not be negative, got %s", *capacityRequestTTL)
		}
		if *workers < 1 {
			return fmt.Errorf("--workers: must be at least 1, got %d", *workers)
		}
		var shard *app.ShardOptions
		switch *sharding {
		case "":
		case "leases":
			shard = &app.ShardOptions{Identity: *shardIdentity, LeaseDuration: common.LeaseDuration,
				RenewDeadline: common.RenewDeadline, RetryPeriod: common.RetryPeriod}
		default:
			return fmt.Errorf(`--sharding: want "leases" or empty, got %q`, *sharding)
		}
		redis.SetLogger(env.Log) // go-redis logs reconnects through its own global logger
		opts := app.Options{
			Config: env.Config, Registry: registry.New(), Metrics: tidalapp.NewRegistry(), Logger: env.Log,
			Namespace: common.Namespace, WatchNamespace: common.WatchNamespace, AuthFileRoot: common.AuthFileRoot, SecretStoreTTL: common.SecretStoreTTL, Workers: *workers, ServeAddr: common.MetricsAddr,
			Election: env.Election(app.LeaseName), Shard: shard,
			NoCapacityRequests: !*capacityRequests, CapacityRequestTTL: *capacityRequestTTL,
		}
		if shard != nil && opts.Election != nil {
			env.Log.Info("--sharding=leases: leader election is off, each object has one writer through its shard")
			opts.Election = nil
		}
		var err error
		if opts.Source, err = adapter.source(ctx, env.Log, opts.Registry, opts.Metrics); err != nil {
			return err
		}
		if opts.Webhook, err = wh.options(); err != nil {
			return err
		}
		op, err := app.New(opts)
		if err != nil {
			return err
		}
		env.Log.Info("operator serving", zap.String("addr", op.Addr()), zap.Bool("leaderElect", opts.Election != nil), zap.String("sharding", *sharding))
		return op.Run(ctx)
	})
}
