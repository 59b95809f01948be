// Package devcluster gives tests a real Kubernetes API: the embedded dev cluster of cmd/tidal-dev (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok-simulated nodes labelled type=kwok).
//
// A test binary uses the cluster named by $TIDAL_KUBECONFIG when set (`make test` starts one tidal-dev for all
// packages). Otherwise the first Get builds ./cmd/tidal-dev (or uses $TIDAL_DEV_BIN), starts it with
// --exit-with-parent, and Main stops it when the tests are done:
//
//	func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }
//
//	func TestScale(t *testing.T) {
//		c := devcluster.Get(t)
//		ns := c.Namespace(t)
//		...
//	}
//
// This package only uses client-go: test binaries must not link k8s.io/kubernetes.
package devcluster

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Environment variables the helper reads.
const (
	// EnvKubeconfig names the kubeconfig of an already running cluster to use instead of starting one.
	EnvKubeconfig = "TIDAL_KUBECONFIG"
	// EnvBinary names a prebuilt tidal-dev binary to start instead of building ./cmd/tidal-dev.
	EnvBinary = "TIDAL_DEV_BIN"
	// EnvVerbose, when non-empty, copies tidal-dev's stderr to the test binary's stderr.
	EnvVerbose = "TIDAL_DEV_VERBOSE"
)

// Shape of the cluster a test binary starts.
const (
	DefaultNodes      = 3
	DefaultNodeCPU    = "4"
	DefaultNodeMemory = "16Gi"
)

// Cluster is a running embedded dev cluster (etcd + kube-apiserver + kube-controller-manager + kube-scheduler
// + kwok simulated nodes labelled type=kwok).
type Cluster struct {
	Kubeconfig string       // path to an admin kubeconfig
	Config     *rest.Config // admin config
	Client     kubernetes.Interface
}

// shared is the cluster of this test binary. Get and Main are called from many tests, and the cluster is
// started once per binary, so this one process-wide value is unavoidable; everything else is passed around.
var shared = &binaryCluster{}

// binaryCluster is the lazily started cluster of one test binary.
type binaryCluster struct {
	once    sync.Once
	cluster *Cluster
	err     error
	proc    *Process // nil when the cluster came from $TIDAL_KUBECONFIG
}

// Get returns the cluster for this test binary: the one named by $TIDAL_KUBECONFIG when set, otherwise it builds
// ./cmd/tidal-dev once and starts it once per test binary (3 nodes, 4 CPU / 16Gi each). Skips nothing: fails t on
// error.
func Get(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		shared.cluster, shared.proc, shared.err = connectOrStart(context.Background())
	})
	if shared.err != nil {
		t.Fatalf("devcluster: %v", shared.err)
	}
	return shared.cluster
}

// Main is for TestMain: os.Exit(devcluster.Main(m)) runs the tests and stops a cluster this binary started.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.proc != nil {
		if err := shared.proc.Stop(time.Minute); err != nil {
			fmt.Fprintf(os.Stderr, "devcluster: stop tidal-dev: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

func connectOrStart(ctx context.Context) (*Cluster, *Process, error) {
	if path := os.Getenv(EnvKubeconfig); path != "" {
		c, err := Connect(path)
		if err != nil {
			return nil, nil, fmt.Errorf("$%s: %w", EnvKubeconfig, err)
		}
		return c, nil, nil
	}
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		buildCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		var err error
		if bin, err = BuildBinary(buildCtx); err != nil {
			return nil, nil, err
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	proc, err := StartProcess(startCtx, bin, "up",
		"--nodes", fmt.Sprint(DefaultNodes),
		"--node-cpu", DefaultNodeCPU,
		"--node-memory", DefaultNodeMemory,
		"--exit-with-parent",
		"--log-level", "warn")
	if err != nil {
		return nil, nil, err
	}
	c, err := Connect(proc.Ready.Kubeconfig)
	if err != nil {
		_ = proc.Stop(time.Minute)
		return nil, nil, err
	}
	return c, proc, nil
}

// Connect returns a Cluster for an existing kubeconfig.
func Connect(kubeconfig string) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %q: %w", kubeconfig, err)
	}
	// Tests create objects in bursts; client-go's default 5 QPS would make them slow, not more realistic.
	cfg.QPS, cfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %q: client: %w", kubeconfig, err)
	}
	return &Cluster{Kubeconfig: kubeconfig, Config: cfg, Client: client}, nil
}

// namespaceNameInvalid matches what may not appear in a namespace name.
var namespaceNameInvalid = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a fresh namespace with a unique name (prefix from t.Name()) and deletes it at t.Cleanup.
// It returns once the namespace's default ServiceAccount exists, so pods can be created in it at once.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: namespacePrefix(t.Name()),
			Labels:       map[string]string{"tidal.dev/test": "true"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("devcluster: create namespace for %s: %v", t.Name(), err)
	}
	name := ns.Name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if t.Failed() {
			c.logNamespace(ctx, t, name)
		}
		policy := metav1.DeletePropagationBackground
		err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
		if err != nil {
			t.Logf("devcluster: delete namespace %q: %v", name, err)
		}
	})
	err = WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("devcluster: namespace %q: default service account: %v", name, err)
	}
	return name
}

// namespacePrefix turns a test name into a GenerateName prefix: lower case, [a-z0-9-], at most 40 characters,
// ending in "-".
func namespacePrefix(testName string) string {
	p := namespaceNameInvalid.ReplaceAllString(strings.ToLower(testName), "-")
	p = strings.Trim(p, "-")
	if len(p) > 40 {
		p = strings.TrimRight(p[:40], "-")
	}
	if p == "" {
		p = "test"
	}
	return p + "-"
}

// WaitFor calls cond at once and then every interval until it returns true (nil), returns an error (that
// error: return false, nil for conditions that are merely not met yet), or ctx ends (ctx's error).
func WaitFor(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
