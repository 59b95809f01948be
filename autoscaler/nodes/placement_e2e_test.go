package nodes_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/placement"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
	"github.com/tidalscale/tidal/virtualnode/backend"
	vksim "github.com/tidalscale/tidal/virtualnode/backend/sim"
	"github.com/tidalscale/tidal/virtualnode/backfill"
	vkprovider "github.com/tidalscale/tidal/virtualnode/provider"
)

// virtualNode runs a virtual node (sim backend) with backfill for the rest of the test and returns its name.
func (e *env) virtualNode() string {
	e.t.Helper()
	name := "vk-" + e.id
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	logger := zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel))
	vn, err := vkprovider.NewVirtualNode(vkprovider.VirtualNodeOptions{
		Client: e.c.Client, Listener: l, Logger: logger,
		Node: vkprovider.NodeOptions{Name: name, Address: "127.0.0.1", Backend: "sim", Version: "v1.37.2-tidal", Capacity: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100"), corev1.ResourceMemory: resource.MustParse("400Gi"), corev1.ResourcePods: resource.MustParse("1000"),
		}},
		Server: vkprovider.ServerOptions{Auth: vkprovider.AuthNone},
		NewBackend: func(d vkprovider.BackendDeps) (backend.Backend, error) {
			return vksim.New(vksim.Options{Changed: d.Changed, NodeIP: d.NodeIP, StartLatency: vksim.Latency{Kind: "fixed", Value: 20 * time.Millisecond}})
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	bf, err := backfill.New(backfill.Options{Client: e.c.Client, NodeName: name, Interval: 500 * time.Millisecond, ReadyTimeout: time.Minute, Logger: logger})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = vn.Run(ctx) })
	e.t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = e.c.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer rcancel()
	if err := vn.WaitReady(rctx); err != nil {
		e.t.Fatalf("virtual node: %v", err)
	}
	e.eventually(time.Minute, "virtual node Ready", func() (bool, error) {
		n, err := e.c.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	wg.Go(func() { bf.Run(ctx) })
	return name
}

// groupOrVirtual lets pods onto the group's nodes or the test's virtual node (given the toleration), nothing
// else of the shared cluster.
func (e *env) groupOrVirtual(group, vnode string) func(*corev1.PodTemplateSpec) {
	return func(p *corev1.PodTemplateSpec) {
		p.Spec.Affinity = affinityGroupOrVirtual(e.group(group), vnode)
	}
}

func affinityGroupOrVirtual(group, vnode string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: template.LabelNodeGroup, Operator: corev1.NodeSelectorOpIn, Values: []string{group}}}},
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{vnode}}}},
		}}}}
}

// placedRequest is capacityRequest with spec.placement auto and the pods' affinity.
func (e *env) placedRequest(app string, replicas int32, cpu, group, vnode string, p v1alpha1.Placement) {
	e.t.Helper()
	e.capacityRequest(app, replicas, cpu, group, time.Now().Add(10*time.Minute), func(cr *v1alpha1.CapacityRequest) {
		cr.Spec.Pod.NodeSelector = nil
		cr.Spec.Pod.Affinity = affinityGroupOrVirtual(e.group(group), vnode)
		cr.Spec.Placement = &p
	})
}

func (e *env) decision(app string) *v1alpha1.PlacementDecision {
	e.t.Helper()
	cr, err := e.tidal.TidalV1alpha1().CapacityRequests(e.ns).Get(context.Background(), "deployment-"+app, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get capacity request: %v", err)
	}
	return cr.Status.Placement
}

func (e *env) provisionTime(group string) *v1alpha1.ProvisionTimeEstimate {
	e.t.Helper()
	ng, err := e.tidal.TidalV1alpha1().NodeGroups().Get(context.Background(), e.group(group), metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get node group: %v", err)
	}
	return ng.Status.ProvisionTime
}

// runningOn counts Running pods of app on the virtual node and elsewhere (backfill replacements not counted
// until handed over).
func (e *env) runningOn(app, vnode string) (virtual, real int) {
	for _, p := range e.pods(app) {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Labels[backfill.LabelReplacementFor] != "" {
			continue
		}
		if p.Spec.NodeName == vnode {
			virtual++
		} else {
			real++
		}
	}
	return virtual, real
}

var auto5s = v1alpha1.Placement{Policy: v1alpha1.PlacementAuto, MaxPendingSeconds: ptr.To[int32](5)}

// TestPlacementAutoBurstsWhenNodesAreSlow: placement auto with a 5s target, a group whose measured provision
// time is 30s (sim delay 30s; the estimate is seeded in status as an earlier scale-up would have left it): the
// pods burst to the virtual node, and the virtual node's backfill moves them to the group's nodes once those are
// Ready.
func TestPlacementAutoBurstsWhenNodesAreSlow(t *testing.T) {
	t.Parallel()
	slow := func(g *v1alpha1.NodeGroup) {
		g.Spec.ProviderRef.Config = map[string]string{sim.ConfigProvisioningDelay: "30s"}
	}
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true, ScaleUpForBurstPods: true}, nodeGroup("pool", 0, 10, slow))
	seed := &v1alpha1.ProvisionTimeEstimate{Estimate: metav1.Duration{Duration: 30 * time.Second}, Last: metav1.Duration{Duration: 30 * time.Second}, Samples: 1}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ng, err := e.tidal.TidalV1alpha1().NodeGroups().Get(context.Background(), e.group("pool"), metav1.GetOptions{})
		if err != nil {
			return err
		}
		ng.Status.ProvisionTime = seed
		_, err = e.tidal.TidalV1alpha1().NodeGroups().UpdateStatus(context.Background(), ng, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	vnode := e.virtualNode()

	e.placedRequest("web", 4, "1500m", "pool", vnode, auto5s)
	e.deployment("web", 4, "1500m", e.groupOrVirtual("pool", vnode))

	e.eventually(2*time.Minute, "all four pods Running on the virtual node", func() (bool, error) {
		v, _ := e.runningOn("web", vnode)
		return v == 4, nil
	})
	d := e.decision("web")
	if d == nil || d.Decision != v1alpha1.PlacementDecisionBurst || !strings.Contains(d.Reason, "nodes would miss the target") ||
		d.NodeGroup != e.group("pool") || d.NodeProvisionTime == nil || d.NodeProvisionTime.Duration != 30*time.Second || d.VirtualNode == "" {
		t.Fatalf("decision %+v, want Burst for group pool with its 30s estimate", d)
	}
	for _, p := range e.pods("web") {
		if p.Spec.NodeName == vnode && p.Annotations[placement.AnnotationBurst] == "" {
			t.Errorf("pod %s on the virtual node without the %s mark", p.Name, placement.AnnotationBurst)
		}
	}
	e.eventually(time.Minute, "events: PlacementDecided on the request, BurstToVirtual on the pods", func() (bool, error) {
		list, err := e.c.Client.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		decided, burst := false, 0
		for _, ev := range list.Items {
			switch {
			case ev.Reason == nodes.EventPlacementDecided && ev.InvolvedObject.Kind == "CapacityRequest" && strings.HasPrefix(ev.Message, "Burst"):
				decided = true
			case ev.Reason == nodes.EventBurstToVirtual && ev.InvolvedObject.Kind == "Pod":
				burst++
			}
		}
		return decided && burst == 4, nil
	})
	if got := e.targetSize("pool"); got != 2 {
		t.Errorf("target size %d, want the 2 nodes the pods need (requested for them while they run on the virtual node)", got)
	}
	e.eventually(3*time.Minute, "backfill: all four pods Running on the group's nodes, none on the virtual node", func() (bool, error) {
		v, r := e.runningOn("web", vnode)
		return v == 0 && r == 4, nil
	})
	if pt := e.provisionTime("pool"); pt == nil || pt.Samples < 2 {
		t.Errorf("provision time %+v: want the two new nodes measured on top of the seed", pt)
	}
}

// TestPlacementAutoWaitsWhenNodesAreFast: the same policy with a 2s node delay, measured by a first scale-up:
// the pods wait for the nodes and never touch the virtual node.
func TestPlacementAutoWaitsWhenNodesAreFast(t *testing.T) {
	t.Parallel()
	fast := func(g *v1alpha1.NodeGroup) {
		g.Spec.ProviderRef.Config = map[string]string{sim.ConfigProvisioningDelay: "2s"}
	}
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true, ScaleUpForBurstPods: true}, nodeGroup("pool", 0, 10, fast))
	vnode := e.virtualNode()

	// A first scale-up measures the group.
	e.deployment("warm", 1, "1500m", e.selectGroup("pool"))
	e.eventually(2*time.Minute, "the group's provision time measured", func() (bool, error) {
		pt := e.provisionTime("pool")
		return pt != nil && pt.Samples >= 1, nil
	})
	pt := e.provisionTime("pool")
	if pt.Estimate.Duration < 2*time.Second {
		t.Fatalf("measured %s, shorter than the 2s the sim provider waits", pt.Estimate.Duration)
	}
	if pt.Estimate.Duration > 5*time.Second {
		t.Skipf("the machine is too loaded: a 2s node took %s to be Ready, beyond the 5s target", pt.Estimate.Duration)
	}

	e.placedRequest("web", 4, "1500m", "pool", vnode, auto5s)
	e.deployment("web", 4, "1500m", e.groupOrVirtual("pool", vnode))
	e.eventually(2*time.Minute, "all four pods Running on the group's nodes", func() (bool, error) {
		_, r := e.runningOn("web", vnode)
		return r == 4, nil
	})
	d := e.decision("web")
	if d == nil || d.Decision != v1alpha1.PlacementDecisionWait || !strings.Contains(d.Reason, "nodes arrive in time") || d.VirtualNode == "" {
		t.Fatalf("decision %+v, want Wait with a virtual node available", d)
	}
	for _, p := range e.pods("web") {
		if p.Spec.NodeName == vnode || p.Annotations[placement.AnnotationBurst] != "" || placement.Tolerates(&p) {
			t.Errorf("pod %s was let onto the virtual node (node %q)", p.Name, p.Spec.NodeName)
		}
	}
}
