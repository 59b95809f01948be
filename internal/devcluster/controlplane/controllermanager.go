package controlplane

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/component-base/configz"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
)

// controllerManagerOptions configures runControllerManager.
type controllerManagerOptions struct {
	Kubeconfig    string
	PKI           *pkiFiles
	CertDir       string
	Listener      net.Listener
	Port          int
	HPASyncPeriod time.Duration
}

// controllerManagerArgs are the kube-controller-manager flags of the dev cluster. The default controller set runs
// (deployment, replicaset, job, cronjob, horizontalpodautoscaling, garbagecollector, namespace, serviceaccount,
// serviceaccount-token, disruption, endpoints, endpointslice, statefulset, nodelifecycle, ...); the cloud
// controllers are skipped by KCM itself because no --cloud-provider is set. Each controller uses its own
// service-account credentials, as in kubeadm clusters, so the HPA controller reaches the metrics APIs through the
// aggregator with the bootstrap RBAC of system:controller:horizontal-pod-autoscaler.
func controllerManagerArgs(o controllerManagerOptions) []string {
	return append(componentArgs(o.Kubeconfig, o.Port, o.CertDir),
		"--controllers=*",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+o.PKI.ServiceAccountKey,
		"--root-ca-file="+o.PKI.CACert,
		"--cluster-signing-cert-file="+o.PKI.CACert,
		"--cluster-signing-key-file="+o.PKI.CAKey,
		"--horizontal-pod-autoscaler-sync-period="+o.HPASyncPeriod.String(),
		// Controllers create and delete pods in bursts in benchmarks; the default 20 QPS throttles them.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--profiling=false",
	)
}

// runControllerManager builds a kube-controller-manager from flags without cobra and runs it until ctx is done.
// Not applying the component's logging configuration (the process configures klog once) is what lets it share
// the process with the apiserver; see logging.go.
func runControllerManager(ctx context.Context, o controllerManagerOptions) error {
	s, err := options.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("kube-controller-manager options: %w", err)
	}
	all, disabled, aliases := app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases()
	named := s.Flags(all, disabled, aliases)
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range named.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(controllerManagerArgs(o)); err != nil {
		return fmt.Errorf("kube-controller-manager flags: %w", err)
	}
	s.ParsedFlags = &named
	s.SecureServing.Listener = o.Listener
	s.SecureServing.BindPort = o.Port
	if err := s.ComponentGlobalsRegistry.SetFallback(); err != nil {
		return fmt.Errorf("kube-controller-manager feature gates: %w", err)
	}
	c, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return fmt.Errorf("kube-controller-manager config: %w", err)
	}
	defer configz.Delete(app.ConfigzName)
	err = app.Run(ctx, c.Complete())
	if ctx.Err() != nil {
		return nil
	}
	return err
}
