package nodes_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/yaml"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
	"github.com/tidalscale/tidal/autoscaler/nodes/expander"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
)

func TestScaleUpFiftyPodsAddsThirteenNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true}, nodeGroup("pool", 0, 20, nil))
	e.deployment("web", 50, "1", e.selectGroup("pool"))

	maxSeen := 0
	e.eventually(3*time.Minute, "50 pods scheduled", func() (bool, error) {
		maxSeen = max(maxSeen, len(e.groupNodes("pool")))
		pods := e.pods("web")
		return len(pods) == 50 && scheduled(pods) == 50, nil
	})
	// A few more loops must not add nodes: upcoming and new nodes are accounted for.
	for i := 0; i < 3; i++ {
		e.eventually(30*time.Second, "a status update", statusNewerThan(e, time.Now()))
		maxSeen = max(maxSeen, len(e.groupNodes("pool")))
	}
	if got := len(e.groupNodes("pool")); got != 13 || maxSeen != 13 {
		t.Fatalf("group has %d nodes (max seen %d), want exactly 13", got, maxSeen)
	}
	for _, n := range e.groupNodes("pool") {
		if n.Labels[sim.KwokLabel] != sim.KwokLabelValue || n.Status.Allocatable.Cpu().String() != "4" {
			t.Errorf("node %s: labels %v allocatable cpu %s; want kwok node with 4 CPU", n.Name, n.Labels, n.Status.Allocatable.Cpu())
		}
	}
	e.eventually(time.Minute, "status ConfigMap with 13 ready nodes", func() (bool, error) {
		st, err := readStatus(e)
		if err != nil {
			return false, err
		}
		if len(st.NodeGroups) != 1 {
			return false, fmt.Errorf("node groups in status: %d", len(st.NodeGroups))
		}
		g := st.NodeGroups[0]
		return g.Name == e.group("pool") && g.Target == 13 && g.Ready == 13 && g.Registered == 13 &&
			g.LastScaleUp != nil && st.Health == "Healthy" && st.ScaleUp.UnschedulablePods == 0, nil
	})
	e.eventually(time.Minute, "NodeGroup status", func() (bool, error) {
		ng, err := e.tidal.TidalV1alpha1().NodeGroups().Get(context.Background(), e.group("pool"), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return ng.Status.TargetSize == 13 && ng.Status.ReadyNodes == 13 && ng.Status.LastScaleUpTime != nil, nil
	})
	// Pods that arrive while nodes are on their way are absorbed by the upcoming nodes without an event of their
	// own, so look for the event on any pod.
	e.eventually(time.Minute, "TriggeredScaleUp events", hasEvent(e, "", nodes.EventTriggeredScaleUp, e.group("pool")))
}

func TestScaleUpSelectsGroupByTaintsAndAffinity(t *testing.T) {
	t.Parallel()
	pool := func(g *v1alpha1.NodeGroup) { g.Spec.Template.Labels = map[string]string{"pool": "shared"} }
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true},
		nodeGroup("general", 0, 5, pool),
		nodeGroup("gpu", 0, 5, func(g *v1alpha1.NodeGroup) {
			g.Spec.Template.Labels = map[string]string{"pool": "shared", "accelerator": "gpu"}
			g.Spec.Template.Taints = []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
		}),
		nodeGroup("zone-b", 0, 5, func(g *v1alpha1.NodeGroup) {
			g.Spec.Template.Labels = map[string]string{"pool": "shared"}
			g.Spec.Template.Zone = e2eZone
		}),
	)
	// pool=<id> isolates from other tests; plain pods may not go to the tainted group.
	shared := func(p *corev1.PodTemplateSpec) {
		p.Spec.NodeSelector = map[string]string{"pool": "shared"}
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: "tidal.dev/nodegroup", Operator: corev1.NodeSelectorOpIn, Values: []string{e.group("general"), e.group("gpu"), e.group("zone-b")},
			}}}},
		}}}
	}
	e.deployment("gpu-job", 2, "1", func(p *corev1.PodTemplateSpec) {
		shared(p)
		p.Spec.NodeSelector["accelerator"] = "gpu"
		p.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	})
	e.deployment("zonal", 2, "1", func(p *corev1.PodTemplateSpec) {
		shared(p)
		p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions = append(
			p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions,
			corev1.NodeSelectorRequirement{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{e2eZone}})
	})
	e.eventually(3*time.Minute, "gpu and zonal pods scheduled", func() (bool, error) {
		return scheduled(e.pods("gpu-job")) == 2 && scheduled(e.pods("zonal")) == 2, nil
	})
	for _, p := range e.pods("gpu-job") {
		if !strings.HasPrefix(p.Spec.NodeName, e.group("gpu")+"-") {
			t.Errorf("gpu pod %s on node %s, want a node of group gpu", p.Name, p.Spec.NodeName)
		}
	}
	for _, p := range e.pods("zonal") {
		if !strings.HasPrefix(p.Spec.NodeName, e.group("zone-b")+"-") {
			t.Errorf("zonal pod %s on node %s, want a node of group zone-b", p.Name, p.Spec.NodeName)
		}
	}
	if n := len(e.groupNodes("general")); n != 0 {
		t.Errorf("general group grew to %d nodes; no pod needed it", n)
	}
}

const e2eZone = "zone-e2e"

func TestNotTriggerScaleUpNamesReasonPerGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true}, nodeGroup("small", 0, 3, nil))
	e.deployment("huge", 1, "64", e.selectGroup("small"))
	var pod corev1.Pod
	e.eventually(time.Minute, "pending pod", func() (bool, error) {
		pods := e.pods("huge")
		if len(pods) != 1 {
			return false, nil
		}
		pod = pods[0]
		return true, nil
	})
	e.eventually(time.Minute, "NotTriggerScaleUp event", hasEvent(e, pod.Name, nodes.EventNotTriggerScaleUp, e.group("small")+": Insufficient cpu"))
	if n := len(e.groupNodes("small")); n != 0 {
		t.Fatalf("group grew to %d nodes for a pod that fits no template", n)
	}
}

func TestBackoffWhenProviderNeverDelivers(t *testing.T) {
	t.Parallel()
	shared := func(prio int32, cfg map[string]string) func(*v1alpha1.NodeGroup) {
		return func(g *v1alpha1.NodeGroup) {
			g.Spec.Template.Labels = map[string]string{"pool": "backoff"}
			g.Spec.Priority = prio
			g.Spec.ProviderRef.Config = cfg
		}
	}
	e := newEnv(t, nodes.Config{
		ScaleDownDisabled:    true,
		Expanders:            []string{expander.Priority, expander.LeastWaste},
		MaxNodeProvisionTime: 5 * time.Second,
	},
		nodeGroup("broken", 0, 5, shared(100, map[string]string{sim.ConfigFailProvisioning: "true"})),
		nodeGroup("fallback", 0, 5, shared(1, nil)),
	)
	e.deployment("app", 2, "1", func(p *corev1.PodTemplateSpec) {
		p.Spec.NodeSelector = map[string]string{"pool": "backoff"}
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: "tidal.dev/nodegroup", Operator: corev1.NodeSelectorOpIn, Values: []string{e.group("broken"), e.group("fallback")},
			}}}},
		}}}
	})
	e.eventually(time.Minute, "pods created", func() (bool, error) { return len(e.pods("app")) > 0, nil })
	// On any of the app's pods: the first scale-up may have been for the pod created first, which need not be the
	// first one listed.
	e.eventually(time.Minute, "scale-up of the preferred (broken) group", hasEvent(e, "", nodes.EventTriggeredScaleUp, e.group("broken")))
	e.eventually(2*time.Minute, "pods scheduled on the fallback group", func() (bool, error) {
		pods := e.pods("app")
		for _, p := range pods {
			if !strings.HasPrefix(p.Spec.NodeName, e.group("fallback")+"-") {
				return false, nil
			}
		}
		return len(pods) == 2, nil
	})
	ng, err := e.tidal.TidalV1alpha1().NodeGroups().Get(context.Background(), e.group("broken"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ng.Status.Backoff == nil || !strings.Contains(ng.Status.Backoff.Reason, "max-node-provision-time") {
		t.Fatalf("broken group status.backoff = %+v, want a provision-time backoff", ng.Status.Backoff)
	}
	if n := len(e.groupNodes("broken")); n != 0 {
		t.Fatalf("broken group has %d nodes", n)
	}
}

func readStatus(e *env) (nodes.ClusterStatus, error) {
	var st nodes.ClusterStatus
	cm, err := e.c.Client.CoreV1().ConfigMaps(e.ns).Get(context.Background(), nodes.DefaultStatusConfigMap, metav1.GetOptions{})
	if err != nil {
		return st, err
	}
	err = yaml.Unmarshal([]byte(cm.Data[nodes.StatusKey]), &st)
	return st, err
}

func statusNewerThan(e *env, t0 time.Time) func() (bool, error) {
	return func() (bool, error) {
		st, err := readStatus(e)
		if err != nil {
			return false, err
		}
		return st.Time.After(t0), nil
	}
}

func hasEvent(e *env, pod, reason, contains string) func() (bool, error) {
	return func() (bool, error) {
		sel := fields.Set{"reason": reason}
		if pod != "" {
			sel["involvedObject.name"] = pod
		}
		list, err := e.c.Client.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: sel.String()})
		if err != nil {
			return false, err
		}
		for _, ev := range list.Items {
			if strings.Contains(ev.Message, contains) {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d %s events on %s, none containing %q", len(list.Items), reason, pod, contains)
	}
}

// TestBurstPodsOnVirtualNodeDriveScaleUp: a pod running on a virtual node counts as burst; with
// ScaleUpForBurstPods the group grows so the virtual node's backfill can move it back, and the virtual node is
// never used as a destination for pending pods.
func TestBurstPodsOnVirtualNodeDriveScaleUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true, ScaleUpForBurstPods: true}, nodeGroup("real", 0, 3, nil))
	ctx := context.Background()
	vn := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "vn-" + e.id, Labels: map[string]string{"type": "virtual-kubelet"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "virtual-kubelet.io/provider", Value: "tidal", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000"), corev1.ResourceMemory: resource.MustParse("4Ti"), corev1.ResourcePods: resource.MustParse("1000")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	vn.Status.Allocatable = vn.Status.Capacity.DeepCopy()
	if _, err := e.c.Client.CoreV1().Nodes().Create(ctx, vn, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Client.CoreV1().Nodes().Delete(context.Background(), vn.Name, metav1.DeleteOptions{}) })
	burst := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "burst", Labels: map[string]string{"app": "burst"}},
		Spec: corev1.PodSpec{
			NodeName: vn.Name, // bound directly, as the virtual node's burst would have it
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "tidal.dev/nodegroup", Operator: corev1.NodeSelectorOpIn, Values: []string{e.group("real")},
				}}}},
			}}},
			Tolerations: []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "c", Image: "x", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}}},
		},
	}
	if _, err := e.c.Client.CoreV1().Pods(e.ns).Create(ctx, burst, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(2*time.Minute, "a real node for the burst pod", func() (bool, error) { return len(e.groupNodes("real")) == 1, nil })
	e.eventually(time.Minute, "status counts the burst pod", func() (bool, error) {
		st, err := readStatus(e)
		return err == nil && st.ScaleUp.BurstPods == 1, err
	})
	for i := 0; i < 3; i++ {
		e.eventually(30*time.Second, "a status update", statusNewerThan(e, time.Now()))
	}
	if n := len(e.groupNodes("real")); n != 1 {
		t.Fatalf("group has %d nodes for one 3-CPU burst pod, want 1", n)
	}
}

// TestPriorityExpanderReadsConfigMap: two identical groups; cluster-autoscaler's priority ConfigMap decides.
func TestPriorityExpanderReadsConfigMap(t *testing.T) {
	t.Parallel()
	shared := func(g *v1alpha1.NodeGroup) {
		g.Spec.Template.Labels = map[string]string{"pool": "prio"}
		g.Spec.Priority = 100 // ignored: the ConfigMap wins
	}
	cfg := nodes.Config{ScaleDownDisabled: true, Expanders: []string{expander.Priority}, PriorityConfigMap: "prio"}
	// newEnv sets StatusNamespace to the test namespace; the ConfigMap goes there before the groups need it.
	e := newEnvWith(t, cfg, func(e *env) {
		_, err := e.c.Client.CoreV1().ConfigMaps(e.ns).Create(context.Background(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "prio"},
			Data:       map[string]string{"priorities": "50:\n  - .*-preferred\n10:\n  - .*-other\n"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}, nodeGroup("other", 0, 3, shared), nodeGroup("preferred", 0, 3, shared))
	e.deployment("app", 1, "1", func(p *corev1.PodTemplateSpec) {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: "tidal.dev/nodegroup", Operator: corev1.NodeSelectorOpIn, Values: []string{e.group("other"), e.group("preferred")},
			}}}},
		}}}
	})
	e.eventually(2*time.Minute, "pod on the preferred group", func() (bool, error) {
		pods := e.pods("app")
		return len(pods) == 1 && strings.HasPrefix(pods[0].Spec.NodeName, e.group("preferred")+"-"), nil
	})
	if n := len(e.groupNodes("other")); n != 0 {
		t.Fatalf("other group grew to %d nodes", n)
	}
}

// TestScaleUpWakesOnPendingPod: with a 10-minute scan interval, a pod that becomes unschedulable after the first
// loop still gets its node: the pod watch starts a loop once the batching window closes.
func TestScaleUpWakesOnPendingPod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true, ScanInterval: 10 * time.Minute,
		Batch: batch.Window{Idle: time.Second, Max: 10 * time.Second}}, nodeGroup("pool", 0, 5, nil))
	e.eventually(time.Minute, "the first loop", statusNewerThan(e, time.Time{}))
	e.deployment("web", 3, "1", e.selectGroup("pool"))
	e.eventually(3*time.Minute, "a node for the pending pods, well before the next scan", func() (bool, error) {
		pods := e.pods("web")
		return len(e.groupNodes("pool")) == 1 && len(pods) == 3 && scheduled(pods) == 3, nil
	})
}

// TestPendingBurstIsOneDecision: 40 pods created at once are answered by one scale-up decision of 10 nodes that
// covers every one of them, not split across loops: with a 10-minute scan interval (the pod watch wakes the loop,
// no waiting for the scan), and with a 1-second one (ticks inside the batching window wait for it to close). The
// window is wider than the default 1 s idle so that a loaded machine's scheduler, marking the pods unschedulable
// one by one, still fits in it.
func TestPendingBurstIsOneDecision(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		scan time.Duration
	}{
		{name: "scan 10m", scan: 10 * time.Minute},
		{name: "scan 1s", scan: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nodes.Config{ScaleDownDisabled: true, ScanInterval: tc.scan,
				Batch: batch.Window{Idle: 3 * time.Second, Max: 30 * time.Second}}, nodeGroup("pool", 0, 20, nil))
			e.eventually(time.Minute, "the first loop", statusNewerThan(e, time.Time{}))
			e.deployment("web", 40, "1", e.selectGroup("pool"))
			e.eventually(3*time.Minute, "40 pods scheduled", func() (bool, error) {
				pods := e.pods("web")
				return len(pods) == 40 && scheduled(pods) == 40, nil
			})
			if got := testutil.ToFloat64(e.metrics.ScaleUps.WithLabelValues(e.group("pool"))); got != 1 {
				t.Errorf("%v scale-up decisions, want 1", got)
			}
			if got := len(e.groupNodes("pool")); got != 10 {
				t.Errorf("group has %d nodes, want 10", got)
			}
			// Every pod was in that one decision: its event names the whole step, 0->10.
			want := fmt.Sprintf("{%s 0->10 (max: 20)}", e.group("pool"))
			e.eventually(time.Minute, "a TriggeredScaleUp event on each pod", func() (bool, error) {
				list, err := e.c.Client.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{
					FieldSelector: fields.Set{"reason": nodes.EventTriggeredScaleUp}.String()})
				if err != nil {
					return false, err
				}
				pods := map[string]bool{}
				for _, ev := range list.Items {
					if !strings.Contains(ev.Message, want) {
						return false, fmt.Errorf("pod %s: event %q, want one containing %q", ev.InvolvedObject.Name, ev.Message, want)
					}
					pods[ev.InvolvedObject.Name] = true
				}
				return len(pods) == 40, nil
			})
		})
	}
}
