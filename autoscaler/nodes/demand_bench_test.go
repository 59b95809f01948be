package nodes_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
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
			var total time.Duration
			for i := 0; b.Loop(); i++ {
				group := fmt.Sprintf("g%d", i)
				ng := nodeGroup(e.group(group), 0, 4, func(g *v1alpha1.NodeGroup) {
					g.Labels = map[string]string{testLabel: e.id}
					g.Spec.ProviderRef.Config = map[string]string{sim.ConfigProvisioningDelay: "2s"}
				})
				e.createGroup(ng)
				app := "app" + group
				e.deployment(app, 0, "1500m", e.selectGroup(group))
				start := time.Now()
				if on {
					e.capacityRequest(app, 4, "1500m", group, start.Add(2*time.Minute))
				}
				e.scale(app, 4)
				e.eventually(3*time.Minute, "4 pods running", func() (bool, error) { return e.running(app) == 4, nil })
				total += time.Since(start)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/running")
		})
	}
}
