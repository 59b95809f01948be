// Command tidal-operator runs the ScaledObject and ScaledJob controllers: it samples triggers in-process (or takes
// samples from the metrics adapter) and scales targets through /scale, to zero and back.
package main

import (
	"context"
	"flag"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/autoscaler/operator/app"
	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/scalers/redis"
)

func main() {
	fs := flag.NewFlagSet("tidal-operator", flag.ContinueOnError)
	var common tidalapp.Flags
	common.Register(fs, tidalapp.RegisterOptions{LeaderElect: true, WatchNamespace: true})
	var f operatorFlags
	f.register(fs)
	tidalapp.Main("operator", fs, &common, func(ctx context.Context, env tidalapp.Env) error {
		redis.SetLogger(env.Log) // go-redis logs reconnects through its own global logger
		opts, err := f.options(ctx, env, &common)
		if err != nil {
			return err
		}
		op, err := app.New(opts)
		if err != nil {
			return err
		}
		env.Log.Info("operator serving", zap.String("addr", op.Addr()), zap.Bool("leaderElect", opts.Election != nil), zap.String("sharding", f.sharding))
		return op.Run(ctx)
	})
}
