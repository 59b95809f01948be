package devcluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/internal/kubenode"
)

// logNamespace logs what a failed test left in its namespace — each pod's node, phase and conditions, and the
// namespace's warning events (FailedScheduling and the like) — so that a failure on a loaded CI machine can be read
// without rerunning it.
func (c *Cluster) logNamespace(ctx context.Context, t testing.TB, ns string) {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("devcluster: list pods of %s: %v", ns, err)
		return
	}
	for i := range pods.Items {
		t.Logf("devcluster: pod %s", describePod(&pods.Items[i]))
	}
	events, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=" + corev1.EventTypeWarning})
	if err != nil {
		t.Logf("devcluster: list events of %s: %v", ns, err)
		return
	}
	sort.Slice(events.Items, func(i, j int) bool { return events.Items[i].LastTimestamp.Before(&events.Items[j].LastTimestamp) })
	for _, e := range events.Items {
		t.Logf("devcluster: event %s %s/%s %s ×%d: %s", e.LastTimestamp.Format("15:04:05"), e.InvolvedObject.Kind,
			e.InvolvedObject.Name, e.Reason, max(e.Count, 1), e.Message)
	}
}

// describePod is one line: name, node, phase, deletion, conditions with their reasons.
func describePod(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s node=%q phase=%s", p.Name, p.Spec.NodeName, p.Status.Phase)
	if p.DeletionTimestamp != nil {
		b.WriteString(" deleting")
	}
	for _, cond := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", cond.Type, cond.Status)
		if cond.Reason != "" {
			fmt.Fprintf(&b, "(%s)", cond.Reason)
		}
	}
	return b.String()
}

// WaitNodeSchedulable waits (up to a minute) until the node name is Ready and carries no not-ready or unreachable
// taint (kubenode.Schedulable): only then will the scheduler use it, so a test that creates pods for a new node
// waits for this rather than for Ready.
func WaitNodeSchedulable(ctx context.Context, client kubernetes.Interface, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err == nil && kubenode.Schedulable(n), nil
	})
	if err != nil {
		return fmt.Errorf("node %s never became schedulable (Ready, no not-ready taint): %w", name, err)
	}
	return nil
}
