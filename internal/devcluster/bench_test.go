package devcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkStartup measures `tidal-dev up --nodes 3` until the ready line (what a test binary waits for), and
// reports the start-up time tidal-dev itself measures as startup-s/op.
func BenchmarkStartup(b *testing.B) {
	bin := testBinary(b)
	var reported time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		p, err := StartProcess(ctx, bin, "up", "--nodes", "3", "--exit-with-parent", "--log-level", "warn")
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		reported += p.Ready.Startup
		b.StopTimer()
		if err := p.Stop(time.Minute); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(reported.Seconds()/float64(b.N), "startup-s/op")
}

// BenchmarkDeployment100PodsOn10Nodes measures how long a 100-replica Deployment takes until all its pods are
// Running and Ready on 10 simulated nodes (real scheduler, controller manager and kwok), in a cluster of its own.
func BenchmarkDeployment100PodsOn10Nodes(b *testing.B) {
	const replicas = 100
	bin := testBinary(b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	p, err := StartProcess(ctx, bin, "up", "--nodes", "10", "--exit-with-parent", "--log-level", "warn")
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := p.Stop(time.Minute); err != nil {
			b.Error(err)
		}
	})
	c, err := Connect(p.Ready.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := c.Namespace(b)
		name := fmt.Sprintf("bench-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		b.StartTimer()

		if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deployment(name, replicas), metav1.CreateOptions{}); err != nil {
			cancel()
			b.Fatalf("create deployment: %v", err)
		}
		err := WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
			n, err := countRunningReady(ctx, c.Client, ns, "app="+name)
			return n == replicas, err
		})
		b.StopTimer()
		if err != nil {
			cancel()
			b.Fatalf("%d pods Running and Ready: %v", replicas, err)
		}
		// Delete the namespace's pods now so the next iteration starts on empty nodes.
		if err := c.Client.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			b.Logf("delete deployment: %v", err)
		}
		if err := WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
			pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return err == nil && len(pods.Items) == 0, err
		}); err != nil {
			b.Logf("pods of %s not gone: %v", ns, err)
		}
		cancel()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(replicas), "pods/op")
}
