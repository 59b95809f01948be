// Command tidal-node-autoscaler grows NodeGroups for unschedulable pods and shrinks them when nodes are
// unneeded, with cluster-autoscaler's semantics. Flags → config → app.Run.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/app"
	"github.com/tidalscale/tidal/autoscaler/nodes/backoff"
	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaleup"
	"github.com/tidalscale/tidal/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tidal-node-autoscaler:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("tidal-node-autoscaler", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "path to a kubeconfig; empty means in-cluster")
	namespace := fs.String("namespace", envOr("POD_NAMESPACE", "kube-system"), "namespace of the lease and the status ConfigMap")
	addr := fs.String("metrics-addr", ":8085", "address for /metrics, /healthz and /readyz; empty disables")
	leaderElect := fs.Bool("leader-elect", true, "elect a leader through a Lease so several replicas can run")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	scan := fs.Duration("scan-interval", 10*time.Second, "time between autoscaler loops when no new pod is unschedulable")
	batchIdle := fs.Duration("batch-idle-duration", time.Second, "after a pod becomes unschedulable, start a loop once no other has for this long (0: at once)")
	batchMax := fs.Duration("batch-max-duration", 10*time.Second, "longest wait for a batch of unschedulable pods before a loop starts (0: no bound)")
	qps := fs.Float64("kube-api-qps", 50, "API server requests per second (a scale-up creates or scales many objects at once)")
	burstQPS := fs.Int("kube-api-burst", 100, "API server request burst")
	expanders := fs.String("expander", "least-waste", "comma-separated expander chain: least-waste, most-pods, priority, price, random")
	priorityCM := fs.String("priority-configmap", "", "ConfigMap in --namespace with cluster-autoscaler's priorities for the priority expander")
	maxNodes := fs.Int("max-nodes-total", 0, "cluster-wide node limit for scale-up (0: none)")
	maxCores := fs.Int64("max-cores-total", 0, "cluster-wide CPU cores limit for scale-up (0: none)")
	maxMemory := fs.String("max-memory-total", "", "cluster-wide memory limit for scale-up, a quantity such as 640Gi (empty: none)")
	provisionTime := fs.Duration("max-node-provision-time", 15*time.Minute, "time after which an unregistered node counts as failed and its group backs off")
	backoffInitial := fs.Duration("initial-node-group-backoff-duration", 5*time.Minute, "first backoff after a failed scale-up")
	backoffMax := fs.Duration("max-node-group-backoff-duration", 30*time.Minute, "longest backoff")
	enforceMin := fs.Bool("enforce-node-group-min-size", false, "grow node groups below spec.minSize even without pending pods")
	burst := fs.Bool("scale-up-for-burst-pods", false, "count pods running on virtual nodes as demand for real nodes")
	scaleDownEnabled := fs.Bool("scale-down-enabled", true, "remove unneeded nodes")
	unneeded := fs.Duration("scale-down-unneeded-time", 10*time.Minute, "how long a node must be unneeded before removal")
	delayAfterAdd := fs.Duration("scale-down-delay-after-add", 10*time.Minute, "no scale-down this long after a scale-up")
	threshold := fs.Float64("scale-down-utilization-threshold", 0.5, "nodes below this CPU and memory request ratio may be removed")
	localStorage := fs.Bool("skip-nodes-with-local-storage", true, "keep nodes running pods with emptyDir or hostPath volumes")
	systemPods := fs.Bool("skip-nodes-with-system-pods", true, "keep nodes running kube-system pods without a PodDisruptionBudget")
	drainTimeout := fs.Duration("max-graceful-termination", 10*time.Minute, "bound on draining one node")
	selector := fs.String("nodegroup-selector", "", "label selector of the NodeGroups to manage (empty: all)")
	grpcCA := fs.String("externalgrpc-ca-file", "", "CA bundle to verify externalgrpc servers (enables TLS)")
	grpcCert := fs.String("externalgrpc-cert-file", "", "client certificate for externalgrpc servers (mTLS)")
	grpcKey := fs.String("externalgrpc-key-file", "", "client key for externalgrpc servers (mTLS)")
	showVersion := fs.Bool("version", false, "print the version and commit, then exit")
	simDelay := fs.Duration("sim-provisioning-delay", 5*time.Second, "default delay before a sim-provider node appears")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println(version.String("tidal-node-autoscaler"))
		return nil
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
	if *threshold <= 0 || *threshold > 1 {
		return fmt.Errorf("--scale-down-utilization-threshold: want (0, 1], got %v", *threshold)
	}
	sel, err := labels.Parse(*selector)
	if err != nil {
		return fmt.Errorf("--nodegroup-selector: %w", err)
	}
	if *batchIdle < 0 || *batchMax < 0 {
		return fmt.Errorf("--batch-idle-duration/--batch-max-duration: want non-negative durations, got %s/%s", *batchIdle, *batchMax)
	}
	if *qps <= 0 || *burstQPS <= 0 {
		return fmt.Errorf("--kube-api-qps/--kube-api-burst: want positive values, got %v/%d", *qps, *burstQPS)
	}
	var memBytes int64
	if *maxMemory != "" {
		q, err := resource.ParseQuantity(*maxMemory)
		if err != nil {
			return fmt.Errorf("--max-memory-total: %w", err)
		}
		memBytes = q.Value()
	}
	dialOpts, err := grpcDialOptions(*grpcCA, *grpcCert, *grpcKey)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: *kubeconfig}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burstQPS
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, app.Options{
		Config: cfg, Logger: log, Namespace: *namespace, ServeAddr: *addr, LeaderElect: *leaderElect,
		SimProvisioningDelay: *simDelay, ExternalGRPCDialOptions: dialOpts,
		Autoscaler: nodes.Config{
			ScanInterval:         *scan,
			Batch:                batch.Window{Idle: *batchIdle, Max: *batchMax},
			Limits:               scaleup.Limits{MaxNodes: *maxNodes, MaxMilliCPU: *maxCores * 1000, MaxMemory: memBytes},
			Expanders:            strings.Split(*expanders, ","),
			PriorityConfigMap:    *priorityCM,
			MaxNodeProvisionTime: *provisionTime,
			Backoff:              backoff.Options{Initial: *backoffInitial, Max: *backoffMax},
			EnforceMinSize:       *enforceMin,
			ScaleUpForBurstPods:  *burst,
			ScaleDownDisabled:    !*scaleDownEnabled,
			ScaleDown: scaledown.Options{
				UnneededTime: *unneeded, UtilizationThreshold: *threshold,
				SkipNodesWithLocalStorage: *localStorage, SkipNodesWithSystemPods: *systemPods,
			},
			ScaleDownDelayAfterAdd: *delayAfterAdd,
			DrainTimeout:           *drainTimeout,
			NodeGroupSelector:      sel,
		},
	})
}

// grpcDialOptions builds TLS (or mTLS) credentials for the externalgrpc provider; no CA file means plaintext.
func grpcDialOptions(caFile, certFile, keyFile string) ([]grpc.DialOption, error) {
	if caFile == "" {
		if certFile != "" || keyFile != "" {
			return nil, fmt.Errorf("--externalgrpc-cert-file/--externalgrpc-key-file: need --externalgrpc-ca-file too")
		}
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--externalgrpc-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--externalgrpc-ca-file %q: no PEM certificates", caFile)
	}
	tcfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--externalgrpc-cert-file/--externalgrpc-key-file: %w", err)
		}
		tcfg.Certificates = []tls.Certificate{pair}
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tcfg))}, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
