package provider_test

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

func busyboxPod(name, node string, script string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To(int64(5)),
			Containers:                    []corev1.Container{{Name: "main", Image: "busybox:1.36", Command: []string{"sh", "-c", script}}},
		},
	}
	onNode(&p.Spec, node)
	return p
}

func TestProcessBackendPodProblemsBecomeStatus(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	vn := processNode(t, c, corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
		corev1.ResourcePods:   resource.MustParse("20"),
	})

	unknown := busyboxPod("unknown-image", vn.Name, "sleep 60")
	unknown.Spec.Containers[0].Image = "example.com/not-mapped:1"
	unknown.Spec.RestartPolicy = corev1.RestartPolicyNever

	// The scheduler would never place it; bound directly, the node must refuse it as a kubelet does (OutOfcpu).
	tooBig := busyboxPod("too-big", vn.Name, "sleep 60")
	tooBig.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}
	tooBig.Spec.NodeName = vn.Name
	tooBig.Spec.NodeSelector = nil

	// Bound by nodeName without tolerating the node's taint: the scheduler never checked; the node must refuse.
	untolerated := busyboxPod("untolerated", vn.Name, "sleep 60")
	untolerated.Spec.NodeName = vn.Name
	untolerated.Spec.NodeSelector = nil
	untolerated.Spec.Tolerations = nil

	notReady := busyboxPod("not-ready", vn.Name, "sleep 600")
	notReady.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "exit 1"}}},
		PeriodSeconds: 1,
	}

	notLive := busyboxPod("not-live", vn.Name, "echo started; sleep 600")
	notLive.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(1)}},
		PeriodSeconds:    1,
		FailureThreshold: 1,
	}

	crashing := busyboxPod("crashing", vn.Name, "echo boom >&2; exit 7")
	crashing.Spec.RestartPolicy = corev1.RestartPolicyOnFailure

	done := busyboxPod("completes", vn.Name, "echo done")
	done.Spec.RestartPolicy = corev1.RestartPolicyNever

	for _, p := range []*corev1.Pod{unknown, tooBig, untolerated, notReady, notLive, crashing, done} {
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
	}

	cases := []struct {
		name string
		pod  string
		want func(*corev1.Pod) bool
		// event is a reason that must have been recorded on the pod.
		event string
	}{
		{name: "unknown image fails the pod", pod: "unknown-image", event: backend.ReasonImageNotMapped, want: func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed && p.Status.Reason == backend.ReasonImageNotMapped &&
				strings.Contains(p.Status.Message, "example.com/not-mapped:1")
		}},
		{name: "pod larger than the node fails with OutOfCapacity", pod: "too-big", event: backend.ReasonOutOfCapacity, want: func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed && p.Status.Reason == backend.ReasonOutOfCapacity
		}},
		{name: "pod bound without tolerating the node's taint fails", pod: "untolerated", event: provider.ReasonTaintToleration, want: func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed && p.Status.Reason == provider.ReasonTaintToleration &&
				strings.Contains(p.Status.Message, provider.TaintKey)
		}},
		{name: "failing liveness probe restarts the container", pod: "not-live", want: func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
		}},
		{name: "crashing container with OnFailure is restarted with backoff", pod: "crashing", want: func(p *corev1.Pod) bool {
			if len(p.Status.ContainerStatuses) != 1 {
				return false
			}
			cs := p.Status.ContainerStatuses[0]
			last := cs.LastTerminationState.Terminated
			return cs.RestartCount >= 1 && last != nil && last.ExitCode == 7
		}},
		{name: "completed container with Never succeeds", pod: "completes", want: func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var last *corev1.Pod
			err := devcluster.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
				p, err := c.Client.CoreV1().Pods(ns).Get(ctx, tc.pod, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				last = p
				return tc.want(p), nil
			})
			if err != nil {
				if last == nil {
					t.Fatalf("pod %s: %v", tc.pod, err)
				}
				t.Fatalf("pod %s: %v; last status: %+v", tc.pod, err, last.Status)
			}
			if tc.event != "" {
				testenv.WaitFor(ctx, t, "event "+tc.event, func() (bool, error) {
					evs, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", tc.pod).String()})
					if err != nil {
						return false, err
					}
					for _, e := range evs.Items {
						if e.Reason == tc.event && e.Type == corev1.EventTypeWarning {
							return true, nil
						}
					}
					return false, nil
				})
			}
		})
	}

	t.Run("failing readiness probe keeps the pod NotReady", func(t *testing.T) {
		testenv.WaitFor(ctx, t, "not-ready Running", func() (bool, error) {
			p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "not-ready", metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		// Probes run every second: over 4s the pod must never turn Ready.
		deadline := time.Now().Add(4 * time.Second)
		for time.Now().Before(deadline) {
			p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "not-ready", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if podReady(p) {
				t.Fatalf("pod turned Ready although its readiness probe fails: %+v", p.Status.Conditions)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("previous logs of a restarted container", func(t *testing.T) {
		b, err := c.Client.CoreV1().Pods(ns).GetLogs("crashing", &corev1.PodLogOptions{Previous: true}).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs --previous: %v", err)
		}
		if !strings.Contains(string(b), "boom") {
			t.Errorf("logs --previous = %q, want the crashed instance's stderr", b)
		}
	})
}

func TestNodeRegistersWithLeaseAndGoesNotReadyWhenStopped(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ctx := testContext(t)
	vn := processNode(t, c, nil)

	node, err := c.Client.CoreV1().Nodes().Get(ctx, vn.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	if node.Labels["type"] != "virtual-kubelet" {
		t.Errorf("label type = %q, want virtual-kubelet", node.Labels["type"])
	}
	wantTaint := corev1.Taint{Key: provider.TaintKey, Value: provider.TaintValue, Effect: corev1.TaintEffectNoSchedule}
	hasTaint := false
	for _, tt := range node.Spec.Taints {
		hasTaint = hasTaint || (tt.Key == wantTaint.Key && tt.Value == wantTaint.Value && tt.Effect == wantTaint.Effect)
	}
	if !hasTaint {
		t.Errorf("taints = %+v, want %+v among them", node.Spec.Taints, wantTaint)
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != vn.Node.Port() {
		t.Errorf("kubelet port = %d, want %d", got, vn.Node.Port())
	}
	if len(node.Status.Addresses) != 1 || node.Status.Addresses[0].Address != "127.0.0.1" {
		t.Errorf("addresses = %+v, want InternalIP 127.0.0.1", node.Status.Addresses)
	}
	testenv.WaitFor(ctx, t, "node Ready", func() (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, vn.Name, metav1.GetOptions{})
		return err == nil && nodeReady(n), err
	})

	var first *coordinationv1.Lease
	testenv.WaitFor(ctx, t, "node lease", func() (bool, error) {
		l, err := c.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, vn.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		first = l
		return l.Spec.RenewTime != nil, nil
	})
	testenv.WaitFor(ctx, t, "lease renewal", func() (bool, error) {
		l, err := c.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, vn.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.RenewTime.After(first.Spec.RenewTime.Time), nil
	})

	vn.stop(t)
	testenv.WaitFor(ctx, t, "node NotReady after stop", func() (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, vn.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return !nodeReady(n), nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestProcessBackendMaterialisesVolumesAndSecretEnv(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	vn := processNode(t, c, nil)
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"mode": "turbo"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"token": "tok-123", "user": "ada"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := busyboxPod("volumes", vn.Name,
		`echo "mode=$(cat $TIDAL_VOLUME_CONFIG/mode) token=$(cat $TIDAL_VOLUME_SECRET/token) user=$USER_NAME"; `+
			`echo scratch > $TIDAL_VOLUME_SCRATCH/f && echo "scratch=$(cat $TIDAL_VOLUME_SCRATCH/f)"`)
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	ctr := &pod.Spec.Containers[0]
	ctr.VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/cfg"}, {Name: "secret", MountPath: "/etc/secret"}, {Name: "scratch", MountPath: "/tmp/s"}}
	ctr.Env = []corev1.EnvVar{{Name: "USER_NAME", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "user"}}}}
	want := "mode=turbo token=tok-123 user=ada\nscratch=scratch\n"
	if logs := logsOnceSucceeded(ctx, t, c, ns, pod); logs != want {
		t.Errorf("logs = %q, want %q", logs, want)
	}
}
