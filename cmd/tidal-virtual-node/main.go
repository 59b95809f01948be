// Command tidal-virtual-node registers a virtual node (virtual-kubelet) that runs the pods scheduled onto it on
// a backend: local processes, Azure Container Instances, or a latency simulation. Pods reach it by tolerating
// virtual-kubelet.io/provider=tidal:NoSchedule. See examples/virtual-node*.yaml.
package main

import (
	"context"

	tidalapp "github.com/tidalscale/tidal/internal/app"
)

func main() {
	var (
		common tidalapp.Flags
		f      flags
	)
	fs := newFlagSet(&common, &f)
	tidalapp.Main("virtual-node", fs, &common, func(ctx context.Context, env tidalapp.Env) error {
		if err := f.validate(); err != nil {
			return err
		}
		return run(ctx, env, f)
	})
}
