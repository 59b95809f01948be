package provider_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/sim"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

func simNode(t testing.TB, c *devcluster.Cluster, opts sim.Options, capacity corev1.ResourceList) *startedNode {
	t.Helper()
	return startNode(t, c, "sim", capacity, provider.VirtualNodeOptions{
		NewBackend: func(d provider.BackendDeps) (backend.Backend, error) {
			o := opts
			o.Changed, o.NodeIP = d.Changed, d.NodeIP
			return sim.New(o)
		},
	})
}

func simDeployment(name, node string, replicas int32) *appsv1.Deployment {
	d := appDeployment(name, replicas, "100m", "64Mi")
	onNode(&d.Spec.Template.Spec, node)
	return d
}

// appDeployment is a Deployment of replicas pods of one container (example.com/app:1) requesting cpu and
// memory, labelled app=name, with a 1 s grace period.
func appDeployment(name string, replicas int32, cpu, memory string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(1)),
					Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1", Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}}}},
				},
			},
		},
	}
}

func countOnNode(ctx context.Context, c *devcluster.Cluster, ns, selector, node string) (running, total int, err error) {
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0, 0, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName != node {
			continue
		}
		total++
		if podReady(p) {
			running++
		}
	}
	return running, total, nil
}

func TestSimBackendRunsDeploymentAndReportsStats(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	vn := simNode(t, c, sim.Options{
		StartLatency:  sim.Latency{Kind: "uniform", Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		DeleteLatency: sim.Latency{Kind: "fixed", Value: 10 * time.Millisecond},
		CPUUsage:      0.5,
	}, nil)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, simDeployment("web", vn.Name, 20), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	testenv.WaitFor(ctx, t, "20 sim pods Running and Ready", func() (bool, error) {
		r, _, err := countOnNode(ctx, c, ns, "app=web", vn.Name)
		return r == 20, err
	})

	sum := statsSummary(ctx, t, vn)
	n := 0
	for _, ps := range sum.Pods {
		if ps.PodRef.Namespace != ns {
			continue
		}
		n++
		if got := *ps.CPU.UsageNanoCores; got != 50_000_000 {
			t.Errorf("pod %s cpu = %d nanocores, want 50m (half its 100m request)", ps.PodRef.Name, got)
		}
	}
	if n != 20 {
		t.Errorf("stats summary has %d pods of the namespace, want 20", n)
	}
	if sum.Node.CPU == nil || *sum.Node.CPU.UsageNanoCores < 20*50_000_000 {
		t.Errorf("node cpu = %+v, want at least the 20 pods' 1 core", sum.Node.CPU)
	}
	metrics := string(kubeletGet(ctx, t, vn, "/metrics/resource"))
	for _, want := range []string{"pod_cpu_usage_seconds_total", "container_memory_working_set_bytes", `namespace="` + ns + `"`} {
		if !contains(metrics, want) {
			t.Errorf("/metrics/resource lacks %q", want)
		}
	}

	scaleDeployment(ctx, t, c, ns, "web", 0)
	testenv.WaitFor(ctx, t, "all sim pods deleted", func() (bool, error) {
		_, total, err := countOnNode(ctx, c, ns, "app=web", vn.Name)
		return total == 0, err
	})
	// No pods: the node's series only (families without samples cannot be encoded and used to fail the request).
	testenv.WaitFor(ctx, t, "/metrics/resource of an empty node", func() (bool, error) {
		m := string(kubeletGet(ctx, t, vn, "/metrics/resource"))
		return contains(m, "node_cpu_usage_seconds_total") && !contains(m, "container_cpu_usage_seconds_total{"), nil
	})
}
