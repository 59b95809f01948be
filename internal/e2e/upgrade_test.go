//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidalscale/tidal/internal/devcluster"
)

// upgradeTag is the image tag helm upgrade moves to: the same images under a second name in containerd.
const upgradeTag = "e2e-upgrade"

// upgradeKeepsScale: a ScaledObject scaled out before `helm upgrade` to a new global.image.tag keeps its replicas
// while every Tidal Deployment rolls to the new image (never fewer while the list still holds its items), and
// scales on new work after it.
func (e *env) upgradeKeepsScale(ctx context.Context) {
	t := e.t
	const name = "steady-worker"
	// The trigger's list holds work throughout; the workers pop another list, so the load is steady.
	list := fmt.Sprintf("tidal-e2e-steady-%d", time.Now().UnixNano())
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rdb.Close()
	t.Cleanup(func() { rdb.Del(context.Background(), list) })
	e.createWorker(ctx, name, list+"-workers", 0, "100ms")
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tidal.dev/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": name, "namespace": demoNS},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": name},
			"pollingInterval": int64(1), "cooldownPeriod": int64(5),
			"minReplicaCount": int64(0), "maxReplicaCount": int64(4),
			"triggers": []any{map[string]any{"type": "redis",
				"metadata": map[string]any{"address": redisAddr, "listName": list, "listLength": "5"}}},
		},
	}}
	if _, err := e.dyn.Resource(scaledObjects).Namespace(demoNS).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ScaledObject: %v", err)
	}
	e.waitReadyCondition(ctx, name)
	push := func(n int) {
		for i := range n {
			if err := rdb.RPush(ctx, list, fmt.Sprintf("item-%d", i)).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	push(10) // ceil(10/5) = 2
	e.waitFor(ctx, "scaled out to 2 before the upgrade", func() bool { return e.replicas(ctx, name) == 2 },
		func() string { return fmt.Sprintf("replicas %d", e.replicas(ctx, name)) })

	// Watch the replicas through the whole upgrade.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var mu sync.Mutex
	low, samples := int32(2), 0
	var wg sync.WaitGroup
	wg.Go(func() {
		for watchCtx.Err() == nil {
			if r := e.replicas(watchCtx, name); r >= 0 {
				mu.Lock()
				low, samples = min(low, r), samples+1
				mu.Unlock()
			}
			select {
			case <-watchCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})

	old := e.tidalRefs()
	tags := map[string]string{}
	for _, ref := range old {
		tags[ref] = retag(ref, upgradeTag)
	}
	if err := devcluster.TagImages(ctx, e.ready.Containerd, e.ready.ContainerdNamespace, tags); err != nil {
		t.Fatal(err)
	}
	e.upgrade(ctx, upgradeTag)
	e.waitRolled(ctx, tags)

	stopWatch()
	wg.Wait()
	mu.Lock()
	t.Logf("replicas during the upgrade: lowest %d over %d samples", low, samples)
	if low < 2 {
		t.Fatalf("replicas fell to %d during the upgrade while the list held 10 items, want 2 throughout", low)
	}
	mu.Unlock()
	if r := e.replicas(ctx, name); r != 2 {
		t.Fatalf("replicas %d after the upgrade, want 2", r)
	}

	// The upgraded operator and adapter keep scaling: up on new work, to zero when the list is gone.
	push(10) // 20 items: 4
	e.waitFor(ctx, "scaled to 4 after the upgrade", func() bool { return e.replicas(ctx, name) == 4 },
		func() string { return fmt.Sprintf("replicas %d", e.replicas(ctx, name)) })
	if err := rdb.Del(ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	e.waitFor(ctx, "back to zero after the upgrade", func() bool { return e.replicas(ctx, name) == 0 })
	if err := e.dyn.Resource(scaledObjects).Namespace(demoNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// tidalRefs are the image refs of the chart's deployables (not the demo worker).
func (e *env) tidalRefs() []string {
	var out []string
	for name, ref := range e.refs {
		if name != "tidal-demo-worker" {
			out = append(out, ref)
		}
	}
	return out
}

// retag replaces the tag of ref (registry/name:tag).
func retag(ref, tag string) string {
	return ref[:strings.LastIndex(ref, ":")+1] + tag
}

// upgrade runs helm upgrade with values() and global.image.tag set to tag.
func (e *env) upgrade(ctx context.Context, tag string) {
	t := e.t
	root, _ := devcluster.ModuleRoot()
	chrt, err := loader.Load(filepath.Join(root, "charts", "tidal"))
	if err != nil {
		t.Fatal(err)
	}
	vals := e.values()
	vals["global"].(map[string]any)["image"].(map[string]any)["tag"] = tag
	up := action.NewUpgrade(e.helm())
	up.Namespace, up.Timeout = namespace, 3*time.Minute
	rel, err := up.RunWithContext(ctx, release, chrt, vals)
	if err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	if rel.Info.Status != "deployed" || rel.Version != 2 {
		t.Fatalf("release after upgrade: status %s, revision %d, want deployed, 2", rel.Info.Status, rel.Version)
	}
}

// waitRolled waits until every Tidal Deployment has rolled: its status is current, and its pods are exactly
// the new ones, Running and Ready on the container node with the new image (to[old ref]).
func (e *env) waitRolled(ctx context.Context, to map[string]string) {
	t := e.t
	deps, err := e.dc.Client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 4 {
		t.Fatalf("%d Tidal Deployments, want 4 (operator, adapter, node autoscaler, virtual node)", len(deps.Items))
	}
	newRefs := map[string]bool{}
	for _, ref := range to {
		newRefs[ref] = true
	}
	for _, d := range deps.Items {
		var last string
		e.waitFor(ctx, "Deployment "+d.Name+" rolled to "+upgradeTag, func() bool {
			cur, err := e.dc.Client.AppsV1().Deployments(namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false
			}
			st := cur.Status
			last = fmt.Sprintf("generation %d observed %d, replicas %d updated %d ready %d", cur.Generation, st.ObservedGeneration,
				st.Replicas, st.UpdatedReplicas, st.ReadyReplicas)
			if st.ObservedGeneration < cur.Generation || st.UpdatedReplicas != *cur.Spec.Replicas ||
				st.Replicas != *cur.Spec.Replicas || st.ReadyReplicas != *cur.Spec.Replicas {
				return false
			}
			sel, _ := metav1.LabelSelectorAsSelector(cur.Spec.Selector)
			pods, err := e.dc.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
			if err != nil || len(pods.Items) != int(*cur.Spec.Replicas) {
				last += fmt.Sprintf("; %d pods (%v)", len(pods.Items), err)
				return false
			}
			for i := range pods.Items {
				p := &pods.Items[i]
				last += "; " + describePod(p)
				if !newRefs[p.Spec.Containers[0].Image] || p.Spec.NodeName != e.ready.ContainerNode ||
					p.Status.Phase != corev1.PodRunning || !allReady(p) {
					return false
				}
			}
			return true
		}, func() string { return last })
		t.Logf("%s rolled: %s", d.Name, last)
	}
}
