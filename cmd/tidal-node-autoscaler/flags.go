package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/backoff"
	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaleup"
)

// autoscalerFlags are the node autoscaler's own flags (cluster-autoscaler's names where they exist).
type autoscalerFlags struct {
	scan             time.Duration
	batchIdle        time.Duration
	batchMax         time.Duration
	qps              float64
	qpsBurst         int
	expanders        string
	priorityCM       string
	maxNodes         int
	maxCores         int64
	maxMemory        string
	provisionTime    time.Duration
	backoffInitial   time.Duration
	backoffMax       time.Duration
	enforceMin       bool
	burst            bool
	scaleDownEnabled bool
	unneeded         time.Duration
	delayAfterAdd    time.Duration
	threshold        float64
	localStorage     bool
	systemPods       bool
	drainTimeout     time.Duration
	selector         string
	grpcCA           string
	grpcCert         string
	grpcKey          string
	simDelay         time.Duration
}

func (f *autoscalerFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.scan, "scan-interval", 10*time.Second, "time between autoscaler loops when no new pod is unschedulable")
	fs.DurationVar(&f.batchIdle, "batch-idle-duration", time.Second, "after a pod becomes unschedulable, start a loop once no other has for this long (0: at once)")
	fs.DurationVar(&f.batchMax, "batch-max-duration", 10*time.Second, "longest wait for a batch of unschedulable pods before a loop starts (0: no bound)")
	fs.Float64Var(&f.qps, "kube-api-qps", 50, "API server requests per second (a scale-up creates or scales many objects at once)")
	fs.IntVar(&f.qpsBurst, "kube-api-burst", 100, "API server request burst")
	fs.StringVar(&f.expanders, "expander", "least-waste", "comma-separated expander chain: least-waste, most-pods, priority, price, random")
	fs.StringVar(&f.priorityCM, "priority-configmap", "", "ConfigMap in --namespace with cluster-autoscaler's priorities for the priority expander")
	fs.IntVar(&f.maxNodes, "max-nodes-total", 0, "cluster-wide node limit for scale-up (0: none)")
	fs.Int64Var(&f.maxCores, "max-cores-total", 0, "cluster-wide CPU cores limit for scale-up (0: none)")
	fs.StringVar(&f.maxMemory, "max-memory-total", "", "cluster-wide memory limit for scale-up, a quantity such as 640Gi (empty: none)")
	fs.DurationVar(&f.provisionTime, "max-node-provision-time", 15*time.Minute, "time after which an unregistered node counts as failed and its group backs off")
	fs.DurationVar(&f.backoffInitial, "initial-node-group-backoff-duration", 5*time.Minute, "first backoff after a failed scale-up")
	fs.DurationVar(&f.backoffMax, "max-node-group-backoff-duration", 30*time.Minute, "longest backoff")
	fs.BoolVar(&f.enforceMin, "enforce-node-group-min-size", false, "grow node groups below spec.minSize even without pending pods")
	fs.BoolVar(&f.burst, "scale-up-for-burst-pods", false, "count pods running on virtual nodes as demand for real nodes")
	fs.BoolVar(&f.scaleDownEnabled, "scale-down-enabled", true, "remove unneeded nodes")
	fs.DurationVar(&f.unneeded, "scale-down-unneeded-time", 10*time.Minute, "how long a node must be unneeded before removal")
	fs.DurationVar(&f.delayAfterAdd, "scale-down-delay-after-add", 10*time.Minute, "no scale-down this long after a scale-up")
	fs.Float64Var(&f.threshold, "scale-down-utilization-threshold", 0.5, "nodes below this CPU and memory request ratio may be removed")
	fs.BoolVar(&f.localStorage, "skip-nodes-with-local-storage", true, "keep nodes running pods with emptyDir or hostPath volumes")
	fs.BoolVar(&f.systemPods, "skip-nodes-with-system-pods", true, "keep nodes running kube-system pods without a PodDisruptionBudget")
	fs.DurationVar(&f.drainTimeout, "max-graceful-termination", 10*time.Minute, "bound on draining one node")
	fs.StringVar(&f.selector, "nodegroup-selector", "", "label selector of the NodeGroups to manage (empty: all)")
	fs.StringVar(&f.grpcCA, "externalgrpc-ca-file", "", "CA bundle to verify externalgrpc servers (enables TLS)")
	fs.StringVar(&f.grpcCert, "externalgrpc-cert-file", "", "client certificate for externalgrpc servers (mTLS)")
	fs.StringVar(&f.grpcKey, "externalgrpc-key-file", "", "client key for externalgrpc servers (mTLS)")
	fs.DurationVar(&f.simDelay, "sim-provisioning-delay", 5*time.Second, "default delay before a sim-provider node appears")
}

// config validates the flags into the autoscaler's configuration.
func (f *autoscalerFlags) config() (nodes.Config, error) {
	if f.threshold <= 0 || f.threshold > 1 {
		return nodes.Config{}, fmt.Errorf("--scale-down-utilization-threshold: want (0, 1], got %v", f.threshold)
	}
	sel, err := labels.Parse(f.selector)
	if err != nil {
		return nodes.Config{}, fmt.Errorf("--nodegroup-selector: %w", err)
	}
	if f.scan <= 0 {
		return nodes.Config{}, fmt.Errorf("--scan-interval: want a positive duration, got %s", f.scan)
	}
	if f.batchIdle < 0 {
		return nodes.Config{}, fmt.Errorf("--batch-idle-duration: want a non-negative duration, got %s", f.batchIdle)
	}
	if f.batchMax < 0 {
		return nodes.Config{}, fmt.Errorf("--batch-max-duration: want a non-negative duration, got %s", f.batchMax)
	}
	// Cluster Autoscaler reads 0 as "no wait"; the library's Config reads 0 as its default and a negative
	// duration as none.
	unneeded, delayAfterAdd := f.unneeded, f.delayAfterAdd
	for _, d := range []struct {
		flag string
		v    *time.Duration
	}{{"--scale-down-unneeded-time", &unneeded}, {"--scale-down-delay-after-add", &delayAfterAdd}} {
		switch {
		case *d.v < 0:
			return nodes.Config{}, fmt.Errorf("%s: want a non-negative duration, got %s", d.flag, *d.v)
		case *d.v == 0:
			*d.v = -1
		}
	}
	if f.qps <= 0 {
		return nodes.Config{}, fmt.Errorf("--kube-api-qps: want a positive number, got %v", f.qps)
	}
	if f.qpsBurst <= 0 {
		return nodes.Config{}, fmt.Errorf("--kube-api-burst: want a positive integer, got %d", f.qpsBurst)
	}
	var memBytes int64
	if f.maxMemory != "" {
		q, err := resource.ParseQuantity(f.maxMemory)
		if err != nil {
			return nodes.Config{}, fmt.Errorf("--max-memory-total: %w", err)
		}
		memBytes = q.Value()
	}
	return nodes.Config{
		ScanInterval:         f.scan,
		Batch:                batch.Window{Idle: f.batchIdle, Max: f.batchMax},
		Limits:               scaleup.Limits{MaxNodes: f.maxNodes, MaxMilliCPU: f.maxCores * 1000, MaxMemory: memBytes},
		Expanders:            strings.Split(f.expanders, ","),
		PriorityConfigMap:    f.priorityCM,
		MaxNodeProvisionTime: f.provisionTime,
		Backoff:              backoff.Options{Initial: f.backoffInitial, Max: f.backoffMax},
		EnforceMinSize:       f.enforceMin,
		ScaleUpForBurstPods:  f.burst,
		ScaleDownDisabled:    !f.scaleDownEnabled,
		ScaleDown: scaledown.Options{
			UnneededTime: unneeded, UtilizationThreshold: f.threshold,
			SkipNodesWithLocalStorage: f.localStorage, SkipNodesWithSystemPods: f.systemPods,
		},
		ScaleDownDelayAfterAdd: delayAfterAdd,
		DrainTimeout:           f.drainTimeout,
		NodeGroupSelector:      sel,
	}, nil
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
