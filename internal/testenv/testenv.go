// Package testenv is the test foundation shared by Tidal's packages that test against the dev cluster: one
// namespace per test with Tidal's CRDs installed, Eventually and WaitFor for polling with generous timeouts (never
// timed assertions), workload builders for targets with a /scale subresource, ScaledObject helpers, and Redis lists
// as an event source (the real server on 127.0.0.1:6379).
package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/internal/devcluster"
)

// Env is one test's slice of the dev cluster.
type Env struct {
	T       testing.TB
	Ctx     context.Context // cancelled when the test ends
	Cluster *devcluster.Cluster
	NS      string // this test's namespace
	Tidal   tidalclient.Interface
}

// New connects to the dev cluster, installs Tidal's CRDs and makes a fresh namespace for t.
func New(t testing.TB) *Env {
	t.Helper()
	return NewOn(t, devcluster.Get(t))
}

// NewOn is New on the cluster c (one the test started itself, e.g. to restart it).
func NewOn(t testing.TB, c *devcluster.Cluster) *Env {
	t.Helper()
	devcluster.InstallCRDs(t, c)
	tc, err := tidalclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &Env{T: t, Ctx: ctx, Cluster: c, NS: c.Namespace(t), Tidal: tc}
}

// Eventually polls cond until it holds or timeout passes, then fails t with what and cond's last state. The
// timeouts are generous for a loaded 2-core machine and are not performance assertions.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitFor polls cond every 100ms until it holds, and fails t when ctx ends first or cond returns an error (a
// condition that can no longer come true), naming what.
func WaitFor(ctx context.Context, t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	if err := devcluster.WaitFor(ctx, 100*time.Millisecond, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Eventually is the package function with this test's t.
func (e *Env) Eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	e.T.Helper()
	Eventually(e.T, what, timeout, cond)
}

// ScaledObject creates so in the test's namespace.
func (e *Env) ScaledObject(so *tidalv1alpha1.ScaledObject) *tidalv1alpha1.ScaledObject {
	e.T.Helper()
	out, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Create(e.Ctx, so, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// ScaledJob creates sj in the test's namespace.
func (e *Env) ScaledJob(sj *tidalv1alpha1.ScaledJob) *tidalv1alpha1.ScaledJob {
	e.T.Helper()
	out, err := e.Tidal.TidalV1alpha1().ScaledJobs(e.NS).Create(e.Ctx, sj, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// Condition is the status of the ScaledObject's condition typ, or "" when it is not set.
func (e *Env) Condition(name, typ string) metav1.ConditionStatus {
	e.T.Helper()
	so, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	if c := meta.FindStatusCondition(so.Status.Conditions, typ); c != nil {
		return c.Status
	}
	return ""
}

// WaitReplicas waits until the Deployment's /scale says want.
func (e *Env) WaitReplicas(name string, want int32, timeout time.Duration) {
	e.T.Helper()
	e.Eventually(fmt.Sprintf("%s at %d replicas", name, want), timeout, func() (bool, string) {
		got := e.Replicas(name)
		return got == want, fmt.Sprintf("replicas=%d", got)
	})
}
