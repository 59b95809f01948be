package scaledown_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/simulator"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testGroup(min int32) *v1alpha1.NodeGroup {
	return &v1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "g"},
		Spec: v1alpha1.NodeGroupSpec{MinSize: min, MaxSize: 10, ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderSim},
			Template: v1alpha1.NodeTemplate{Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")}}},
	}
}

type podOpt func(*corev1.Pod)

func pod(name, node, cpu string, opts ...podOpt) *corev1.Pod {
	ctrl := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name), Labels: map[string]string{"app": name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs-" + name, UID: "rs-" + types.UID(name), Controller: &ctrl}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func annotated(k, v string) podOpt {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{k: v} }
}

func noController(p *corev1.Pod) { p.OwnerReferences = nil }

func emptyDir(p *corev1.Pod) {
	p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
}

func daemonSet(p *corev1.Pod) { p.OwnerReferences[0].Kind = "DaemonSet" }

func systemNS(p *corev1.Pod) { p.Namespace = metav1.NamespaceSystem }

// cluster is n nodes of group g named n0..; pods go where their NodeName says.
type cluster struct {
	nodes []*corev1.Node
	pods  []*corev1.Pod
}

func (c cluster) run(t *testing.T, p *scaledown.Planner, now time.Time, in scaledown.Input, group *v1alpha1.NodeGroup) scaledown.Plan {
	t.Helper()
	ctx := context.Background()
	snap, err := simulator.New(ctx, simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	byNode := map[string][]*corev1.Pod{}
	for _, p := range c.pods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	for _, n := range c.nodes {
		if err := snap.AddNodeWithPods(n, byNode[n.Name]); err != nil {
			t.Fatal(err)
		}
		usage, _ := snap.Requested(n.Name)
		in.Candidates = append(in.Candidates, scaledown.Candidate{Node: n, Group: group, Pods: byNode[n.Name], Usage: usage})
	}
	if in.Sizes == nil {
		in.Sizes = map[string]scaledown.GroupSize{group.Name: {Target: len(c.nodes), Min: int(group.Spec.MinSize)}}
	}
	plan, err := p.Plan(ctx, snap, now, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(snap.NodeNames()); got != len(c.nodes) {
		t.Fatalf("Plan left %d nodes in the snapshot, want %d (it must revert)", got, len(c.nodes))
	}
	return plan
}

func nodesOf(g *v1alpha1.NodeGroup, n int, mutate func(i int, node *corev1.Node)) []*corev1.Node {
	out := make([]*corev1.Node, n)
	for i := range out {
		out[i] = template.Node(g, fmt.Sprintf("n%d", i))
		if mutate != nil {
			mutate(i, out[i])
		}
	}
	return out
}

func removed(plan scaledown.Plan) []string {
	var out []string
	for _, r := range plan.Remove {
		out = append(out, r.Node.Name)
	}
	return out
}

func TestPlanner(t *testing.T) {
	g := testGroup(0)
	busy := func(i int) []*corev1.Pod { // n1 is 3/4 used: a destination for small pods, never a candidate
		return []*corev1.Pod{pod(fmt.Sprintf("big-%d", i), "n1", "3")}
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "pdb", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 0},
	}
	cases := []struct {
		name        string
		group       *v1alpha1.NodeGroup
		nodes       []*corev1.Node
		pods        []*corev1.Pod
		pdbs        []*policyv1.PodDisruptionBudget
		wantRemoved []string
		wantEvict   int
		blocked     map[string]string // node → substring of the reason
	}{
		{name: "empty node removed", group: g, nodes: nodesOf(g, 2, nil), pods: busy(0), wantRemoved: []string{"n0"}},
		{name: "movable pod drained", group: g, nodes: nodesOf(g, 2, nil), pods: append(busy(0), pod("web", "n0", "500m")), wantRemoved: []string{"n0"}, wantEvict: 1},
		{name: "DaemonSet pods ignored", group: g, nodes: nodesOf(g, 2, nil), pods: append(busy(0), pod("ds", "n0", "100m", daemonSet)), wantRemoved: []string{"n0"}},
		{name: "safe-to-evict=false blocks", group: g, nodes: nodesOf(g, 2, nil),
			pods:    append(busy(0), pod("pinned", "n0", "500m", annotated(scaledown.AnnotationSafeToEvict, "false"))),
			blocked: map[string]string{"n0": "safe-to-evict=false"}},
		{name: "pod without controller blocks", group: g, nodes: nodesOf(g, 2, nil), pods: append(busy(0), pod("bare", "n0", "500m", noController)),
			blocked: map[string]string{"n0": "has no controller"}},
		{name: "safe-to-evict=true overrides missing controller", group: g, nodes: nodesOf(g, 2, nil),
			pods: append(busy(0), pod("bare", "n0", "500m", noController, annotated(scaledown.AnnotationSafeToEvict, "true"))), wantRemoved: []string{"n0"}, wantEvict: 1},
		{name: "local storage blocks", group: g, nodes: nodesOf(g, 2, nil), pods: append(busy(0), pod("scratch", "n0", "500m", emptyDir)),
			blocked: map[string]string{"n0": "local storage"}},
		{name: "kube-system pod without PDB blocks", group: g, nodes: nodesOf(g, 2, nil), pods: append(busy(0), pod("dns", "n0", "500m", systemNS)),
			blocked: map[string]string{"n0": "kube-system"}},
		{name: "PDB with no disruptions allowed blocks", group: g, nodes: nodesOf(g, 2, nil), pods: append(busy(0), pod("guarded", "n0", "500m")),
			pdbs: []*policyv1.PodDisruptionBudget{pdb}, blocked: map[string]string{"n0": "PodDisruptionBudget"}},
		{name: "pods that fit nowhere block", group: g, nodes: nodesOf(g, 2, nil), pods: append(busy(0), pod("mid", "n0", "1500m")),
			blocked: map[string]string{"n0": "fits no other node"}},
		{name: "utilization at threshold keeps the node", group: g, nodes: nodesOf(g, 2, nil), pods: append(busy(0), pod("half", "n0", "2")),
			blocked: map[string]string{"n0": "utilization 0.50"}},
		{name: "opt-out annotation", group: g, nodes: nodesOf(g, 2, func(i int, n *corev1.Node) {
			if i == 0 {
				n.Annotations = map[string]string{template.AnnotationScaleDownDisabled: "true"}
			}
		}), pods: busy(0), blocked: map[string]string{"n0": "disabled by annotation"}},
		{name: "min size", group: testGroup(2), nodes: nodesOf(testGroup(2), 3, nil), pods: busy(0), wantRemoved: []string{"n0"},
			blocked: map[string]string{"n2": "minimum size"}},
		{name: "two half-empty nodes cannot both move onto the same room", group: g, nodes: nodesOf(g, 3, nil),
			pods:        append(busy(0), pod("a", "n0", "700m"), pod("b", "n2", "700m")),
			wantRemoved: []string{"n0"}, wantEvict: 1, blocked: map[string]string{"n2": "fits no other node"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := scaledown.NewPlanner(scaledown.Options{UnneededTime: time.Minute, SkipNodesWithLocalStorage: true, SkipNodesWithSystemPods: true})
			c := cluster{nodes: tc.nodes, pods: tc.pods}
			first := c.run(t, p, t0, scaledown.Input{PDBs: tc.pdbs}, tc.group)
			if len(first.Remove) != 0 {
				t.Fatalf("removed %v before the unneeded time", removed(first))
			}
			plan := c.run(t, p, t0.Add(time.Minute), scaledown.Input{PDBs: tc.pdbs}, tc.group)
			if got := removed(plan); strings.Join(got, ",") != strings.Join(tc.wantRemoved, ",") {
				t.Fatalf("removed %v, want %v (blocked: %v)", got, tc.wantRemoved, plan.Blocked)
			}
			evict := 0
			for _, r := range plan.Remove {
				evict += len(r.Evict)
			}
			if evict != tc.wantEvict {
				t.Errorf("evictions = %d, want %d", evict, tc.wantEvict)
			}
			for node, want := range tc.blocked {
				if !strings.Contains(plan.Blocked[node], want) {
					t.Errorf("node %s blocked %q, want a reason containing %q", node, plan.Blocked[node], want)
				}
			}
		})
	}
}

func TestUnneededTimeResetsWhenNeededAgain(t *testing.T) {
	g := testGroup(0)
	p := scaledown.NewPlanner(scaledown.Options{UnneededTime: time.Minute})
	empty := cluster{nodes: nodesOf(g, 2, nil), pods: []*corev1.Pod{pod("big", "n1", "3")}}
	full := cluster{nodes: empty.nodes, pods: append(empty.pods, pod("filler", "n0", "3"))}
	empty.run(t, p, t0, scaledown.Input{}, g)
	if plan := full.run(t, p, t0.Add(30*time.Second), scaledown.Input{}, g); len(plan.Unneeded) != 0 {
		t.Fatalf("unneeded = %v while full", plan.Unneeded)
	}
	plan := empty.run(t, p, t0.Add(70*time.Second), scaledown.Input{}, g)
	if len(plan.Remove) != 0 || !plan.Unneeded["n0"].Equal(t0.Add(70*time.Second)) {
		t.Fatalf("after being needed again: remove %v unneeded %v; want the clock restarted", removed(plan), plan.Unneeded)
	}
}

func TestDeletingNodesAreNeitherCandidatesNorDestinations(t *testing.T) {
	g := testGroup(0)
	p := scaledown.NewPlanner(scaledown.Options{UnneededTime: time.Nanosecond})
	// n0 has a small pod; n1 (being deleted) has room but may not receive it; n2 is full.
	c := cluster{nodes: nodesOf(g, 3, nil), pods: []*corev1.Pod{pod("small", "n0", "500m"), pod("full", "n2", "4")}}
	in := scaledown.Input{Deleting: map[string]bool{"n1": true}}
	c.run(t, p, t0, in, g)
	plan := c.run(t, p, t0.Add(time.Second), in, g)
	if len(plan.Remove) != 0 {
		t.Fatalf("removed %v; n0's pod has nowhere to go but a deleting node", removed(plan))
	}
}
