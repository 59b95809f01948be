package scaleup_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/expander"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaleup"
	"github.com/tidalscale/tidal/autoscaler/nodes/simulator"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

func group(name, cpu string, max int32, labels map[string]string) *v1alpha1.NodeGroup {
	return &v1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.NodeGroupSpec{MaxSize: max, ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderSim},
			Template: v1alpha1.NodeTemplate{Labels: labels, Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("16Gi")}}},
	}
}

func pods(prefix string, n int, cpu string, selector map[string]string) []*corev1.Pod {
	ctrl := true
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Namespace: "ns", UID: types.UID(fmt.Sprintf("%s-%d", prefix, i)),
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: prefix, UID: types.UID(prefix), Controller: &ctrl}}},
			Spec: corev1.PodSpec{NodeSelector: selector, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
		}
	}
	return out
}

func planner(t *testing.T, limits scaleup.Limits) scaleup.Planner {
	t.Helper()
	f, err := expander.New(expander.Config{Names: []string{expander.LeastWaste}})
	if err != nil {
		t.Fatal(err)
	}
	return scaleup.Planner{Expander: f, Limits: limits}
}

func TestPlan(t *testing.T) {
	web := map[string]string{"pool": "web"}
	batch := map[string]string{"pool": "batch"}
	cases := []struct {
		name      string
		groups    []scaleup.Group
		pending   []*corev1.Pod
		limits    scaleup.Limits
		usage     scaleup.Usage
		want      map[string]int // group → delta
		wantStuck int
		reason    string // substring of a stuck pod's message
	}{
		{name: "pods for two groups grow both in one loop",
			groups:  []scaleup.Group{{NodeGroup: group("web", "4", 10, web)}, {NodeGroup: group("batch", "8", 10, batch)}},
			pending: append(pods("w", 8, "1", web), pods("b", 4, "4", batch)...),
			want:    map[string]int{"web": 2, "batch": 2}},
		{name: "max size leaves pods stuck",
			groups:  []scaleup.Group{{NodeGroup: group("web", "4", 3, web), Target: 2}},
			pending: pods("w", 8, "1", web), want: map[string]int{"web": 1}, wantStuck: 4, reason: "web: node group (or cluster) node limit reached"},
		{name: "cluster node limit caps the delta",
			groups: []scaleup.Group{{NodeGroup: group("web", "4", 10, web)}}, pending: pods("w", 16, "1", web),
			limits: scaleup.Limits{MaxNodes: 5}, usage: scaleup.Usage{Nodes: 3}, want: map[string]int{"web": 2}, wantStuck: 8},
		{name: "cluster CPU limit caps the delta",
			groups: []scaleup.Group{{NodeGroup: group("web", "4", 10, web)}}, pending: pods("w", 16, "1", web),
			limits: scaleup.Limits{MaxMilliCPU: 20_000}, usage: scaleup.Usage{MilliCPU: 8_000}, want: map[string]int{"web": 3}, wantStuck: 4},
		{name: "backed-off group is skipped with its reason",
			groups:  []scaleup.Group{{NodeGroup: group("web", "4", 10, web), Backoff: "2 nodes not registered"}},
			pending: pods("w", 2, "1", web), wantStuck: 2, reason: "web: in backoff: 2 nodes not registered"},
		{name: "pod matching no group names each group's reason",
			groups:  []scaleup.Group{{NodeGroup: group("web", "4", 10, web)}, {NodeGroup: group("batch", "8", 10, batch)}},
			pending: pods("x", 1, "1", map[string]string{"pool": "gpu"}), wantStuck: 1,
			reason: "batch: node(s) didn't match Pod's node affinity/selector; web: node(s) didn't match Pod's node affinity/selector"},
		{name: "least-waste prefers the snug group",
			groups:  []scaleup.Group{{NodeGroup: group("big", "16", 10, web)}, {NodeGroup: group("snug", "4", 10, web)}},
			pending: pods("w", 4, "1", web), want: map[string]int{"snug": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			snap, err := simulator.New(ctx, simulator.Options{})
			if err != nil {
				t.Fatal(err)
			}
			p := planner(t, tc.limits)
			plan, err := p.Plan(ctx, snap, scaleup.Input{Pending: tc.pending, Groups: tc.groups, Usage: tc.usage})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, u := range plan.ScaleUps {
				got[u.NodeGroup.Name] = u.Delta
				if len(u.Pods) == 0 {
					t.Errorf("scale-up of %s lists no pods", u.NodeGroup.Name)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(orEmpty(tc.want)) {
				t.Fatalf("scale-ups %v, want %v", got, tc.want)
			}
			if len(plan.NoScaleUp) != tc.wantStuck {
				t.Fatalf("stuck pods = %d, want %d", len(plan.NoScaleUp), tc.wantStuck)
			}
			if tc.reason != "" && !strings.Contains(plan.NoScaleUp[0].Message(), tc.reason) {
				t.Fatalf("message %q, want one containing %q", plan.NoScaleUp[0].Message(), tc.reason)
			}
			if len(snap.NodeNames()) != 0 {
				t.Fatalf("Plan left template nodes in the snapshot: %v", snap.NodeNames())
			}
		})
	}
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// Upcoming nodes absorb pending pods so a second loop does not scale up again.
func TestFilterSchedulableUsesUpcomingNodes(t *testing.T) {
	ctx := context.Background()
	snap, err := simulator.New(ctx, simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := group("web", "4", 10, nil)
	for i := 0; i < 2; i++ {
		if err := snap.AddNode(template.Node(g, fmt.Sprintf("upcoming-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := scaleup.FilterSchedulable(ctx, snap, pods("w", 10, "1", nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 2 {
		t.Fatalf("%d pods left after 2 upcoming 4-CPU nodes took 8, want 2", len(rest))
	}
}
