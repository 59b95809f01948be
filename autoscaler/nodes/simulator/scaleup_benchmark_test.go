package simulator_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

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

// benchCluster builds nodes 8-CPU nodes with podsPerNode 260m pods each (7.8 of 8 CPU requested with 30), and pending
// 500m pods from 10 deployments, none of which fits an existing node.
func benchCluster(nodes, podsPerNode, pending int) (*v1alpha1.NodeGroup, []*corev1.Node, [][]*corev1.Pod, []*corev1.Pod) {
	g := group("bench", "8", func(g *v1alpha1.NodeGroup) { g.Spec.MaxSize = 100000 })
	existing := group("existing", "8", nil)
	ns := make([]*corev1.Node, nodes)
	bound := make([][]*corev1.Pod, nodes)
	for i := range ns {
		ns[i] = template.Node(existing, fmt.Sprintf("node-%d", i))
		bound[i] = benchPods(fmt.Sprintf("rs-%d", i%50), podsPerNode, "260m", i*podsPerNode)
		for _, p := range bound[i] {
			p.Spec.NodeName = ns[i].Name
		}
	}
	var pend []*corev1.Pod
	for d := 0; d < 10; d++ {
		pend = append(pend, benchPods(fmt.Sprintf("pending-%d", d), pending/10, "500m", 10_000_000+d*pending)...)
	}
	return g, ns, bound, pend
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

func benchPods(owner string, n int, cpu string, base int) []*corev1.Pod {
	ctrl := true
	ref := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner, UID: types.UID(owner), Controller: &ctrl}
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", owner, base+i), Namespace: "bench", UID: types.UID(fmt.Sprintf("u-%d", base+i)),
				OwnerReferences: []metav1.OwnerReference{ref}, Labels: map[string]string{"app": owner}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("256Mi")},
			}}}},
		}
	}
	return out
}

// BenchmarkScaleUpDecision measures one scale-up decision as RunOnce makes it, in memory: fill the snapshot
// with every node and pod, drop pending pods that fit existing nodes, estimate and expand. Reported:
// snapshot-ms (fill), filter-ms (existing nodes), plan-ms (binpacking + expander), heap-MB after the fill.
func BenchmarkScaleUpDecision(b *testing.B) {
	for _, nodes := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d/pods=30/pending=5000", nodes), func(b *testing.B) {
			ctx := context.Background()
			g, ns, bound, pending := benchCluster(nodes, 30, 5000)
			snap, err := simulator.New(ctx, simulator.Options{})
			if err != nil {
				b.Fatal(err)
			}
			filters, err := expander.New(expander.Config{Names: []string{expander.LeastWaste}})
			if err != nil {
				b.Fatal(err)
			}
			planner := scaleup.Planner{Expander: filters}
			var fill, filter, plan time.Duration
			var heap uint64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				snap.Reset()
				for j, n := range ns {
					if err := snap.AddNodeWithPods(n, bound[j]); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				snap.Fork()
				rest, err := scaleup.FilterSchedulable(ctx, snap, pending)
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				res, err := planner.Plan(ctx, snap, scaleup.Input{Pending: rest, Groups: []scaleup.Group{{NodeGroup: g}}})
				if err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				snap.Revert()
				if len(rest) != len(pending) || len(res.ScaleUps) != 1 || res.ScaleUps[0].Delta != 313 || len(res.NoScaleUp) != 0 {
					b.Fatalf("%d of %d pending pods fit existing nodes; plan = %+v; want one scale-up of 313 nodes",
						len(pending)-len(rest), len(pending), res.ScaleUps)
				}
				fill += t1.Sub(t0)
				filter += t2.Sub(t1)
				plan += t3.Sub(t2)
				if i == 0 {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					heap = ms.HeapInuse
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(fill.Milliseconds())/n, "snapshot-ms")
			b.ReportMetric(float64(filter.Milliseconds())/n, "filter-ms")
			b.ReportMetric(float64(plan.Milliseconds())/n, "plan-ms")
			b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
		})
	}
}
