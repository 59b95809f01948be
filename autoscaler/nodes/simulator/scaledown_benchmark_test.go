package simulator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/simulator"
)

// BenchmarkScaleDownPlan measures one scale-down planning round in memory: every node is an 8-CPU node of the
// group with 30 pods of 100m (37.5% used, so all are candidates), pods from 50 ReplicaSets.
func BenchmarkScaleDownPlan(b *testing.B) {
	for _, nodes := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d/pods=30", nodes), func(b *testing.B) {
			ctx := context.Background()
			g, ns, bound, _ := benchCluster(nodes, 30, 0)
			for i := range bound {
				for _, p := range bound[i] {
					p.Spec.Containers[0].Resources.Requests["cpu"] = mustQuantity("100m")
				}
			}
			snap, err := simulator.New(ctx, simulator.Options{})
			if err != nil {
				b.Fatal(err)
			}
			for j, n := range ns {
				if err := snap.AddNodeWithPods(n, bound[j]); err != nil {
					b.Fatal(err)
				}
			}
			in := scaledown.Input{Sizes: map[string]scaledown.GroupSize{"existing": {Target: nodes}}}
			for j, n := range ns {
				usage, _ := snap.Requested(n.Name)
				in.Candidates = append(in.Candidates, scaledown.Candidate{Node: n, Group: g, Pods: bound[j], Usage: usage})
			}
			for i := range in.Candidates {
				in.Candidates[i].Group = g
			}
			in.Sizes = map[string]scaledown.GroupSize{g.Name: {Target: nodes}}
			planner := scaledown.NewPlanner(scaledown.Options{UnneededTime: time.Nanosecond})
			now := time.Now()
			unneeded := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				plan, err := planner.Plan(ctx, snap, now.Add(time.Duration(i)*time.Second), in)
				if err != nil {
					b.Fatal(err)
				}
				unneeded = len(plan.Unneeded)
			}
			if unneeded == 0 {
				b.Fatal("no node found unneeded")
			}
			b.ReportMetric(float64(unneeded), "unneeded")
		})
	}
}
