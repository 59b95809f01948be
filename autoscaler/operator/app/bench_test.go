package app_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/testenv"
)

// BenchmarkActivation measures event pushed → /scale patched in direct mode: each iteration pushes one item to
// an empty Redis list and times the watch event that shows the Deployment at one replica, then empties the list
// and waits for zero (cooldown 0). Timestamps come from the push and from the watch, on the embedded cluster.
// Run: go test -run '^$' -bench Activation -benchtime 200x ./autoscaler/operator/app/
func BenchmarkActivation(b *testing.B) {
	e := setup(b)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(b, "127.0.0.1:6379")
	e.Deployment("bench", 0)
	so := testenv.RedisScaledObject("bench", "bench", "127.0.0.1:6379", list)
	so.Spec.PollingInterval = ptr.To[int32](30) // push, not polling, must drive activation
	so.Spec.CooldownPeriod = ptr.To[int32](0)
	e.ScaledObject(so)
	e.Eventually("Ready", 60*time.Second, func() (bool, string) {
		return e.Condition("bench", "Ready") == "True", ""
	})
	w, err := e.Cluster.Client.AppsV1().Deployments(e.NS).Watch(e.Ctx, metav1.ListOptions{FieldSelector: "metadata.name=bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	waitFor := func(replicas int32) time.Time {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Modified {
				continue
			}
			if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Spec.Replicas != nil && *d.Spec.Replicas == replicas {
				return time.Now()
			}
		}
		b.Fatal("watch closed")
		return time.Time{}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := rc.RPush(context.Background(), list, "x").Err(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, waitFor(1).Sub(start))
		b.StopTimer()
		if err := rc.Del(context.Background(), list).Err(); err != nil {
			b.Fatal(err)
		}
		waitFor(0)
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Log(fmt.Sprintf("activations=%d p50=%s p99=%s max=%s", len(lat), pct(0.5), pct(0.99), lat[len(lat)-1]))
}
