package nodes_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
)

var fastScaleDown = nodes.Config{
	ScaleDownDelayAfterAdd: 2 * time.Second,
	ScaleDown:              scaledown.Options{UnneededTime: 3 * time.Second, SkipNodesWithLocalStorage: true},
	DrainTimeout:           time.Minute,
}

// TestScaleDownHonoursProtectionAndMinSize grows a group to three nodes with a filler deployment, places a
// safe-to-evict=false pod and a PDB-protected pod, removes the filler, and expects exactly the nodes without a
// protected pod to go.
func TestScaleDownHonoursProtectionAndMinSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastScaleDown, nodeGroup("pool", 0, 5, nil), nodeGroup("floor", 1, 5, nil))
	// 3 CPU each: one filler per node, three nodes.
	e.deployment("filler", 3, "3", e.selectGroup("pool"))
	// Two 3-CPU pods on the group with minSize 1.
	e.deployment("floor-app", 2, "3", e.selectGroup("floor"))
	e.eventually(3*time.Minute, "fillers scheduled", func() (bool, error) {
		return scheduled(e.pods("filler")) == 3 && scheduled(e.pods("floor-app")) == 2, nil
	})
	e.deployment("pinned", 1, "500m", func(p *corev1.PodTemplateSpec) {
		e.selectGroup("pool")(p)
		p.Annotations = map[string]string{scaledown.AnnotationSafeToEvict: "false"}
	})
	e.deployment("budgeted", 1, "500m", e.selectGroup("pool"))
	minAvailable := intstr.FromInt32(1)
	_, err := e.c.Client.PolicyV1().PodDisruptionBudgets(e.ns).Create(context.Background(), &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "budgeted"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "budgeted"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	protected := map[string]types.UID{}
	e.eventually(2*time.Minute, "protected pods running", func() (bool, error) {
		for _, app := range []string{"pinned", "budgeted"} {
			pods := e.pods(app)
			if len(pods) != 1 || pods[0].Status.Phase != corev1.PodRunning {
				return false, nil
			}
			protected[pods[0].Spec.NodeName] = pods[0].UID
		}
		return true, nil
	})
	if len(e.groupNodes("pool")) != 3 {
		t.Fatalf("pool has %d nodes before scale-down, want 3", len(e.groupNodes("pool")))
	}
	for _, d := range []string{"filler", "floor-app"} {
		if err := e.c.Client.AppsV1().Deployments(e.ns).Delete(context.Background(), d, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.eventually(3*time.Minute, "nodes without protected pods removed", func() (bool, error) {
		left := e.groupNodes("pool")
		if len(left) != len(protected) {
			return false, nil
		}
		for _, n := range left {
			if _, ok := protected[n.Name]; !ok {
				return false, nil
			}
		}
		return len(e.groupNodes("floor")) == 1, nil
	})
	// Several more loops past the unneeded time: the protected nodes and the group minimum stay.
	for i := 0; i < 3; i++ {
		e.eventually(30*time.Second, "a status update", statusNewerThan(e, time.Now().Add(3*time.Second)))
	}
	if n := len(e.groupNodes("floor")); n != 1 {
		t.Fatalf("floor group has %d nodes, want its minSize 1", n)
	}
	for _, app := range []string{"pinned", "budgeted"} {
		pods := e.pods(app)
		if len(pods) != 1 || protected[pods[0].Spec.NodeName] != pods[0].UID {
			t.Fatalf("protected pod of %s was moved or evicted: %+v", app, pods)
		}
	}
	for node := range protected {
		found := false
		for _, n := range e.groupNodes("pool") {
			found = found || n.Name == node
		}
		if !found {
			t.Fatalf("node %s with a protected pod was removed", node)
		}
	}
}

// TestScaleDownDrainsMovablePods: a node whose pods fit elsewhere is drained through the Eviction API and
// removed; the pods end up on the remaining node.
func TestScaleDownDrainsMovablePods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastScaleDown, nodeGroup("pool", 0, 5, nil))
	// Two 3-CPU pods: two nodes.
	e.deployment("big", 2, "3", e.selectGroup("pool"))
	e.eventually(3*time.Minute, "big pods scheduled", func() (bool, error) { return scheduled(e.pods("big")) == 2, nil })
	// Small movable pods, then shrink big to one replica: the nodes are then under half used and the small pods
	// of one fit on the other.
	e.deployment("small", 2, "250m", e.selectGroup("pool"))
	e.eventually(time.Minute, "small pods scheduled", func() (bool, error) { return scheduled(e.pods("small")) == 2, nil })
	scale, err := e.c.Client.AppsV1().Deployments(e.ns).GetScale(context.Background(), "big", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 0
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).UpdateScale(context.Background(), "big", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(3*time.Minute, "one node left with both small pods", func() (bool, error) {
		left := e.groupNodes("pool")
		pods := e.pods("small")
		if len(left) != 1 || len(pods) != 2 {
			return false, nil
		}
		for _, p := range pods {
			if p.Spec.NodeName != left[0].Name || p.Status.Phase != corev1.PodRunning {
				return false, nil
			}
		}
		return true, nil
	})
}

// TestEnforceMinSize grows an idle group to its minimum and keeps it there.
func TestEnforceMinSize(t *testing.T) {
	t.Parallel()
	cfg := fastScaleDown
	cfg.EnforceMinSize = true
	e := newEnv(t, cfg, nodeGroup("floor", 2, 5, nil))
	e.eventually(2*time.Minute, "two nodes", func() (bool, error) { return len(e.groupNodes("floor")) == 2, nil })
	for i := 0; i < 4; i++ {
		e.eventually(30*time.Second, "a status update", statusNewerThan(e, time.Now().Add(2*time.Second)))
	}
	if n := len(e.groupNodes("floor")); n != 2 {
		t.Fatalf("floor group has %d nodes, want its minSize 2", n)
	}
}
