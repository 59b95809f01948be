package provider_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

func TestMain(m *testing.M) {
	code := devcluster.Main(m)
	if demoWorker.path != "" {
		_ = os.RemoveAll(filepath.Dir(demoWorker.path))
	}
	os.Exit(code)
}

// waitTimeout is generous: the machine may be busy compiling other packages.
const waitTimeout = 2 * time.Minute

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// startedNode is a virtual node a test runs.
type startedNode struct {
	Name   string
	Node   *provider.VirtualNode
	cancel context.CancelFunc
	done   chan error
}

// startNode runs a virtual node with the backend from newBackend until the test ends, then stops it and
// deletes its Node object.
func startNode(t testing.TB, c *devcluster.Cluster, backendName string, capacity corev1.ResourceList, opts provider.VirtualNodeOptions) *startedNode {
	t.Helper()
	name := opts.Node.Name // a test that needs the name beforehand (a node identity) sets it
	if name == "" {
		name = uniqueName("vk-" + backendName)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if capacity == nil {
		capacity = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100"),
			corev1.ResourceMemory: resource.MustParse("400Gi"),
			corev1.ResourcePods:   resource.MustParse("2000"),
		}
	}
	// The node's own client, as tidal-virtual-node has: the shared test client's 100 QPS would be the
	// bottleneck of a 1,000-pod burst.
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	opts.Client = client
	opts.Listener = l
	opts.Node = provider.NodeOptions{Name: name, Address: "127.0.0.1", Capacity: capacity, Backend: backendName, Version: "v1.37.2-tidal"}
	if opts.Server.Auth == "" {
		opts.Server.Auth = provider.AuthNone
	}
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	vn, err := provider.NewVirtualNode(opts)
	if err != nil {
		t.Fatalf("new virtual node: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sn := &startedNode{Name: name, Node: vn, cancel: cancel, done: make(chan error, 1)}
	go func() { sn.done <- vn.Run(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() { sn.stop(t) })
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		_ = c.Client.CoreV1().Nodes().Delete(dctx, name, metav1.DeleteOptions{})
	})
	rctx, rcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer rcancel()
	if err := vn.WaitReady(rctx); err != nil {
		t.Fatalf("virtual node %s ready: %v", name, err)
	}
	if err := devcluster.WaitNodeSchedulable(rctx, c.Client, name); err != nil {
		t.Fatal(err)
	}
	return sn
}

// stop stops the node and waits for Run to return.
func (sn *startedNode) stop(t testing.TB) {
	sn.cancel()
	select {
	case err := <-sn.done:
		if err != nil {
			t.Errorf("virtual node %s: Run: %v", sn.Name, err)
		}
		sn.done <- nil
	case <-time.After(time.Minute):
		t.Errorf("virtual node %s did not stop within a minute", sn.Name)
	}
}

// tolerations and selector put a pod on one virtual node.
func onNode(spec *corev1.PodSpec, node string) {
	spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
		Key: provider.TaintKey, Operator: corev1.TolerationOpEqual, Value: provider.TaintValue, Effect: corev1.TaintEffectNoSchedule,
	})
}

// buildDemoWorker builds cmd/tidal-demo-worker once per test binary.
var demoWorker struct {
	once sync.Once
	path string
	err  error
}

func demoWorkerBinary(t testing.TB) string {
	t.Helper()
	demoWorker.once.Do(func() {
		dir, err := os.MkdirTemp("", "tidal-demo-worker-")
		if err != nil {
			demoWorker.err = err
			return
		}
		demoWorker.path = filepath.Join(dir, "tidal-demo-worker")
		out, err := exec.Command("go", "build", "-o", demoWorker.path, "github.com/tidalscale/tidal/cmd/tidal-demo-worker").CombinedOutput()
		if err != nil {
			demoWorker.err = &buildError{err: err, out: string(out)}
		}
	})
	if demoWorker.err != nil {
		t.Fatalf("build tidal-demo-worker: %v", demoWorker.err)
	}
	return demoWorker.path
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// scaleDeployment sets a Deployment's replicas with a merge patch (no read-modify-write conflict).
func scaleDeployment(ctx context.Context, t testing.TB, c *devcluster.Cluster, ns, name string, replicas int32) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas))
	if _, err := c.Client.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("scale deployment %s to %d: %v", name, replicas, err)
	}
}

// logsOnceSucceeded creates pod in ns, waits until it Succeeded and returns its logs.
func logsOnceSucceeded(ctx context.Context, t *testing.T, c *devcluster.Cluster, ns string, pod *corev1.Pod) string {
	t.Helper()
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(ctx, t, "pod "+pod.Name+" Succeeded", func() (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodSucceeded, err
	})
	b, err := c.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
