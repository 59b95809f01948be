package controlplane

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/pflag"
	"k8s.io/component-base/configz"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// schedulerOptions configures runScheduler.
type schedulerOptions struct {
	Kubeconfig string
	CertDir    string
	Listener   net.Listener
	Port       int
}

// componentArgs are the flags the controller manager and the scheduler share: the admin kubeconfig for the API
// server and for delegated authentication and authorization, no leader election, and a loopback secure port.
func componentArgs(kubeconfig string, port int, certDir string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
	}
}

func schedulerArgs(o schedulerOptions) []string {
	return append(componentArgs(o.Kubeconfig, o.Port, o.CertDir), "--profiling=false")
}

// runScheduler builds a kube-scheduler (default profile, all default plugins) from flags without cobra and runs
// it until ctx is done.
func runScheduler(ctx context.Context, o schedulerOptions) error {
	opts := options.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(schedulerArgs(o)); err != nil {
		return fmt.Errorf("kube-scheduler flags: %w", err)
	}
	opts.SecureServing.Listener = o.Listener
	opts.SecureServing.BindPort = o.Port
	if err := opts.ComponentGlobalsRegistry.SetFallback(); err != nil {
		return fmt.Errorf("kube-scheduler feature gates: %w", err)
	}
	cc, sched, err := app.Setup(ctx, opts)
	if err != nil {
		return fmt.Errorf("kube-scheduler setup: %w", err)
	}
	defer configz.Delete("componentconfig")
	err = app.Run(ctx, cc, sched)
	// Run always returns an error ("finished without leader elect") when it stops; only an early stop is one.
	if ctx.Err() != nil {
		return nil
	}
	return err
}
