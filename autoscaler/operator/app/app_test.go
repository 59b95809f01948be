package app_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testenv/inproc"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// env is one test's namespace of the dev cluster (internal/testenv) plus an in-process operator.
type env struct{ *testenv.Env }

func setup(t testing.TB) *env { return &env{testenv.New(t)} }

// options completes opts for this test's slice of the shared cluster: its config and namespace, and this
// namespace only to watch.
func (e *env) options(opts app.Options) app.Options {
	opts.Config = e.Cluster.Config
	if opts.Namespace == "" {
		opts.Namespace = e.NS
	}
	opts.WatchNamespace = e.NS
	return opts
}

// startOperator runs a whole operator in-process (inproc.RunOperator) until the test ends.
func (e *env) startOperator(opts app.Options) *app.Operator {
	e.T.Helper()
	op, _ := inproc.RunOperator(e.T, e.Ctx, e.options(opts))
	return op
}

// The heart of the KEDA card: a Deployment at zero scales up on events, follows the queue with the HPA math,
// and goes back to zero after the cooldown once the queue is empty.
func TestScaleFromZeroAndBack(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	e.Deployment("worker", 0)
	e.ScaledObject(testenv.RedisScaledObject("worker", "worker", "127.0.0.1:6379", list))

	e.Eventually("Ready condition", 60*time.Second, func() (bool, string) {
		s := e.Condition("worker", tidalv1alpha1.ConditionReady)
		return s == metav1.ConditionTrue, string(s)
	})
	if got := e.Replicas("worker"); got != 0 {
		t.Fatalf("an empty queue scaled the target to %d", got)
	}

	testenv.Push(t, rc, list, 1)
	e.WaitReplicas("worker", 1, 30*time.Second)
	if s := e.Condition("worker", tidalv1alpha1.ConditionActive); s != metav1.ConditionTrue {
		e.Eventually("Active condition", 10*time.Second, func() (bool, string) {
			s := e.Condition("worker", tidalv1alpha1.ConditionActive)
			return s == metav1.ConditionTrue, string(s)
		})
	}

	// 23 items at 5 per replica: the HPA math asks for ceil(23/5) = 5.
	testenv.Push(t, rc, list, 22)
	e.WaitReplicas("worker", 5, 60*time.Second)

	if err := rc.Del(e.Ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	e.WaitReplicas("worker", 0, 60*time.Second)
	e.Eventually("Active=False", 10*time.Second, func() (bool, string) {
		s := e.Condition("worker", tidalv1alpha1.ConditionActive)
		return s == metav1.ConditionFalse, string(s)
	})
	so, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if so.Status.LastActiveTime == nil || len(so.Status.Triggers) != 1 || so.Status.Triggers[0].Name != "queue" {
		t.Fatalf("status not filled: %+v", so.Status)
	}
	events, err := e.Cluster.Client.CoreV1().Events(e.NS).List(e.Ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=worker,reason=Scaled"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) < 3 {
		t.Fatalf("want a Scaled event for each scale (0→1, 1→5, 5→0), got %d", len(events.Items))
	}
}

// Losing the event source must never scale the workload to zero: after failureThreshold failures the fallback
// replicas apply, and the Fallback condition is set and cleared.
func TestFallbackWhenSourceUnreachable(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	redis := testenv.StartRedis(t)
	addr, stop := redis.Addr, redis.Stop
	rc, list := testenv.RedisList(t, addr)
	e.Deployment("fb", 0)
	so := testenv.RedisScaledObject("fb", "fb", addr, list)
	so.Spec.Fallback = &tidalv1alpha1.Fallback{FailureThreshold: 3, Replicas: 4}
	e.ScaledObject(so)

	testenv.Push(t, rc, list, 7) // 2 replicas
	e.WaitReplicas("fb", 2, 30*time.Second)
	stop()
	e.WaitReplicas("fb", 4, 60*time.Second)
	e.Eventually("Fallback=True", 10*time.Second, func() (bool, string) {
		s := e.Condition("fb", tidalv1alpha1.ConditionFallback)
		return s == metav1.ConditionTrue, string(s)
	})
	// Well past the cooldown, still never zero.
	time.Sleep(4 * time.Second)
	if got := e.Replicas("fb"); got != 4 {
		t.Fatalf("while the source is down replicas = %d, want fallback 4", got)
	}
}

// paused-replicas pins the target; removing the annotation resumes autoscaling.
func TestPauseAndResume(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	e.Deployment("paused", 0)
	so := testenv.RedisScaledObject("paused", "paused", "127.0.0.1:6379", list)
	so.Annotations = map[string]string{tidalv1alpha1.KEDAPausedReplicasAnnotation: "3"}
	e.ScaledObject(so)
	e.WaitReplicas("paused", 3, 30*time.Second)
	e.Eventually("Paused=True", 10*time.Second, func() (bool, string) {
		s := e.Condition("paused", tidalv1alpha1.ConditionPaused)
		return s == metav1.ConditionTrue, string(s)
	})
	testenv.Push(t, rc, list, 40) // would be 8 replicas, but paused
	time.Sleep(3 * time.Second)
	if got := e.Replicas("paused"); got != 3 {
		t.Fatalf("paused target moved to %d", got)
	}
	patch := []byte(`{"metadata":{"annotations":{"` + tidalv1alpha1.KEDAPausedReplicasAnnotation + `":null}}}`)
	if _, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Patch(e.Ctx, "paused", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.WaitReplicas("paused", 8, 60*time.Second)
}

// Deleting a ScaledObject with restoreToOriginalReplicaCount puts the target back where it was.
func TestRestoreOnDelete(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	_, list := testenv.RedisList(t, "127.0.0.1:6379")
	e.Deployment("restore", 2)
	so := testenv.RedisScaledObject("restore", "restore", "127.0.0.1:6379", list)
	so.Spec.CooldownPeriod = ptr.To[int32](0)
	so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{RestoreToOriginalReplicaCount: true}
	e.ScaledObject(so)
	e.WaitReplicas("restore", 0, 60*time.Second) // empty queue: to zero
	if err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Delete(e.Ctx, "restore", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.WaitReplicas("restore", 2, 30*time.Second)
	e.Eventually("ScaledObject gone", 30*time.Second, func() (bool, string) {
		_, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "restore", metav1.GetOptions{})
		return err != nil, fmt.Sprint(err)
	})
}
