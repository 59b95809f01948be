package nodes_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// BenchmarkScaleDecisionToRunning measures a scale-up decision → all its pods Running, on an empty node group
// (sim provider, 2s provisioning delay) with the command's batch window (1s idle, 10s max): "off" writes only
// /scale, as an operator without the demand signal; "on" writes the CapacityRequest first, as the operator does.
// Each iteration uses a fresh group and Deployment (4 pods of 1.5 CPU: 2 nodes). Reported: s/running (mean).
//
//	go test -run '^$' -bench BenchmarkScaleDecisionToRunning -benchtime 5x ./autoscaler/nodes/
func BenchmarkScaleDecisionToRunning(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("demand=%v", map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
			e := newEnv(b, nodes.Config{ScaleDownDisabled: true, Batch: batch.Window{Idle: time.Second, Max: 10 * time.Second}})
			ctx := context.Background()
			var total time.Duration
			for i := 0; b.Loop(); i++ {
				group := fmt.Sprintf("g%d", i)
				ng := nodeGroup(e.group(group), 0, 4, func(g *v1alpha1.NodeGroup) {
					g.Labels = map[string]string{testLabel: e.id}
					g.Spec.ProviderRef.Config = map[string]string{sim.ConfigProvisioningDelay: "2s"}
				})
				if _, err := e.tidal.TidalV1alpha1().NodeGroups().Create(ctx, ng, metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() {
					_ = e.tidal.TidalV1alpha1().NodeGroups().Delete(context.Background(), ng.Name, metav1.DeleteOptions{})
					_ = e.c.Client.CoreV1().Nodes().DeleteCollection(context.Background(), metav1.DeleteOptions{},
						metav1.ListOptions{LabelSelector: template.LabelNodeGroup + "=" + ng.Name})
				})
				app := "app" + group
				e.deployment(app, 0, "1500m", e.selectGroup(group))
				start := time.Now()
				if on {
					e.capacityRequest(app, 4, "1500m", group, start.Add(2*time.Minute))
				}
				err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					s, err := e.c.Client.AppsV1().Deployments(e.ns).GetScale(ctx, app, metav1.GetOptions{})
					if err != nil {
						return err
					}
					s.Spec.Replicas = 4
					_, err = e.c.Client.AppsV1().Deployments(e.ns).UpdateScale(ctx, app, s, metav1.UpdateOptions{})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				e.eventually(3*time.Minute, "4 pods running", func() (bool, error) {
					running := 0
					for _, p := range e.pods(app) {
						if p.Status.Phase == corev1.PodRunning {
							running++
						}
					}
					return running == 4, nil
				})
				total += time.Since(start)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/running")
		})
	}
}
