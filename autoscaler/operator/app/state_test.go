package app_test

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/coreinput"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testenv/inproc"
)

// stoppableOperator runs an operator (with its own in-process poller) until the returned stop is called or the
// test ends; stop waits for it to be gone.
func (e *env) stoppableOperator(logger *zap.Logger) (stop func()) {
	e.T.Helper()
	_, stop = inproc.RunOperator(e.T, e.Ctx, e.options(app.Options{Logger: logger}))
	return stop
}

func (e *env) scaledObjectStatus(name string) tidalv1alpha1.ScaledObjectStatus {
	e.T.Helper()
	so, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return so.Status
}

// An operator restart in the middle of a scale-down stabilization window neither cuts the window short (an
// operator that forgot the history and did not hold would scale down at once) nor starts it again (upstream's
// restart behavior holds a whole window from the restart): the new operator scales down when the window that
// began before the restart ends.
func TestRestartKeepsStabilizationWindow(t *testing.T) {
	const window = 30 * time.Second
	e := setup(t)
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	e.Deployment("stab", 1)
	so := testenv.RedisScaledObject("stab", "stab", "127.0.0.1:6379", list)
	so.Spec.MinReplicaCount = ptr.To[int32](1)
	so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &tidalv1alpha1.HorizontalPodAutoscalerConfig{
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To(int32(window / time.Second))}}}}
	e.ScaledObject(so)

	stopA := e.stoppableOperator(zaptest.NewLogger(t).Named("a"))
	testenv.Push(t, rc, list, 22) // ceil(22/5) = 5 replicas
	e.WaitReplicas("stab", 5, 60*time.Second)
	// Every recommendation of 5 is made after this: the window cannot end before scaledUp+window.
	scaledUp := time.Now()

	if err := rc.LTrim(e.Ctx, list, 0, 1).Err(); err != nil { // 2 items: 1 replica, after the window
		t.Fatal(err)
	}
	lowered := time.Now()
	// The drop is persisted once the 1 is recommended in a later grain (2s for a 30s window) than the last 5.
	var high tidalv1alpha1.DecisionPoint
	e.Eventually("the drop in status.decisionState", 30*time.Second, func() (bool, string) {
		ds := e.scaledObjectStatus("stab").DecisionState
		if ds == nil || len(ds.Recommendations) < 2 {
			return false, fmt.Sprintf("%+v", ds)
		}
		r := ds.Recommendations
		high = r[len(r)-2]
		return high.Count == 5 && r[len(r)-1].Count == 1, fmt.Sprintf("%+v", r)
	})
	// Restart well inside the window, far enough from its start that a window started again at the restart
	// ends measurably later than the persisted one.
	for holdUntil := lowered.Add(window / 3); time.Now().Before(holdUntil); time.Sleep(200 * time.Millisecond) {
		if got := e.Replicas("stab"); got != 5 {
			t.Fatalf("scaled down to %d inside the stabilization window before the restart", got)
		}
	}
	stopA()
	restarted := time.Now()
	t.Logf("stopped the operator %s after lowering the metric; last 5 recommended up to %s after it",
		restarted.Sub(lowered).Round(time.Millisecond), time.UnixMilli(high.UnixMilli).Sub(lowered).Round(time.Millisecond))
	if restarted.After(scaledUp.Add(window - 5*time.Second)) {
		t.Skip("the machine is too slow to restart well inside the window")
	}
	e.stoppableOperator(zaptest.NewLogger(t).Named("b"))

	windowEnd := time.UnixMilli(high.UnixMilli).Add(window) // at most a grain after the true end
	var scaledDown time.Time
	e.Eventually("scale-down after the window", time.Until(windowEnd)+20*time.Second, func() (bool, string) {
		got := e.Replicas("stab")
		if got != 5 && scaledDown.IsZero() {
			scaledDown = time.Now()
		}
		return got == 1, fmt.Sprintf("replicas=%d", got)
	})
	if earliest := scaledUp.Add(window); scaledDown.Before(earliest) {
		t.Fatalf("scaled down %s after the restart, %s before the window could end", scaledDown.Sub(restarted), earliest.Sub(scaledDown))
	}
	// A restarted window would hold until restart+window; the persisted one ends about a window after the
	// last 5 (rounded up by a grain), plus a polling interval and the reconcile.
	if latest := windowEnd.Add(5 * time.Second); scaledDown.After(latest) && scaledDown.After(restarted.Add(window)) {
		t.Fatalf("scaled down %s after the persisted window ended: the restart started the window again", scaledDown.Sub(windowEnd))
	}
	t.Logf("scaled down %s after the persisted window end, %s after the restart", scaledDown.Sub(windowEnd).Round(time.Millisecond),
		scaledDown.Sub(restarted).Round(time.Millisecond))
}

// A decision state the operator would not have written (here: out of order and a year ahead) is ignored with a
// warning: the new operator neither panics nor scales to zero, keeps deciding from lastActiveTime and the
// samples, and replaces the state with its own.
func TestGarbageDecisionStateIgnored(t *testing.T) {
	e := setup(t)
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	e.Deployment("garbage", 0)
	so := testenv.RedisScaledObject("garbage", "garbage", "127.0.0.1:6379", list)
	so.Spec.CooldownPeriod = ptr.To[int32](300)
	e.ScaledObject(so)

	stopA := e.stoppableOperator(zaptest.NewLogger(t).Named("a"))
	testenv.Push(t, rc, list, 12) // 3 replicas
	e.WaitReplicas("garbage", 3, 60*time.Second)
	e.Eventually("a decision state", 30*time.Second, func() (bool, string) {
		return e.scaledObjectStatus("garbage").DecisionState != nil, ""
	})
	// On a steady metric every decision (one a second here) records a recommendation and moves the last active
	// time, and none of them is written: the object's resourceVersion stays as it is.
	steady, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "garbage", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for until := time.Now().Add(5 * time.Second); time.Now().Before(until); time.Sleep(500 * time.Millisecond) {
		now, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "garbage", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if now.ResourceVersion != steady.ResourceVersion {
			t.Fatalf("status written on a steady metric:\n%+v\n->\n%+v", steady.Status, now.Status)
		}
	}
	stopA()

	got, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "garbage", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yearAhead := time.Now().Add(365 * 24 * time.Hour).UnixMilli()
	got.Status.DecisionState = &tidalv1alpha1.DecisionState{Initialized: true, Recommendations: []tidalv1alpha1.DecisionPoint{
		{Count: 0, UnixMilli: yearAhead}, {Count: 9, UnixMilli: 1}}}
	if _, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).UpdateStatus(e.Ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rc.Del(e.Ctx, list).Err(); err != nil { // inactive: only the cooldown keeps the replicas
		t.Fatal(err)
	}

	core, logs := observer.New(zapcore.WarnLevel)
	e.stoppableOperator(zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core)).Named("b"))
	e.Eventually("the garbage replaced", 30*time.Second, func() (bool, string) {
		st := e.scaledObjectStatus("garbage")
		probe := &tidalv1alpha1.ScaledObject{Status: st}
		_, err := coreinput.RestoreState(probe, time.Now())
		return err == nil, fmt.Sprintf("%+v: %v", st.DecisionState, err)
	})
	if n := logs.FilterMessage("ignoring the persisted decision state").Len(); n == 0 {
		t.Error("no warning about the ignored decision state")
	}
	if got := e.Replicas("garbage"); got != 3 {
		t.Fatalf("replicas %d after restoring a garbage decision state inside the cooldown, want 3", got)
	}
	if s := e.Condition("garbage", tidalv1alpha1.ConditionActive); s != metav1.ConditionFalse {
		t.Fatalf("Active=%s, want False (the queue is empty)", s)
	}
}

// An operator restart while a trigger is active does not shorten the cooldown: lastActiveTime is written only
// every few minutes while active, and the new operator counts the object as active until it starts, so the
// target goes to zero no earlier than a cooldown after the activity ended.
func TestRestartKeepsCooldown(t *testing.T) {
	const cooldown = 20 * time.Second
	e := setup(t)
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	e.Deployment("cool", 0)
	so := testenv.RedisScaledObject("cool", "cool", "127.0.0.1:6379", list)
	so.Spec.CooldownPeriod = ptr.To(int32(cooldown / time.Second))
	e.ScaledObject(so)

	stopA := e.stoppableOperator(zaptest.NewLogger(t).Named("a"))
	testenv.Push(t, rc, list, 3)
	e.WaitReplicas("cool", 1, 60*time.Second)
	// Active for a while, so a lastActiveTime written only at activation is stale by then.
	for until := time.Now().Add(cooldown / 2); time.Now().Before(until); time.Sleep(200 * time.Millisecond) {
		if got := e.Replicas("cool"); got != 1 {
			t.Fatalf("replicas %d while active, want 1", got)
		}
	}
	stopA()
	if err := rc.Del(e.Ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	inactive := time.Now() // the activity ended at the latest now
	e.stoppableOperator(zaptest.NewLogger(t).Named("b"))

	var zero time.Time
	e.Eventually("scale to zero after the cooldown", cooldown+30*time.Second, func() (bool, string) {
		got := e.Replicas("cool")
		if got == 0 {
			zero = time.Now()
		}
		return got == 0, fmt.Sprintf("replicas=%d", got)
	})
	// The last active sample came before the queue was emptied, at most a polling interval (1s) earlier.
	if earliest := inactive.Add(cooldown - time.Second); zero.Before(earliest) {
		t.Fatalf("scaled to zero %s after the activity ended, before the %s cooldown", zero.Sub(inactive), cooldown)
	}
}
