package simulator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/estimator"
	"github.com/tidalscale/tidal/autoscaler/nodes/simulator"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

func group(name, cpu string, mutate func(*v1alpha1.NodeGroup)) *v1alpha1.NodeGroup {
	g := &v1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.NodeGroupSpec{
			MaxSize: 100,
			Template: v1alpha1.NodeTemplate{Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(cpu),
				corev1.ResourceMemory: resource.MustParse("16Gi"),
			}},
			ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderSim},
		},
	}
	if mutate != nil {
		mutate(g)
	}
	return g
}

func pods(n int, cpu string, mutate func(*corev1.Pod)) []*corev1.Pod {
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: types.UID("rs-uid"), Controller: new(bool)}
	*owner.Controller = true
	out := make([]*corev1.Pod, n)
	for i := range out {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%d", i)),
				OwnerReferences: []metav1.OwnerReference{owner}, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("100Mi")},
			}}}},
		}
		if mutate != nil {
			mutate(p)
		}
		out[i] = p
	}
	return out
}

func estimate(t *testing.T, g *v1alpha1.NodeGroup, ps []*corev1.Pod, maxNodes int) estimator.Result {
	t.Helper()
	ctx := context.Background()
	snap, err := simulator.New(ctx, simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap.Fork()
	defer snap.Revert()
	res, err := estimator.Estimate(ctx, snap, ps, estimator.Options{
		MaxNodes: maxNodes,
		NewNode:  func(i int) *corev1.Node { return template.Node(g, template.SimulatedName(g.Name, i)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEstimateWithSchedulerPlugins(t *testing.T) {
	tainted := func(g *v1alpha1.NodeGroup) {
		g.Spec.Template.Taints = []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	}
	tolerate := func(p *corev1.Pod) {
		p.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	}
	antiAffinity := func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				TopologyKey:   corev1.LabelHostname,
			}},
		}}
	}
	hostPort := func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
	}
	selector := func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }
	cases := []struct {
		name       string
		group      *v1alpha1.NodeGroup
		pods       []*corev1.Pod
		maxNodes   int
		wantNodes  int
		wantFailed int
		wantReason string
	}{
		{name: "50 one-CPU pods on 4-CPU nodes", group: group("g", "4", nil), pods: pods(50, "1", nil), maxNodes: 100, wantNodes: 13},
		{name: "max size caps the estimate", group: group("g", "4", nil), pods: pods(50, "1", nil), maxNodes: 5, wantNodes: 5, wantFailed: 30, wantReason: estimator.ReasonMaxNodes},
		{name: "pod bigger than the template", group: group("g", "4", nil), pods: pods(3, "5", nil), maxNodes: 10, wantFailed: 3, wantReason: "Insufficient cpu"},
		{name: "untolerated taint", group: group("g", "4", tainted), pods: pods(2, "1", nil), maxNodes: 10, wantFailed: 2, wantReason: "untolerated taint"},
		{name: "tolerated taint", group: group("g", "4", tainted), pods: pods(8, "1", tolerate), maxNodes: 10, wantNodes: 2},
		{name: "node selector mismatch", group: group("g", "4", nil), pods: pods(1, "1", selector), maxNodes: 10, wantFailed: 1, wantReason: "didn't match Pod's node affinity/selector"},
		{name: "required anti-affinity: one pod per node", group: group("g", "4", nil), pods: pods(6, "1", antiAffinity), maxNodes: 10, wantNodes: 6},
		{name: "host port: one pod per node", group: group("g", "4", nil), pods: pods(3, "100m", hostPort), maxNodes: 10, wantNodes: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := estimate(t, tc.group, tc.pods, tc.maxNodes)
			if res.NodeCount != tc.wantNodes {
				t.Errorf("NodeCount = %d, want %d", res.NodeCount, tc.wantNodes)
			}
			if len(res.Failed) != tc.wantFailed {
				t.Fatalf("failed pods = %d, want %d (%+v)", len(res.Failed), tc.wantFailed, res.Failed)
			}
			if len(res.Placed)+len(res.Failed) != len(tc.pods) {
				t.Errorf("placed %d + failed %d != %d pods", len(res.Placed), len(res.Failed), len(tc.pods))
			}
			for _, f := range res.Failed {
				if !strings.Contains(strings.Join(f.Reasons, ";"), tc.wantReason) {
					t.Errorf("pod %s reasons %q, want one containing %q", f.Pod.Name, f.Reasons, tc.wantReason)
				}
			}
		})
	}
}

func TestSnapshotForkRevert(t *testing.T) {
	ctx := context.Background()
	snap, err := simulator.New(ctx, simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := group("g", "2", nil)
	for i := 0; i < 2; i++ {
		if err := snap.AddNode(template.Node(g, fmt.Sprintf("n%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	ps := pods(4, "1", nil)
	snap.Fork()
	for _, p := range ps {
		if _, err := snap.SchedulePod(ctx, p, estimator.ScheduleOptions{}); err != nil {
			t.Fatalf("schedule %s: %v", p.Name, err)
		}
	}
	extra := pods(5, "1", nil)[4]
	_, err = snap.SchedulePod(ctx, extra, estimator.ScheduleOptions{})
	var nf *estimator.NoFitError
	if !errors.As(err, &nf) {
		t.Fatalf("fifth pod: err = %v, want NoFitError", err)
	}
	if err := snap.RemoveNode("n0"); err != nil {
		t.Fatal(err)
	}
	snap.Revert()
	if got := snap.NodeNames(); len(got) != 2 || got[0] != "n0" || got[1] != "n1" {
		t.Fatalf("nodes after revert = %v", got)
	}
	for _, n := range []string{"n0", "n1"} {
		if got := len(snap.PodsOn(n)); got != 0 {
			t.Errorf("pods on %s after revert = %d, want 0", n, got)
		}
	}
	node, err := snap.SchedulePod(ctx, extra, estimator.ScheduleOptions{Exclude: map[string]bool{"n0": true}})
	if err != nil || node != "n1" {
		t.Fatalf("schedule with exclude = %q, %v; want n1", node, err)
	}
}
