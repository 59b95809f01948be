package provider_test

import (
	"context"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/virtualnode/backend/sim"
	"github.com/tidalscale/tidal/virtualnode/backfill"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

const poolLabel = "tidal.dev/test-pool"

// addPoolNode creates a kwok-simulated node with 2 CPUs that only this test's pods tolerate (a stand-in for the
// node autoscaler adding a real node).
func addPoolNode(ctx context.Context, t *testing.T, c *devcluster.Cluster, pool, name string) {
	t.Helper()
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name, poolLabel: pool, "kubernetes.io/os": "linux"},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
		Spec: corev1.NodeSpec{
			ProviderID: "kwok://" + name,
			Taints:     []corev1.Taint{{Key: poolLabel, Value: pool, Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res.DeepCopy()},
	}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// Schedulable, not only Ready: until the not-ready taint is lifted the scheduler would send the Deployment's
	// pods elsewhere (all of them to the virtual node), and burst pods never move back on their own.
	if err := devcluster.WaitNodeSchedulable(ctx, c.Client, name); err != nil {
		t.Fatal(err)
	}
}

func burstDeployment(pool, vnode string, replicas int32) *appsv1.Deployment {
	d := appDeployment("burst", replicas, "1", "128Mi")
	pod := &d.Spec.Template.Spec
	pod.Tolerations = []corev1.Toleration{
		{Key: provider.TaintKey, Operator: corev1.TolerationOpEqual, Value: provider.TaintValue, Effect: corev1.TaintEffectNoSchedule},
		{Key: poolLabel, Operator: corev1.TolerationOpEqual, Value: pool, Effect: corev1.TaintEffectNoSchedule},
	}
	pod.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		// Real nodes of this test's pool, or this test's virtual node...
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: poolLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{pool}}}},
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{vnode}}}},
		}},
		// ...preferring real nodes: the virtual node only takes the overflow.
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100, Preference: corev1.NodeSelectorTerm{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "type", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"virtual-kubelet"}}}}}},
	}}
	return d
}

// placement counts the Deployment's ReplicaSet-owned Ready pods, on the virtual node and elsewhere.
type placement struct{ readyVirtual, readyReal, total, replacements int }

func place(ctx context.Context, c *devcluster.Cluster, ns, vnode string) (placement, error) {
	var pl placement
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=burst"})
	if err != nil {
		return pl, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Labels[backfill.LabelReplacementFor] != "" {
			pl.replacements++
			continue
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		pl.total++
		if !podReady(p) {
			continue
		}
		if p.Spec.NodeName == vnode {
			pl.readyVirtual++
		} else {
			pl.readyReal++
		}
	}
	return pl, nil
}

// burstReplicas is the Deployment of the burst tests: 2 replicas fit the pool's real node, 2 burst.
const burstReplicas = 4

// burstSetup makes a pool with one real node that fits half of a burstReplicas Deployment and a simulated
// virtual node, creates the Deployment and waits until 2 pods run on the real node and 2 burst to the virtual
// one.
func burstSetup(t *testing.T) (context.Context, *devcluster.Cluster, string, string, *startedNode) {
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	pool := ns
	addPoolNode(ctx, t, c, pool, uniqueName("pool-a"))
	vn := simNode(t, c, sim.Options{StartLatency: sim.Latency{Kind: "fixed", Value: 20 * time.Millisecond}}, nil)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, burstDeployment(pool, vn.Name, burstReplicas), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(ctx, t, "2 pods on the full real node and 2 burst to the virtual node", func() (bool, error) {
		pl, err := place(ctx, c, ns, vn.Name)
		return pl.readyReal == 2 && pl.readyVirtual == 2, err
	})
	return ctx, c, ns, pool, vn
}

func TestBurstToVirtualNodeAndBackfill(t *testing.T) {
	t.Parallel()
	ctx, c, ns, pool, vn := burstSetup(t)

	bf, err := backfill.New(backfill.Options{Client: c.Client, NodeName: vn.Name, Interval: 300 * time.Millisecond, ReadyTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	bctx, stopBackfill := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stopBackfill(); wg.Wait() })
	wg.Go(func() { bf.Run(bctx) })

	// Watch the ready count from now on: it must never drop below the desired burstReplicas.
	minReady := burstReplicas
	var mu sync.Mutex
	mctx, stopMonitor := context.WithCancel(ctx)
	wg.Go(func() {
		for mctx.Err() == nil {
			if pl, err := place(mctx, c, ns, vn.Name); err == nil {
				mu.Lock()
				minReady = min(minReady, pl.readyReal+pl.readyVirtual)
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	// With no room on real nodes, backfill's replacements are unschedulable and abandoned: nothing moves.
	time.Sleep(2 * time.Second)
	if pl, err := place(ctx, c, ns, vn.Name); err != nil || pl.readyVirtual != 2 {
		t.Fatalf("before capacity was added: %+v, %v; want the 2 burst pods still on the virtual node", pl, err)
	}

	// The node autoscaler (stand-in) adds a real node: backfill moves the burst pods onto it.
	addPoolNode(ctx, t, c, pool, uniqueName("pool-b"))
	testenv.WaitFor(ctx, t, "all pods back on real nodes", func() (bool, error) {
		pl, err := place(ctx, c, ns, vn.Name)
		return pl.readyReal == burstReplicas && pl.readyVirtual == 0 && pl.total == burstReplicas && pl.replacements == 0, err
	})
	stopMonitor()
	mu.Lock()
	defer mu.Unlock()
	if minReady < burstReplicas {
		t.Errorf("ready pods dropped to %d during backfill, want never below %d", minReady, burstReplicas)
	}
}

// TestBackfillRespectsPodDisruptionBudget: a Ready replacement on a real node does not take over from a burst
// pod while a PodDisruptionBudget selecting the pods allows no disruption; once the budget allows, backfill
// completes.
func TestBackfillRespectsPodDisruptionBudget(t *testing.T) {
	t.Parallel()
	ctx, c, ns, pool, vn := burstSetup(t)
	// Six must stay available: even with both replacements Ready (4 + 2 healthy) no pod may go.
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "burst"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(6)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "burst"}}},
	}
	if _, err := c.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	addPoolNode(ctx, t, c, pool, uniqueName("pool-b"))

	bf, err := backfill.New(backfill.Options{Client: c.Client, NodeName: vn.Name, Interval: time.Second, ReadyTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(ctx, t, "both replacements Ready and held back by the budget", func() (bool, error) {
		res, err := bf.RunOnce(ctx, time.Now())
		return res.Blocked == 2, err
	})
	if pl, err := place(ctx, c, ns, vn.Name); err != nil || pl.readyVirtual != 2 || pl.replacements != 2 {
		t.Fatalf("while the budget allows no disruption: %+v, %v; want the 2 burst pods still on the virtual node", pl, err)
	}

	if err := retryUpdatePDB(ctx, c, ns, "burst", intstr.FromInt32(burstReplicas)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(ctx, t, "all pods back on real nodes", func() (bool, error) {
		if _, err := bf.RunOnce(ctx, time.Now()); err != nil {
			return false, err
		}
		pl, err := place(ctx, c, ns, vn.Name)
		return pl.readyReal == burstReplicas && pl.readyVirtual == 0 && pl.total == burstReplicas && pl.replacements == 0, err
	})
}

func retryUpdatePDB(ctx context.Context, c *devcluster.Cluster, ns, name string, minAvailable intstr.IntOrString) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pdb, err := c.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pdb.Spec.MinAvailable = &minAvailable
		_, err = c.Client.PolicyV1().PodDisruptionBudgets(ns).Update(ctx, pdb, metav1.UpdateOptions{})
		return err
	})
}
