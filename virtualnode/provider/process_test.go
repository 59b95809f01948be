package provider_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/process"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// processNode starts a virtual node with the process backend mapping tidal/demo-worker to the real binary and
// busybox to "the pod's own command".
func processNode(t testing.TB, c *devcluster.Cluster, capacity corev1.ResourceList) *startedNode {
	t.Helper()
	return processNodeWith(t, c, capacity, provider.VirtualNodeOptions{})
}

// processNodeWith is processNode with more options (NewBackend is set here).
func processNodeWith(t testing.TB, c *devcluster.Cluster, capacity corev1.ResourceList, opts provider.VirtualNodeOptions) *startedNode {
	t.Helper()
	worker := demoWorkerBinary(t)
	dir := t.TempDir()
	opts.NewBackend = func(d provider.BackendDeps) (backend.Backend, error) {
		return process.New(process.Options{
			Images:          process.StaticImages{"tidal/demo-worker": {worker}, "busybox": nil},
			AllowedCommands: []string{"sh"},
			Dir:             dir,
			Changed:         d.Changed,
			NodeIP:          d.NodeIP,
			Logger:          d.Logger,
			RestartBackoff:  500 * time.Millisecond,
		})
	}
	return startNode(t, c, "process", capacity, opts)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestProcessBackendRunsDeploymentWithLogsExecStatsAndNoOrphans(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	vn := processNode(t, c, nil)

	list := uniqueName("vk-items")
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Del(context.Background(), list).Err(); _ = rdb.Close() })
	healthPort := freePort(t)

	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "worker"}, Data: map[string]string{"list": list},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	replicas := int32(1)
	labels := map[string]string{"app": "worker"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "worker"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "worker",
					Image: "tidal/demo-worker:1.0",
					Env: []corev1.EnvVar{
						{Name: "REDIS_ADDRESS", Value: "127.0.0.1:6379"},
						{Name: "LIST_NAME", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: "worker"}, Key: "list"}}},
						{Name: "WORK_DURATION", Value: "10ms"},
						{Name: "HEALTH_ADDRESS", Value: "127.0.0.1:" + strconv.Itoa(healthPort)},
						{Name: "MY_POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt(healthPort)}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
	onNode(&dep.Spec.Template.Spec, vn.Name)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}

	var pod corev1.Pod
	testenv.WaitFor(ctx, t, "worker pod Running and Ready on the virtual node", func() (bool, error) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=worker"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == vn.Name && podReady(&p) {
				pod = p
				return true, nil
			}
		}
		return false, nil
	})
	pid := containerPID(t, &pod)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("worker process %d is not running: %v", pid, err)
	}

	if err := rdb.RPush(ctx, list, "item-alpha", "item-beta").Err(); err != nil {
		t.Fatalf("rpush: %v", err)
	}
	testenv.WaitFor(ctx, t, "kubectl logs (through the API server) to show both items", func() (bool, error) {
		b, err := c.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "worker"}).DoRaw(ctx)
		if err != nil {
			t.Logf("logs: %v", err)
			return false, nil
		}
		s := string(b)
		return strings.Contains(s, "item-alpha") && strings.Contains(s, "item-beta"), nil
	})
	tail, err := c.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{TailLines: ptr.To(int64(1))}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs --tail=1: %v", err)
	}
	if n := strings.Count(strings.TrimSpace(string(tail)), "\n"); n != 0 {
		t.Errorf("logs --tail=1 returned %d lines: %q", n+1, tail)
	}

	execCases := []struct {
		name     string
		protocol string
		cmd      []string
		stdout   string
		exitCode int
	}{
		{name: "websocket env", protocol: "websocket", cmd: []string{"sh", "-c", "echo list=$LIST_NAME pod=$MY_POD"}, stdout: "list=" + list + " pod=" + pod.Name + "\n"},
		{name: "spdy env", protocol: "spdy", cmd: []string{"sh", "-c", "echo list=$LIST_NAME"}, stdout: "list=" + list + "\n"},
		{name: "spdy exit code", protocol: "spdy", cmd: []string{"sh", "-c", "echo bye; exit 3"}, stdout: "bye\n", exitCode: 3},
		{name: "websocket exit code", protocol: "websocket", cmd: []string{"sh", "-c", "exit 5"}, exitCode: 5},
	}
	for _, tc := range execCases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := execInPod(ctx, c, ns, pod.Name, "worker", tc.protocol, tc.cmd)
			code := 0
			var ce utilexec.CodeExitError
			if errors.As(err, &ce) {
				code = ce.Code
			} else if err != nil {
				t.Fatalf("exec %v: %v", tc.cmd, err)
			}
			if code != tc.exitCode {
				t.Errorf("exit code = %d, want %d", code, tc.exitCode)
			}
			if stdout != tc.stdout {
				t.Errorf("stdout = %q, want %q", stdout, tc.stdout)
			}
		})
	}

	sum := statsSummary(ctx, t, vn)
	var found *statsv1alpha1.PodStats
	for i := range sum.Pods {
		if sum.Pods[i].PodRef.Name == pod.Name && sum.Pods[i].PodRef.Namespace == ns {
			found = &sum.Pods[i]
		}
	}
	if found == nil {
		t.Fatalf("stats summary has no pod %s/%s: %+v", ns, pod.Name, sum.Pods)
	}
	if found.Memory == nil || found.Memory.WorkingSetBytes == nil || *found.Memory.WorkingSetBytes < 1<<20 {
		t.Errorf("pod working set = %+v, want at least 1 MiB (the worker's RSS)", found.Memory)
	}
	if found.CPU == nil || found.CPU.UsageCoreNanoSeconds == nil || found.CPU.UsageNanoCores == nil {
		t.Errorf("pod CPU = %+v, want CPU time and rate", found.CPU)
	}
	if len(found.Containers) != 1 || found.Containers[0].Name != "worker" {
		t.Errorf("pod stats containers = %+v, want the worker container", found.Containers)
	}

	// Scale to zero: the pod is deleted, its process exits (SIGTERM, the worker exits 0) and nothing remains.
	scaleDeployment(ctx, t, c, ns, "worker", 0)
	testenv.WaitFor(ctx, t, "the pod to be gone from the API", func() (bool, error) {
		_, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	testenv.WaitFor(ctx, t, "the worker process to exit", func() (bool, error) {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), nil
	})
}

// containerPID reads the process ID from a process-backend container ID (process://<pid>).
func containerPID(t *testing.T, pod *corev1.Pod) int {
	t.Helper()
	if len(pod.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container statuses", pod.Name)
	}
	id := pod.Status.ContainerStatuses[0].ContainerID
	pid, err := strconv.Atoi(strings.TrimPrefix(id, "process://"))
	if err != nil {
		t.Fatalf("container ID %q: %v", id, err)
	}
	return pid
}

// execInPod runs cmd in the pod through the API server, as kubectl exec does.
func execInPod(ctx context.Context, c *devcluster.Cluster, ns, pod, container, protocol string, cmd []string) (string, string, error) {
	req := c.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	var (
		ex  remotecommand.Executor
		err error
	)
	if protocol == "websocket" {
		ex, err = remotecommand.NewWebSocketExecutor(c.Config, "GET", req.URL().String())
	} else {
		ex, err = remotecommand.NewSPDYExecutor(c.Config, "POST", req.URL())
	}
	if err != nil {
		return "", "", fmt.Errorf("%s executor: %w", protocol, err)
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	return stdout.String(), stderr.String(), err
}

// statsSummary reads /stats/summary from the node's kubelet API directly. (The API server's nodes/proxy refuses
// loopback node addresses, which is what the dev cluster has.)
func statsSummary(ctx context.Context, t testing.TB, sn *startedNode) statsv1alpha1.Summary {
	t.Helper()
	body := kubeletGet(ctx, t, sn, "/stats/summary")
	var sum statsv1alpha1.Summary
	if err := json.Unmarshal(body, &sum); err != nil {
		t.Fatalf("stats summary: %v: %s", err, body)
	}
	return sum
}

func kubeletGet(ctx context.Context, t testing.TB, sn *startedNode, path string) []byte {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", sn.Node.Port(), path), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body
}

var _ = resource.MustParse
