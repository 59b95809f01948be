package devcluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tidalscale/tidal/internal/ociarchive"
)

// A pod on the container node runs as a real container on the host network, and its ClusterIP Service reaches
// it (the route the API server takes to webhooks and aggregated APIs); stopping tidal-dev removes the route.
func TestContainerNodeRunsPodsAndRoutesTheirServices(t *testing.T) {
	NeedContainers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	proc, err := StartProcess(ctx, TestBinary(ctx, t), "up", "--nodes=0", "--container-node", "--exit-with-parent", "--log-level=warn")
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = proc.Stop(time.Minute)
		}
	})
	r := proc.Ready
	if r.ContainerNode == "" || r.Containerd == "" || r.ContainerdNamespace == "" {
		t.Fatalf("ready line lacks the container node: %+v", r)
	}
	c, err := Connect(r.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "testprog.tar")
	writeTestprogArchive(ctx, t, archive, "tidal.test/testprog:v1")
	if names, err := ImportImages(ctx, r.Containerd, r.ContainerdNamespace, archive); err != nil || len(names) != 1 {
		t.Fatalf("import: %v %v", names, err)
	}

	port := freeTCPPort(t)
	labels := map[string]string{"app": "web"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "web", Image: "tidal.test/testprog:v1", ImagePullPolicy: corev1.PullNever,
				Args:  []string{"serve", strconv.Itoa(port)},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}},
		},
	}
	OnContainerNode(&pod.Spec)
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var last *corev1.Pod
	err = WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		last, err = c.Client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && last.Spec.NodeName == r.ContainerNode && last.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("pod not Running on %s: %v (%+v)", r.ContainerNode, err, last)
	}
	if id := last.Status.ContainerStatuses[0].ContainerID; !strings.HasPrefix(id, "containerd://") {
		t.Errorf("containerID %q, want containerd://", id)
	}
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/healthz"
	var body string
	hc := &http.Client{Timeout: 2 * time.Second}
	err = WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		resp, err := hc.Get(url)
		if err != nil {
			return false, nil
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil || strings.TrimSpace(body) != "ok" {
		t.Fatalf("GET %s through the Service: %v, body %q", url, err, body)
	}

	if err := proc.Stop(time.Minute); err != nil {
		t.Fatalf("stop: %v", err)
	}
	stopped = true
	out, err := exec.Command("ip", "addr", "show", "dev", "lo").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), " "+svc.Spec.ClusterIP+"/32") {
		t.Errorf("the Service's ClusterIP %s is still on lo after stop:\n%s", svc.Spec.ClusterIP, out)
	}
	if _, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
		t.Errorf("the pod's port %d still answers after stop: its container was left running", port)
	}
}

// Without containerd, --container-node fails with one line naming the packages to install.
func TestContainerNodeWithoutContainerdSaysWhatToInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tidal-dev")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, TestBinary(ctx, t), "up", "--nodes=0", "--container-node", "--log-level=warn")
	cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; stderr:\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	lastLine := lines[len(lines)-1]
	if !strings.Contains(lastLine, "apt-get install containerd runc") || os.Geteuid() == 0 && !strings.Contains(lastLine, "containerd not found") {
		t.Errorf("last line %q: want the one error naming apt-get install containerd runc", lastLine)
	}
}

// writeTestprogArchive builds the containerd backend's test program into an oci-archive.
func writeTestprogArchive(ctx context.Context, t *testing.T, path, ref string) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	archive, err := ociarchive.GoProgram(ctx, root, "./virtualnode/backend/containerd/testdata/testprog", ociarchive.Image{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, archive, 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
