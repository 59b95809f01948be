package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/ociarchive"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd/daemon"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

const testImage = "tidal.test/testprog:v1"

// TestContainerdBackendThroughTheBinaryWiring parses --backend=containerd flags, runs the binary's run (the same
// wiring main uses) against the dev cluster and a private containerd, and runs a pod as a real container: its
// init container sees the API server address, its container reads the projected service-account volume
// (TokenRequest and the kube-root-ca.crt ConfigMap through the node's client), and deleting the pod removes its
// containers.
func TestContainerdBackendThroughTheBinaryWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containerd and the dev cluster")
	}
	if err := daemon.Check(); err != nil {
		t.Skipf("%v (.ci/run installs them)", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root to run containers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := devcluster.Get(t)
	ns := c.Namespace(t)

	dir, err := os.MkdirTemp("/tmp", "vnctd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	d, err := daemon.Start(ctx, daemon.Options{Dir: filepath.Join(dir, "d")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	importTestImage(ctx, t, d.Address, "tidal", dir)

	node := "vn-ctd-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	var common tidalapp.Flags
	var f flags
	fs := newFlagSet(&common, &f)
	if err := fs.Parse([]string{"--backend=containerd", "--containerd-address=unix://" + d.Address, "--containerd-namespace=tidal",
		"--containerd-state-dir=" + filepath.Join(dir, "pods"), "--node-name=" + node, "--node-address=127.0.0.1",
		"--port=" + strconv.Itoa(freePort(t)), "--metrics-addr=", "--workers=4", "--kubelet-auth=none"}); err != nil {
		t.Fatal(err)
	}
	if err := f.validate(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, tidalapp.Env{Log: zaptest.NewLogger(t), Config: c.Config, Flags: &common}, f)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("run did not return within a minute of cancel")
		}
		_ = c.Client.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{})
	})

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ctd", Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: []corev1.Toleration{{Key: provider.TaintKey, Operator: corev1.TolerationOpExists}},
			InitContainers: []corev1.Container{{Name: "env", Image: testImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"env", "KUBERNETES_SERVICE_HOST"}}},
			Containers: []corev1.Container{{Name: "main", Image: testImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"cat", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "then-sleep"}}},
		},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last *corev1.Pod
	err = devcluster.WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready, nil
	})
	if err != nil {
		t.Fatalf("pod not Running and Ready: %v; status %+v", err, last.Status)
	}
	if id := last.Status.ContainerStatuses[0].ContainerID; !strings.HasPrefix(id, "containerd://") {
		t.Errorf("containerID %q, want containerd://…", id)
	}
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	// The log is written by containerd's IO copy: wait for it.
	logs := func(container string, ok func(string) bool) string {
		var got string
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = devcluster.WaitFor(lctx, 250*time.Millisecond, func() (bool, error) {
			b, err := c.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
			got = strings.TrimSpace(string(b))
			return err == nil && ok(got), nil
		})
		return got
	}
	if got := logs("env", func(s string) bool { return s == u.Hostname() }); got != u.Hostname() {
		t.Errorf("init container's KUBERNETES_SERVICE_HOST = %q, want %q (the API server's host)", got, u.Hostname())
	}
	// The CA comes from the kube-root-ca.crt ConfigMap; the token beside it from a TokenRequest, without which
	// the container would not have started.
	caPEM := strings.TrimSpace(string(c.Config.CAData))
	if !strings.HasPrefix(caPEM, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("the admin kubeconfig holds no inline CA to compare with")
	}
	if got := logs("main", func(s string) bool { return s == caPEM }); got != caPEM {
		t.Errorf("projected service-account ca.crt = %q, want the cluster CA", got)
	}

	if err := c.Client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = devcluster.WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		_, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("pod not gone after delete: %v", err)
	}
	client, err := ctrd.New(d.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	err = devcluster.WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		cs, err := client.Containers(namespaces.WithNamespace(ctx, "tidal"), fmt.Sprintf("labels.%q==%s", containerd.LabelNode, node))
		return err == nil && len(cs) == 0, err
	})
	if err != nil {
		t.Fatalf("containers of the deleted pod left in containerd: %v", err)
	}
}

// importTestImage builds the containerd backend's testprog and imports it as testImage.
func importTestImage(ctx context.Context, t *testing.T, address, namespace, dir string) {
	t.Helper()
	root, err := devcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	archive, err := ociarchive.GoProgram(ctx, root, "./virtualnode/backend/containerd/testdata/testprog", ociarchive.Image{Ref: testImage})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ctrd.New(address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Import(namespaces.WithNamespace(ctx, namespace), bytes.NewReader(archive)); err != nil {
		t.Fatalf("import test image: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
