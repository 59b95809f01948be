// Command tidal-node-autoscaler grows NodeGroups for unschedulable pods and shrinks them when nodes are
// unneeded, with cluster-autoscaler's semantics. Flags → Options → app.Run.
package main

import (
	"context"
	"flag"

	"github.com/tidalscale/tidal/autoscaler/nodes/app"
	tidalapp "github.com/tidalscale/tidal/internal/app"
)

func main() {
	fs := flag.NewFlagSet("tidal-node-autoscaler", flag.ContinueOnError)
	var common tidalapp.Flags
	common.Register(fs, tidalapp.RegisterOptions{LeaderElect: true, MetricsAddr: ":8085", Namespace: "kube-system"})
	var f autoscalerFlags
	f.register(fs)
	tidalapp.Main("node-autoscaler", fs, &common, func(ctx context.Context, env tidalapp.Env) error {
		cfg, err := f.config()
		if err != nil {
			return err
		}
		dialOpts, err := grpcDialOptions(f.grpcCA, f.grpcCert, f.grpcKey)
		if err != nil {
			return err
		}
		env.Config.QPS, env.Config.Burst = float32(f.qps), f.qpsBurst
		return app.Run(ctx, app.Options{
			Config: env.Config, Logger: env.Log, Namespace: common.Namespace, ServeAddr: common.MetricsAddr,
			Election: env.Election(app.LeaseName), SimProvisioningDelay: f.simDelay,
			ExternalGRPCDialOptions: dialOpts, Autoscaler: cfg,
		})
	})
}
