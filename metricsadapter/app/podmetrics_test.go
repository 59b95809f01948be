package app_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// processNode runs tidal-virtual-node with the process backend (busybox: the pod's own command, sh allowed)
// until the test ends, and waits until its Node is Ready. The backend sandboxes pods as another user: root only.
func (e *env) processNode() string {
	t := e.T
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the process backend's sandbox needs root")
	}
	bin := testenv.Binary(t, "TIDAL_VIRTUAL_NODE_BIN", "tidal-virtual-node")
	dir := t.TempDir()
	// The sandbox user must traverse to the pods' directories (the backend opens up its own directory only).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	images := filepath.Join(dir, "images.yaml")
	if err := os.WriteFile(images, []byte("busybox: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	name := "vk-process-" + e.NS
	testenv.Start(t, bin, "--kubeconfig="+e.Cluster.Kubeconfig, "--node-name="+name, "--node-address=127.0.0.1",
		"--port="+strconv.Itoa(port), "--kubelet-auth=none", "--backend=process", "--process-images-file="+images,
		"--process-allowed-commands=sh", "--process-dir="+filepath.Join(dir, "pods"))
	t.Cleanup(func() {
		_ = e.Cluster.Client.CoreV1().Nodes().Delete(e.Ctx, name, metav1.DeleteOptions{})
	})
	e.Eventually("process virtual node Ready", 2*time.Minute, func() (bool, string) {
		n, err := e.Cluster.Client.CoreV1().Nodes().Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, c.Reason
			}
		}
		return false, "no Ready condition"
	})
	return name
}

// shDeployment runs `sh -c script` on node, requesting a whole core (so simulated usage would be 500m).
func shDeployment(node, script string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		spec := &d.Spec.Template.Spec
		spec.Containers[0].Image = "busybox"
		spec.Containers[0].Command = []string{"sh", "-c", script}
		spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
		spec.Tolerations = []corev1.Toleration{{Key: provider.TaintKey, Operator: corev1.TolerationOpEqual, Value: provider.TaintValue, Effect: corev1.TaintEffectNoSchedule}}
	}
}

// metrics.k8s.io for pods on a process virtual node is their real usage, read from the node's kubelet: a
// container spinning a CPU reports a large fraction of a core, an idle one next to it nearly nothing (simulated
// usage would be half the 1-CPU request for both).
func TestPodMetricsMeasuresProcessNode(t *testing.T) {
	e := setup(t)
	e.registeredAdapter()
	node := e.processNode()
	e.Deployment("burn", 1, shDeployment(node, "while :; do :; done"))
	e.Deployment("idle", 1, shDeployment(node, "exec sleep 3600"))

	// One core spinning on a shared 2-core machine under load gets well under a core; 100m is a floor no idle
	// or simulated figure reaches by accident (idle measures ~0, simulated is exactly 500m).
	const burnFloor, idleCeiling = 100, 50
	var last string
	e.Eventually("measured PodMetrics of the burning and the idle pod", 3*time.Minute, func() (bool, string) {
		raw, err := e.Cluster.Client.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/" + e.NS + "/pods").DoRaw(e.Ctx)
		if err != nil {
			return false, err.Error()
		}
		last = string(raw)
		var list metricsv1beta1.PodMetricsList
		if err := json.Unmarshal(raw, &list); err != nil {
			return false, err.Error()
		}
		cpu := map[string]int64{}
		mem := map[string]int64{}
		for _, pm := range list.Items {
			if len(pm.Containers) != 1 || pm.Window.Duration <= 0 {
				return false, last
			}
			cpu[pm.Labels["app"]] = pm.Containers[0].Usage.Cpu().MilliValue()
			mem[pm.Labels["app"]] = pm.Containers[0].Usage.Memory().Value()
		}
		burn, okB := cpu["burn"]
		idle, okI := cpu["idle"]
		ok := okB && okI && burn >= burnFloor && burn != 500 && idle < idleCeiling && mem["burn"] > 0
		return ok, fmt.Sprintf("burn=%dm idle=%dm burn memory=%d; pods: %s", burn, idle, mem["burn"], e.podPhases())
	})
	t.Logf("metrics.k8s.io: %s", last)
}

// podPhases describes the test's pods, for failure messages.
func (e *env) podPhases() string {
	pods, err := e.Cluster.Client.CoreV1().Pods(e.NS).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "%s on %s %s %s %s; ", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Reason, p.Status.Message)
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				fmt.Fprintf(&b, "waiting %s: %s; ", w.Reason, w.Message)
			}
			if x := cs.State.Terminated; x != nil {
				fmt.Fprintf(&b, "terminated %s (%d): %s; ", x.Reason, x.ExitCode, x.Message)
			}
		}
	}
	return b.String()
}
