package nodes_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
)

// BenchmarkEventToRunning measures a scale-up decision for 20 pods (1 CPU each) that need 3 new nodes (8 CPU,
// sim provider, 30s provisioning delay) → all 20 pods Running, with the command's batch window (1s idle, 10s
// max) and --scale-up-for-burst-pods:
//
//	off:  only /scale is written (no demand signal)
//	on:   the CapacityRequest first, then /scale (the demand signal)
//	auto: the CapacityRequest carries placement auto (maxPendingSeconds 5) and a virtual node (sim backend, with
//	      backfill) is there: the pods burst, and backfill later moves them to the nodes
//
// Each iteration uses a fresh group and Deployment; the group's provision time is seeded at 30s (as earlier
// scale-ups would have measured it). Reported: p50 and max seconds to all Running.
//
//	go test -run '^$' -bench BenchmarkEventToRunning -benchtime 10x -timeout 60m ./autoscaler/nodes/
func BenchmarkEventToRunning(b *testing.B) {
	for _, mode := range []string{"off", "on", "auto"} {
		b.Run("demand="+mode, func(b *testing.B) {
			e := newEnv(b, nodes.Config{ScaleDownDisabled: true, ScaleUpForBurstPods: true, Batch: batch.Window{Idle: time.Second, Max: 10 * time.Second}})
			vnode := ""
			if mode == "auto" {
				vnode = e.virtualNode()
			}
			ctx := context.Background()
			var took []time.Duration
			for i := 0; b.Loop(); i++ {
				group := fmt.Sprintf("g%d", i)
				ng := nodeGroup(e.group(group), 0, 4, func(g *v1alpha1.NodeGroup) {
					g.Labels = map[string]string{testLabel: e.id}
					g.Spec.ProviderRef.Config = map[string]string{sim.ConfigProvisioningDelay: "30s"}
					g.Spec.Template.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi")}
				})
				e.createGroup(ng)
				if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					got, err := e.tidal.TidalV1alpha1().NodeGroups().Get(ctx, ng.Name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					got.Status.ProvisionTime = &v1alpha1.ProvisionTimeEstimate{Estimate: metav1.Duration{Duration: 30 * time.Second}, Samples: 1}
					_, err = e.tidal.TidalV1alpha1().NodeGroups().UpdateStatus(ctx, got, metav1.UpdateOptions{})
					return err
				}); err != nil {
					b.Fatal(err)
				}
				app := "app" + group
				place := e.selectGroup(group)
				if vnode != "" {
					place = e.groupOrVirtual(group, vnode)
				}
				e.deployment(app, 0, "1", place)
				start := time.Now()
				switch mode {
				case "on":
					e.capacityRequest(app, 20, "1", group, start.Add(2*time.Minute))
				case "auto":
					e.placedRequest(app, 20, "1", group, vnode, auto5s)
				}
				e.scale(app, 20)
				e.eventually(5*time.Minute, "20 pods running", func() (bool, error) { return e.running(app) >= 20, nil })
				took = append(took, time.Since(start))
				b.Logf("demand=%s iteration %d: %s", mode, i, took[len(took)-1].Round(time.Millisecond))
				// Free the virtual node and the scheduler for the next iteration.
				_ = e.c.Client.AppsV1().Deployments(e.ns).Delete(ctx, app, metav1.DeleteOptions{})
			}
			slices.Sort(took)
			b.ReportMetric(took[len(took)/2].Seconds(), "p50-s")
			b.ReportMetric(took[len(took)-1].Seconds(), "max-s")
		})
	}
}
