package devcluster

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of cluster-wide resources that only one test at a time may own in the shared cluster.
const (
	// ExclusiveMetricsAPIs guards the APIServices of external.metrics.k8s.io and metrics.k8s.io: tests that
	// register a metrics adapter (or a fake one) take it, so two packages never replace each other's backend.
	ExclusiveMetricsAPIs = "metrics-apiservices"
)

// exclusiveTTL bounds how long a holder that died without cleaning up blocks the others.
const exclusiveTTL = 5 * time.Minute

// Exclusive blocks until this test holds the cluster-wide lock name (a ConfigMap in kube-system, so test
// binaries running in parallel against one cluster take turns), and releases it at t.Cleanup. A lock older than
// five minutes is taken over: its holder died.
func (c *Cluster) Exclusive(t testing.TB, name string) {
	t.Helper()
	cms := c.Client.CoreV1().ConfigMaps("kube-system")
	cmName := "tidal-test-lock-" + name
	holder := fmt.Sprintf("%s/%d/%s", hostname(), os.Getpid(), t.Name())
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		_, err := cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: cmName},
			Data:       map[string]string{"holder": holder, "since": time.Now().UTC().Format(time.RFC3339)},
		}, metav1.CreateOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsAlreadyExists(err) {
			t.Fatalf("lock %s: %v", name, err)
		}
		if cur, err := cms.Get(ctx, cmName, metav1.GetOptions{}); err == nil {
			if since, perr := time.Parse(time.RFC3339, cur.Data["since"]); perr == nil && time.Since(since) > exclusiveTTL {
				uid := cur.UID
				_ = cms.Delete(ctx, cmName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
				continue
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s: still held by another test after 10 minutes", name)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Cleanup(func() {
		cur, err := cms.Get(context.Background(), cmName, metav1.GetOptions{})
		if err == nil && cur.Data["holder"] == holder {
			uid := cur.UID
			_ = cms.Delete(context.Background(), cmName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		}
	})
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
