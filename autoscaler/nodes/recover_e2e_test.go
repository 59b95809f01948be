package nodes_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// TestStartupRemovesTaintsOfACrashedDrain plays a run that died mid-drain: nodes of a managed group carry the
// to-be-deleted taint and the cordon. A new autoscaler must take both off (keeping a cordon an admin had set
// before the drain), and leave alone the nodes of a group it does not manage and a node only an admin cordoned.
func TestStartupRemovesTaintsOfACrashedDrain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	names := map[string]string{}
	create := func(e *env, key, group string, mutate func(*corev1.Node)) {
		g := nodeGroup(group, 0, 5, nil)
		g.Name = group
		n := sim.Node(g, fmt.Sprintf("%s-%s", group, key))
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: template.TaintToBeDeleted, Value: "1", Effect: corev1.TaintEffectNoSchedule})
		n.Spec.Unschedulable = true
		mutate(n)
		if _, err := e.c.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names[key] = n.Name
		t.Cleanup(func() { _ = e.c.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}) })
	}
	e := newEnvWith(t, nodes.Config{ScaleDownDisabled: true, ScanInterval: 10 * time.Minute}, func(e *env) {
		pool := e.group("pool")
		// Tainted by a version that did not record the cordon: it cordoned, so uncordon.
		create(e, "legacy", pool, func(*corev1.Node) {})
		// The autoscaler cordoned it.
		create(e, "ours", pool, func(n *corev1.Node) {
			n.Annotations[template.AnnotationCordonedByAutoscaler] = "true"
		})
		// Already cordoned by an admin when the drain started: stays cordoned.
		create(e, "admin-first", pool, func(n *corev1.Node) {
			n.Annotations[template.AnnotationCordonedByAutoscaler] = "false"
		})
		// Only cordoned by an admin: untouched.
		create(e, "admin-only", pool, func(n *corev1.Node) { n.Spec.Taints = nil })
		// Another autoscaler's group: untouched.
		create(e, "foreign", "other-"+e.id, func(*corev1.Node) {})
	}, nodeGroup("pool", 0, 5, nil))

	get := func(key string) *corev1.Node {
		n, err := e.c.Client.CoreV1().Nodes().Get(ctx, names[key], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	tainted := func(n *corev1.Node) bool {
		for _, tt := range n.Spec.Taints {
			if tt.Key == template.TaintToBeDeleted {
				return true
			}
		}
		return false
	}
	e.eventually(time.Minute, "taints of the managed group removed", func() (bool, error) {
		for _, key := range []string{"legacy", "ours", "admin-first"} {
			if tainted(get(key)) {
				return false, fmt.Errorf("node %s still tainted", key)
			}
		}
		return true, nil
	})
	for key, wantCordoned := range map[string]bool{"legacy": false, "ours": false, "admin-first": true, "admin-only": true, "foreign": true} {
		n := get(key)
		if n.Spec.Unschedulable != wantCordoned {
			t.Errorf("node %s: unschedulable = %v, want %v", key, n.Spec.Unschedulable, wantCordoned)
		}
		if _, ok := n.Annotations[template.AnnotationCordonedByAutoscaler]; ok && key != "foreign" {
			t.Errorf("node %s: annotation %s left behind", key, template.AnnotationCordonedByAutoscaler)
		}
	}
	if !tainted(get("foreign")) {
		t.Error("the node of a group this autoscaler does not manage lost its taint")
	}
}
