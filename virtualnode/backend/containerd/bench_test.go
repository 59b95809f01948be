package containerd_test

import (
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// BenchmarkCreateToRunning measures Create → container Running for a real container (image already imported),
// reporting p50 and p99 over b.N pods.
func BenchmarkCreateToRunning(b *testing.B) {
	if env.skip != "" {
		b.Skip(env.skip)
	}
	h := newBenchHarness(b)
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		pod := newPod(uniqueName("bench"), prog("main", "sleep"))
		key := backend.KeyOf(pod)
		start := time.Now()
		if err := h.b.Create(testContext(b), backend.Pod{Pod: pod}); err != nil {
			b.Fatal(err)
		}
		for {
			if st := h.rec.get(key); st != nil && st.Phase == corev1.PodRunning {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		took = append(took, time.Since(start))
		_ = h.b.Delete(testContext(b), key, time.Second)
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99)/100].Milliseconds()), "p99-ms")
}
