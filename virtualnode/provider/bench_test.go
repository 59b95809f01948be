package provider_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/virtualnode/backend/sim"
)

// podTimes records, from a watch, when each pod of a namespace was first seen bound and Ready.
type podTimes struct {
	mu      sync.Mutex
	bound   map[string]time.Time
	ready   map[string]time.Time
	changed chan struct{}
}

func watchPodTimes(ctx context.Context, tb testing.TB, c *devcluster.Cluster, ns string) *podTimes {
	tb.Helper()
	w, err := c.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		tb.Fatalf("watch pods: %v", err)
	}
	pt := &podTimes{bound: map[string]time.Time{}, ready: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now := time.Now()
			pt.mu.Lock()
			if _, seen := pt.bound[p.Name]; !seen && p.Spec.NodeName != "" {
				pt.bound[p.Name] = now
			}
			if _, seen := pt.ready[p.Name]; !seen && podReady(p) {
				pt.ready[p.Name] = now
			}
			pt.mu.Unlock()
			select {
			case pt.changed <- struct{}{}:
			default:
			}
		}
	}()
	return pt
}

func (pt *podTimes) waitReady(ctx context.Context, n int) error {
	for {
		pt.mu.Lock()
		got := len(pt.ready)
		pt.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods ready: %w", got, n, ctx.Err())
		case <-pt.changed:
		case <-time.After(time.Second):
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchPodStart creates pods one at a time on node and reports created→Running and bound→Running percentiles.
func benchPodStart(b *testing.B, c *devcluster.Cluster, ns string, vn *startedNode, pod func(name string) *corev1.Pod) {
	ctx := testContext(b)
	pt := watchPodTimes(ctx, b, c, ns)
	var created, bound []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("p-%d", i)
		start := time.Now()
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod(name), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := pt.waitReady(ctx, i+1); err != nil {
			b.Fatal(err)
		}
		pt.mu.Lock()
		created = append(created, pt.ready[name].Sub(start))
		bound = append(bound, pt.ready[name].Sub(pt.bound[name]))
		pt.mu.Unlock()
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(created, 0.5)), "created-to-running-p50-ms")
	b.ReportMetric(ms(percentile(created, 0.99)), "created-to-running-p99-ms")
	b.ReportMetric(ms(percentile(bound, 0.5)), "bound-to-running-p50-ms")
	b.ReportMetric(ms(percentile(bound, 0.99)), "bound-to-running-p99-ms")
}

// BenchmarkPodStartSim: sim backend with zero start latency, so the figure is the virtual node's own overhead
// (scheduler, pod controller, status update) on top of whatever latency model is configured.
func BenchmarkPodStartSim(b *testing.B) {
	c := devcluster.Get(b)
	ns := c.Namespace(b)
	vn := simNode(b, c, sim.Options{}, nil)
	benchPodStart(b, c, ns, vn, func(name string) *corev1.Pod {
		return busyboxPod(name, vn.Name, "unused")
	})
}

// BenchmarkPodStartProcess: process backend running a real process (sh -c 'sleep 3600').
func BenchmarkPodStartProcess(b *testing.B) {
	c := devcluster.Get(b)
	ns := c.Namespace(b)
	vn := processNode(b, c, nil)
	benchPodStart(b, c, ns, vn, func(name string) *corev1.Pod {
		return busyboxPod(name, vn.Name, "sleep 3600")
	})
}

// burstBenchNode is a fresh namespace, a sim virtual node (lognormal start, median 50ms, p99 150ms; delete
// 10ms) and a watch of the namespace's pod times, for one iteration of a burst benchmark.
func burstBenchNode(b *testing.B, c *devcluster.Cluster) (string, *startedNode, context.Context, *podTimes) {
	ns := c.Namespace(b)
	vn := simNode(b, c, sim.Options{
		StartLatency:  sim.Latency{Kind: "lognormal", Median: 50 * time.Millisecond, P99: 150 * time.Millisecond},
		DeleteLatency: sim.Latency{Kind: "fixed", Value: 10 * time.Millisecond},
	}, nil)
	ctx := testContext(b)
	return ns, vn, ctx, watchPodTimes(ctx, b, c, ns)
}

// BenchmarkBurst1000Sim: a 1,000-replica Deployment on the sim backend (lognormal start, median 50ms, p99
// 150ms): seconds from Deployment created to all pods Running, and the bound→Running percentiles.
func BenchmarkBurst1000Sim(b *testing.B) {
	c := devcluster.Get(b)
	const n = 1000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns, vn, ctx, pt := burstBenchNode(b, c)
		b.StartTimer()
		start := time.Now()
		if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, simDeployment("burst", vn.Name, n), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := pt.waitReady(ctx, n); err != nil {
			b.Fatal(err)
		}
		total := time.Since(start)
		b.StopTimer()
		pt.mu.Lock()
		var bound []time.Duration
		var lastBound time.Time
		for name, r := range pt.ready {
			bound = append(bound, r.Sub(pt.bound[name]))
			if pt.bound[name].After(lastBound) {
				lastBound = pt.bound[name]
			}
		}
		pt.mu.Unlock()
		b.ReportMetric(total.Seconds(), "all-running-s")
		b.ReportMetric(lastBound.Sub(start).Seconds(), "all-bound-s")
		b.ReportMetric(ms(percentile(bound, 0.5)), "bound-to-running-p50-ms")
		b.ReportMetric(ms(percentile(bound, 0.99)), "bound-to-running-p99-ms")
		// Tear down within the iteration so a next one starts clean.
		policy := metav1.DeletePropagationBackground
		_ = c.Client.AppsV1().Deployments(ns).Delete(ctx, "burst", metav1.DeleteOptions{PropagationPolicy: &policy})
		b.StartTimer()
	}
}

// BenchmarkBurst1000SimBound: 1,000 pods created already bound to the virtual node (spec.nodeName set, 20
// concurrent creators), so the figure is the virtual node's throughput without the scheduler and the
// ReplicaSet controller (which pace BenchmarkBurst1000Sim on the dev cluster).
func BenchmarkBurst1000SimBound(b *testing.B) {
	c := devcluster.Get(b)
	const n, creators = 1000, 20
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 2000, 2000 // the shared test client's 100 QPS would pace the creation instead
	fast, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns, vn, ctx, pt := burstBenchNode(b, c)
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, creators)
		for w := 0; w < creators; w++ {
			wg.Go(func() {
				for j := w; j < n; j += creators {
					p := busyboxPod(fmt.Sprintf("p-%d", j), vn.Name, "unused")
					p.Spec.NodeName = vn.Name
					if _, err := fast.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		created := time.Since(start)
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		if err := pt.waitReady(ctx, n); err != nil {
			b.Fatal(err)
		}
		total := time.Since(start)
		b.StopTimer()
		pt.mu.Lock()
		var bound []time.Duration
		for name, r := range pt.ready {
			bound = append(bound, r.Sub(pt.bound[name]))
		}
		pt.mu.Unlock()
		b.ReportMetric(total.Seconds(), "all-running-s")
		b.ReportMetric(created.Seconds(), "all-created-s")
		b.ReportMetric(ms(percentile(bound, 0.5)), "bound-to-running-p50-ms")
		b.ReportMetric(ms(percentile(bound, 0.99)), "bound-to-running-p99-ms")
		b.StartTimer()
	}
}
