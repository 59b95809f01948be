package containerd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilexec "k8s.io/utils/exec"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd"
)

// A pod with env, a ConfigMap volume, an emptyDir, a non-root user, a read-only root and limits runs, turns
// Ready by its HTTP readiness probe, logs, execs and reports cgroup stats.
func TestRunProbeLogsExecStats(t *testing.T) {
	h := newHarness(t, nil)
	port := freePort(t)
	c := prog("web", "serve", strconv.Itoa(port))
	c.Env = []corev1.EnvVar{{Name: "GREETING", Value: "hello from the pod"}}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/config", ReadOnly: true}, {Name: "scratch", MountPath: "/scratch"}}
	uid, gid, yes := int64(65532), int64(65533), true
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: &uid, RunAsGroup: &gid, ReadOnlyRootFilesystem: &yes}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	c.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt(port)}}}
	c.LivenessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}}
	pod := newPod(uniqueName("web"), c)
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	key := backend.KeyOf(pod)
	err := h.b.Create(testContext(t), backend.Pod{Pod: pod, Volumes: map[string]backend.Volume{
		"config":  {Files: map[string][]byte{"app.conf": []byte("mode=test\n")}},
		"scratch": {EmptyDir: true},
	}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	st := h.waitStatus(key, "Ready", ready)
	if st.PodIP != "127.0.0.1" || !strings.HasPrefix(st.ContainerStatuses[0].ContainerID, "containerd://") {
		t.Errorf("podIP %q containerID %q: want the node IP and a containerd:// id", st.PodIP, st.ContainerStatuses[0].ContainerID)
	}
	h.waitLogs(key, "web", fmt.Sprintf("serving on %d", port))
	if got := h.logs(key, "web", backend.LogOptions{Timestamps: true}); !strings.Contains(got, "Z serving on") {
		t.Errorf("logs with timestamps: %q", got)
	}

	for _, tc := range []struct {
		name string
		cmd  []string
		want string
		code int
	}{
		{"env", []string{"/testprog", "env", "GREETING"}, "hello from the pod\n", 0},
		{"configmap", []string{"/testprog", "cat", "/etc/config/app.conf"}, "mode=test\n", 0},
		{"user", []string{"/testprog", "id"}, "65532:65533\n", 0},
		{"emptyDir writable", []string{"/testprog", "write", "/scratch/x"}, "", 0},
		{"read-only root", []string{"/testprog", "write", "/x"}, "read-only file system", 1},
		{"exit code", []string{"/testprog", "exit", "7"}, "exiting 7\n", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.exec(key, "web", tc.cmd...)
			code := 0
			var ce utilexec.CodeExitError
			if errors.As(err, &ce) {
				code = ce.Code
			} else if err != nil {
				t.Fatalf("exec: %v", err)
			}
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exec %v: got %q (exit %d), want %q (exit %d)", tc.cmd, out, code, tc.want, tc.code)
			}
		})
	}

	// Limits are in the container's OCI spec, which runc applies to its cgroup.
	client, err := ctrd.New(env.daemon.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cctx := namespaces.WithNamespace(testContext(t), env.ns)
	ctr, err := client.LoadContainer(cctx, strings.TrimPrefix(st.ContainerStatuses[0].ContainerID, "containerd://"))
	if err != nil {
		t.Fatalf("load container: %v", err)
	}
	spec, err := ctr.Spec(cctx)
	if err != nil {
		t.Fatal(err)
	}
	res := spec.Linux.Resources
	if res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit != 64<<20 || res.CPU == nil || res.CPU.Quota == nil || *res.CPU.Quota != 50000 {
		t.Errorf("OCI resources: %+v, want memory limit 64Mi and CPU quota 50000/100000", res)
	}

	var stats []string
	err = devcluster.WaitFor(testContext(t), 200*time.Millisecond, func() (bool, error) {
		ps, err := h.b.PodStats(testContext(t))
		if err != nil {
			return false, err
		}
		stats = stats[:0]
		for _, p := range ps {
			if p.PodRef.Name == pod.Name && len(p.Containers) == 1 {
				c := p.Containers[0]
				stats = append(stats, fmt.Sprintf("cpu=%d mem=%d", *c.CPU.UsageCoreNanoSeconds, *c.Memory.WorkingSetBytes))
				return *c.CPU.UsageCoreNanoSeconds > 0 && *c.Memory.WorkingSetBytes > 0, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("stats: want CPU time and memory of the container's cgroup, got %v", stats)
	}
}

// A failing liveness probe restarts the container (LivenessProbeFailed); a failing readiness probe keeps it
// unready; --previous shows the killed instance's log.
func TestProbesFailRestart(t *testing.T) {
	h := newHarness(t, nil)
	dead := freePort(t)
	c := prog("sleeper", "sleep")
	c.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		Exec: &corev1.ExecAction{Command: []string{"/testprog", "exit", "1"}}}}
	c.LivenessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 2, ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt(dead)}}}
	pod := newPod(uniqueName("liveness"), c)
	key := backend.KeyOf(pod)
	if err := h.b.Create(testContext(t), backend.Pod{Pod: pod}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	st := h.waitStatus(key, "restarted by liveness", func(st *corev1.PodStatus) bool {
		cs := st.ContainerStatuses[0]
		return cs.RestartCount >= 1 && cs.LastTerminationState.Terminated != nil
	})
	cs := st.ContainerStatuses[0]
	if cs.LastTerminationState.Terminated.Reason != "LivenessProbeFailed" || cs.Ready {
		t.Errorf("want last termination LivenessProbeFailed and never ready, got %s", describe(st))
	}
	if got := h.logs(key, "sleeper", backend.LogOptions{Previous: true}); !strings.Contains(got, "sleeping") {
		t.Errorf("previous logs: %q", got)
	}

	// An exec readiness probe that passes makes it Ready.
	c2 := prog("ok", "sleep")
	c2.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		Exec: &corev1.ExecAction{Command: []string{"/testprog", "exit", "0"}}}}
	pod2 := newPod(uniqueName("ready"), c2)
	if err := h.b.Create(testContext(t), backend.Pod{Pod: pod2}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	h.waitStatus(backend.KeyOf(pod2), "Ready by exec probe", ready)
}

// restartPolicy: Always restarts a crashing container with backoff, OnFailure finishes a successful one,
// Never fails a failed one.
func TestRestartPolicy(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		code   string
		want   func(*corev1.PodStatus) bool
	}{
		{corev1.RestartPolicyAlways, "3", func(st *corev1.PodStatus) bool {
			return st.ContainerStatuses[0].RestartCount >= 2 && st.Phase == corev1.PodRunning
		}},
		{corev1.RestartPolicyOnFailure, "0", func(st *corev1.PodStatus) bool { return st.Phase == corev1.PodSucceeded }},
		{corev1.RestartPolicyNever, "4", func(st *corev1.PodStatus) bool {
			t := st.ContainerStatuses[0].State.Terminated
			return st.Phase == corev1.PodFailed && t != nil && t.ExitCode == 4 && st.ContainerStatuses[0].RestartCount == 0
		}},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			pod := newPod(uniqueName(strings.ToLower(string(tc.policy))), prog("main", "exit", tc.code))
			pod.Spec.RestartPolicy = tc.policy
			if err := h.b.Create(testContext(t), backend.Pod{Pod: pod}); err != nil {
				t.Fatalf("Create: %v", err)
			}
			h.waitStatus(backend.KeyOf(pod), string(tc.policy), tc.want)
			h.waitLogs(backend.KeyOf(pod), "main", "exiting "+tc.code)
		})
	}
}

// Init containers run one after another, before the containers; a failed one fails a Never pod.
func TestInitContainersInOrder(t *testing.T) {
	h := newHarness(t, nil)
	mount := []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
	first, second := prog("first", "append", "/work/order", "first"), prog("second", "append", "/work/order", "second")
	first.VolumeMounts, second.VolumeMounts = mount, mount
	main := prog("main", "cat", "/work/order", "then-sleep")
	main.VolumeMounts = mount
	pod := newPod(uniqueName("init"), main)
	pod.Spec.InitContainers = []corev1.Container{first, second}
	pod.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	key := backend.KeyOf(pod)
	if err := h.b.Create(testContext(t), backend.Pod{Pod: pod, Volumes: map[string]backend.Volume{"work": {EmptyDir: true}}}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	st := h.waitStatus(key, "Running after init", running)
	for _, ic := range st.InitContainerStatuses {
		if ic.State.Terminated == nil || ic.State.Terminated.ExitCode != 0 {
			t.Errorf("init container %s: %s", ic.Name, describe(st))
		}
	}
	h.waitLogs(key, "main", "first\nsecond\n")

	bad := newPod(uniqueName("badinit"), prog("main", "sleep"))
	bad.Spec.RestartPolicy = corev1.RestartPolicyNever
	bad.Spec.InitContainers = []corev1.Container{prog("fails", "exit", "9")}
	if err := h.b.Create(testContext(t), backend.Pod{Pod: bad}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	st = h.waitStatus(backend.KeyOf(bad), "Failed by its init container", func(st *corev1.PodStatus) bool { return st.Phase == corev1.PodFailed })
	if st.ContainerStatuses[0].State.Running != nil {
		t.Errorf("main container ran after a failed init container: %s", describe(st))
	}
}

// A bad image gives a clear reason quickly: an invalid reference is refused at Create, an unreachable registry
// leaves the container waiting with ErrImagePull/ImagePullBackOff.
func TestBadImage(t *testing.T) {
	h := newHarness(t, nil)
	bad := newPod(uniqueName("invalid"), corev1.Container{Name: "main", Image: "Not A Valid Image!"})
	err := h.b.Create(testContext(t), backend.Pod{Pod: bad})
	if pe, ok := backend.AsPodError(err); !ok || pe.Reason != containerd.ReasonInvalidImageName {
		t.Errorf("Create with an invalid image: want PodError %s, got %v", containerd.ReasonInvalidImageName, err)
	}

	port := freePort(t) // nothing listens: the pull fails at once, no internet involved
	missing := newPod(uniqueName("missing"), corev1.Container{Name: "main", Image: fmt.Sprintf("127.0.0.1:%d/nope:v1", port)})
	if err := h.b.Create(testContext(t), backend.Pod{Pod: missing}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	st := h.waitStatus(backend.KeyOf(missing), "image pull failure", func(st *corev1.PodStatus) bool {
		w := st.ContainerStatuses[0].State.Waiting
		return w != nil && (w.Reason == containerd.ReasonErrImagePull || w.Reason == containerd.ReasonImagePullBackOff)
	})
	if st.Phase != corev1.PodPending || !strings.Contains(st.ContainerStatuses[0].State.Waiting.Message, "nope") {
		t.Errorf("want Pending with a message naming the image, got %s", describe(st))
	}
}

// Delete stops the pod and removes every container, task, snapshot and the pod directory; Close removes the
// rest.
func TestDeleteCleansUp(t *testing.T) {
	h := newHarness(t, nil)
	pod := newPod(uniqueName("gone"), prog("a", "sleep"), prog("b", "sleep"))
	key := backend.KeyOf(pod)
	if err := h.b.Create(testContext(t), backend.Pod{Pod: pod}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	h.waitStatus(key, "Running", func(st *corev1.PodStatus) bool { return ready(st) })
	if n := h.countObjects(); n.containers != 2 || n.tasks != 2 {
		t.Fatalf("while running: %+v, want 2 containers and 2 tasks", n)
	}
	if err := h.b.Delete(testContext(t), key, 10*time.Second); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	st := h.waitStatus(key, "terminated", func(st *corev1.PodStatus) bool {
		return st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	})
	for _, cs := range st.ContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			t.Errorf("container %s: want exit 0 on SIGTERM, got %s", cs.Name, describe(st))
		}
	}
	if n := h.countObjects(); n != (objects{}) {
		t.Errorf("after delete: %+v left behind", n)
	}
	if _, err := h.b.Status(testContext(t), key); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Status after delete: %v, want ErrNotFound", err)
	}
	if entries, _ := os.ReadDir(h.dir); len(entries) != 0 {
		t.Errorf("pod directories left: %v", entries)
	}

	// Close removes what is still running.
	pod2 := newPod(uniqueName("closed"), prog("a", "sleep"))
	if err := h.b.Create(testContext(t), backend.Pod{Pod: pod2}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	h.waitStatus(backend.KeyOf(pod2), "Running", running)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := h.countObjects(); n != (objects{}) {
		t.Errorf("after Close: %+v left behind", n)
	}
}

type objects struct{ containers, tasks, snapshots int }

// countObjects counts the containerd containers, tasks and snapshots of this harness's node.
func (h *harness) countObjects() objects {
	h.t.Helper()
	client, err := ctrd.New(env.daemon.Address)
	if err != nil {
		h.t.Fatal(err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(testContext(h.t), env.ns)
	cs, err := client.Containers(ctx, fmt.Sprintf("labels.%q==%s", containerd.LabelNode, h.node))
	if err != nil {
		h.t.Fatal(err)
	}
	var n objects
	for _, c := range cs {
		n.containers++
		if _, err := c.Task(ctx, nil); err == nil {
			n.tasks++
		}
	}
	// Snapshots of removed containers must be gone too.
	err = client.SnapshotService("").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.HasSuffix(info.Name, "-rootfs") && info.Labels[containerd.LabelNode] == h.node {
			n.snapshots++
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}
