package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	operatorapp "github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv/inproc"
	adapterapp "github.com/tidalscale/tidal/metricsadapter/app"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/server"
	"github.com/tidalscale/tidal/scalers/registry"
)

// Autoscaler is one contestant: something that, once started, scales the scenario's ScaledObjects.
type Autoscaler interface {
	// Name labels its Run in the result.
	Name() string
	// Mode is the ScaledObject spec.mode its objects get.
	Mode() string
	// Start runs it until stop is called; stop waits for it to end.
	Start(ctx context.Context, c *devcluster.Cluster, namespace string) (stop func(), err error)
}

// tidalDirect is Tidal's operator in this process with its own in-process poller: direct mode.
// noCapacityRequests turns its demand signal off (--capacity-requests=false).
type tidalDirect struct {
	log                *zap.Logger
	noCapacityRequests bool
}

func (tidalDirect) Name() string { return "tidal-direct" }
func (tidalDirect) Mode() string { return "direct" }

func (a tidalDirect) Start(ctx context.Context, c *devcluster.Cluster, namespace string) (func(), error) {
	p, err := poller.New(poller.Options{Registry: registry.New(), Logger: a.log.Named("poller")})
	if err != nil {
		return nil, fmt.Errorf("tidal-direct: %w", err)
	}
	op, err := operatorapp.New(operatorapp.Options{Config: c.Config, Source: p, Logger: a.log.Named("operator"), Namespace: namespace,
		WatchNamespace: namespace, NoCapacityRequests: a.noCapacityRequests})
	if err != nil {
		return nil, fmt.Errorf("tidal-direct: %w", err)
	}
	stopPoller := runInBackground(ctx, a.log, "poller", p.Run)
	stopOperator := runInBackground(ctx, a.log, "operator", op.Run)
	return func() { stopOperator(); stopPoller() }, nil
}

// tidalHPA is Tidal all-in-one in this process: the metrics adapter, registered with the cluster's aggregator
// (an ExternalName Service to localhost), sharing its poller with the operator; ScaledObjects in hpa mode, so
// kube-controller-manager's HPA controller scales on external.metrics.k8s.io.
type tidalHPA struct {
	log    *zap.Logger
	tmpDir string
}

func (tidalHPA) Name() string { return "tidal-hpa" }
func (tidalHPA) Mode() string { return "hpa" }

func (a tidalHPA) Start(ctx context.Context, c *devcluster.Cluster, namespace string) (func(), error) {
	ad, err := startAdapter(ctx, c, a.log, a.tmpDir, namespace)
	if err != nil {
		return nil, err
	}
	op, err := operatorapp.New(operatorapp.Options{Config: c.Config, Source: ad.adapter.Source(), Logger: a.log.Named("operator"), Namespace: namespace, WatchNamespace: namespace})
	if err != nil {
		ad.stop()
		return nil, fmt.Errorf("tidal-hpa: %w", err)
	}
	stopOp := runInBackground(ctx, a.log, "operator", op.Run)
	if err := waitAggregated(ctx, c); err != nil {
		stopOp()
		ad.stop()
		return nil, fmt.Errorf("tidal-hpa: %w", err)
	}
	return func() { stopOp(); ad.stop() }, nil
}

// runningAdapter is an in-process metrics adapter and how to stop it.
type runningAdapter struct {
	adapter *adapterapp.Adapter
	stop    func()
}

const adapterService = "tidal-bench-metrics-adapter"

// startAdapter starts the metrics adapter with self-signed serving certificates in dir, registered with the
// aggregator through an ExternalName Service in namespace. stop also deletes the APIServices.
func startAdapter(ctx context.Context, c *devcluster.Cluster, log *zap.Logger, dir, namespace string) (*runningAdapter, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("metrics adapter: listen: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	serving := cmoptions.NewCustomMetricsAdapterServerOptions()
	serving.SecureServing.Listener = l
	serving.SecureServing.BindPort = port
	serving.SecureServing.ServerCert.CertDirectory = filepath.Join(dir, "adapter-certs")
	if err := serving.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("metrics adapter: self-signed certificate: %w", err)
	}
	serving.Authentication.RemoteKubeConfigFile = c.Kubeconfig
	serving.Authorization.RemoteKubeConfigFile = c.Kubeconfig
	a, err := adapterapp.New(adapterapp.Options{
		Config: c.Config, Registry: registry.New(), Logger: log.Named("adapter"), Serving: serving, Namespace: namespace, WatchNamespace: namespace,
		Register: &server.RegisterOptions{Namespace: namespace, Service: adapterService, Port: int32(port), ExternalName: "localhost"},
	})
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("metrics adapter: %w", err)
	}
	stop := runInBackground(ctx, log, "metrics adapter", a.Run)
	return &runningAdapter{adapter: a, stop: func() {
		stop()
		unregister(c)
	}}, nil
}

// unregister deletes the APIServices so later users of the cluster do not trip over a backend that is gone.
func unregister(c *devcluster.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agg, err := aggregator.NewForConfig(c.Config)
	if err != nil {
		return
	}
	_ = server.Unregister(ctx, agg)
}

// waitAggregated waits until external.metrics.k8s.io answers through the aggregator.
func waitAggregated(ctx context.Context, c *devcluster.Cluster) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	err := devcluster.WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		_, last = c.Client.Discovery().RESTClient().Get().AbsPath("/apis/external.metrics.k8s.io/v1beta1").DoRaw(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("external.metrics.k8s.io never served through the aggregator: %w (last: %v)", err, last)
	}
	return nil
}

// runInBackground runs fn(ctx) in a goroutine (inproc.Start); the returned stop cancels it and waits. A failure
// before stop is logged.
func runInBackground(ctx context.Context, log *zap.Logger, what string, fn func(context.Context) error) func() {
	return inproc.Start(ctx, fn, func(err error) { log.Error(what+" stopped", zap.Error(err)) })
}

// commandAutoscaler is --compare-cmd: a shell command run with KUBECONFIG (and TIDAL_BENCH_NAMESPACE) in its
// environment; it is expected to scale the tidal.dev ScaledObjects the scenario creates.
type commandAutoscaler struct {
	command string
	mode    string
	logDir  string
}

func (commandAutoscaler) Name() string   { return "command" }
func (a commandAutoscaler) Mode() string { return a.mode }

func (a commandAutoscaler) Start(ctx context.Context, c *devcluster.Cluster, namespace string) (func(), error) {
	cmd := exec.Command("/bin/sh", "-c", a.command)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "TIDAL_BENCH_NAMESPACE="+namespace)
	stop, err := startProcess(ctx, cmd, filepath.Join(a.logDir, "compare-cmd.log"))
	if err != nil {
		return nil, fmt.Errorf("--compare-cmd: %w", err)
	}
	return stop, nil
}

// ErrUnavailable marks a scenario whose component has not landed.
var ErrUnavailable = errors.New("component not available")
