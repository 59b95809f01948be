package scaletarget_test

import (
	"context"
	"errors"
	"os"
	"testing"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// mayWrite is asked before every attempt: an update from a stale scale conflicts, re-reads and asks again, and
// a refusal then leaves the target unwritten.
func TestUpdateReplicasAsksBeforeEveryAttempt(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	e.Deployment("work", 1)
	ts, err := scaletarget.New(e.Cluster.Config, "tidal-test")
	if err != nil {
		t.Fatal(err)
	}
	target, err := ts.Resolve(e.NS, tidalv1alpha1.ScaleTarget{Name: "work"})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := ts.GetScale(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.SetReplicas(ctx, target, 2); err != nil { // moves the resourceVersion on
		t.Fatal(err)
	}

	asked := 0
	if _, err := ts.UpdateReplicas(ctx, target, stale, 3, func() error { asked++; return nil }); err != nil {
		t.Fatal(err)
	}
	// At least the stale attempt and one retry (the Deployment controller's own status writes may cause more
	// conflicts).
	if asked < 2 || e.Replicas("work") != 3 {
		t.Fatalf("asked %d times (want the stale attempt and a retry), replicas %d (want 3)", asked, e.Replicas("work"))
	}

	stale, err = ts.GetScale(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.SetReplicas(ctx, target, 4); err != nil {
		t.Fatal(err)
	}
	lost := errors.New("not the owner any more")
	asked = 0
	_, err = ts.UpdateReplicas(ctx, target, stale, 5, func() error {
		if asked++; asked > 1 {
			return lost
		}
		return nil
	})
	if !errors.Is(err, lost) || e.Replicas("work") != 4 {
		t.Fatalf("refused on the retry: error %v, replicas %d (want the refusal and 4 untouched)", err, e.Replicas("work"))
	}
}
