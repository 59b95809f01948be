package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/registry"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

type env struct {
	t     testing.TB
	c     *devcluster.Cluster
	ns    string
	tidal tidalclient.Interface
	ctx   context.Context
}

func setup(t testing.TB) *env {
	t.Helper()
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	tc, err := tidalclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &env{t: t, c: c, ns: c.Namespace(t), tidal: tc, ctx: ctx}
}

// startOperator runs a whole operator in-process, as cmd/tidal-operator does, until the test ends.
func (e *env) startOperator(opts app.Options) *app.Operator {
	e.t.Helper()
	opts.Config = e.c.Config
	if opts.Registry == nil {
		opts.Registry = newRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(e.t)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	if opts.Source == nil {
		// As cmd/tidal-operator does without a metrics adapter: an in-process poller.
		p, err := poller.Start(ctx, poller.Options{Registry: opts.Registry, Logger: opts.Logger.Named("poller")})
		if err != nil {
			cancel()
			e.t.Fatal(err)
		}
		opts.Source = p
	}
	if opts.Namespace == "" {
		opts.Namespace = e.ns
	}
	// The cluster is shared with other test binaries: this operator acts on this test's namespace only.
	opts.WatchNamespace = e.ns
	op, err := app.New(opts)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := op.Run(ctx); err != nil {
			e.t.Logf("operator stopped: %v", err)
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return op
}

func (e *env) deployment(name string, replicas int32) {
	e.t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "worker", Image: "tidal/demo-worker",
					Env: []corev1.EnvVar{{Name: "REDIS_ADDRESS", Value: "127.0.0.1:6379"}},
				}}},
			},
		},
	}
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Create(e.ctx, d, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) replicas(name string) int32 {
	e.t.Helper()
	s, err := e.c.Client.AppsV1().Deployments(e.ns).GetScale(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return s.Spec.Replicas
}

// eventually polls cond until it holds or the timeout passes; the timeouts are generous for a loaded 2-core
// machine and are not performance assertions.
func (e *env) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
}

func (e *env) waitReplicas(name string, want int32, timeout time.Duration) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%s at %d replicas", name, want), timeout, func() (bool, string) {
		got := e.replicas(name)
		return got == want, fmt.Sprintf("replicas=%d", got)
	})
}

func (e *env) scaledObject(so *tidalv1alpha1.ScaledObject) *tidalv1alpha1.ScaledObject {
	e.t.Helper()
	out, err := e.tidal.TidalV1alpha1().ScaledObjects(e.ns).Create(e.ctx, so, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) condition(name, typ string) metav1.ConditionStatus {
	so, err := e.tidal.TidalV1alpha1().ScaledObjects(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	c := meta.FindStatusCondition(so.Status.Conditions, typ)
	if c == nil {
		return ""
	}
	return c.Status
}

func ptr[T any](v T) *T { return &v }

func newRegistry() *scalers.Registry { return registry.New() }

func redisList(t testing.TB, addr string) (*goredis.Client, string) {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: addr})
	key := fmt.Sprintf("tidal-test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), rand.Int64())
	t.Cleanup(func() { rc.Del(context.Background(), key); rc.Close() })
	return rc, key
}

func redisSO(name, target, addr, list string) *tidalv1alpha1.ScaledObject {
	return &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  tidalv1alpha1.ScaleTarget{Name: target},
			PollingInterval: ptr[int32](1),
			CooldownPeriod:  ptr[int32](2),
			MinReplicaCount: ptr[int32](0),
			MaxReplicaCount: ptr[int32](10),
			Triggers: []tidalv1alpha1.ScaleTriggers{{
				Type: "redis", Name: "queue",
				Metadata: map[string]string{"address": addr, "listName": list, "listLength": "5"},
			}},
		},
	}
}

func push(t testing.TB, rc *goredis.Client, key string, n int) {
	t.Helper()
	items := make([]any, n)
	for i := range items {
		items[i] = "job-" + strconv.Itoa(i)
	}
	if err := rc.RPush(context.Background(), key, items...).Err(); err != nil {
		t.Fatal(err)
	}
}

// The heart of the KEDA card: a Deployment at zero scales up on events, follows the queue with the HPA math,
// and goes back to zero after the cooldown once the queue is empty.
func TestScaleFromZeroAndBack(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := redisList(t, "127.0.0.1:6379")
	e.deployment("worker", 0)
	e.scaledObject(redisSO("worker", "worker", "127.0.0.1:6379", list))

	e.eventually("Ready condition", 60*time.Second, func() (bool, string) {
		s := e.condition("worker", tidalv1alpha1.ConditionReady)
		return s == metav1.ConditionTrue, string(s)
	})
	if got := e.replicas("worker"); got != 0 {
		t.Fatalf("an empty queue scaled the target to %d", got)
	}

	push(t, rc, list, 1)
	e.waitReplicas("worker", 1, 30*time.Second)
	if s := e.condition("worker", tidalv1alpha1.ConditionActive); s != metav1.ConditionTrue {
		e.eventually("Active condition", 10*time.Second, func() (bool, string) {
			s := e.condition("worker", tidalv1alpha1.ConditionActive)
			return s == metav1.ConditionTrue, string(s)
		})
	}

	// 23 items at 5 per replica: the HPA math asks for ceil(23/5) = 5.
	push(t, rc, list, 22)
	e.waitReplicas("worker", 5, 60*time.Second)

	if err := rc.Del(e.ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("worker", 0, 60*time.Second)
	e.eventually("Active=False", 10*time.Second, func() (bool, string) {
		s := e.condition("worker", tidalv1alpha1.ConditionActive)
		return s == metav1.ConditionFalse, string(s)
	})
	so, err := e.tidal.TidalV1alpha1().ScaledObjects(e.ns).Get(e.ctx, "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if so.Status.LastActiveTime == nil || len(so.Status.Triggers) != 1 || so.Status.Triggers[0].Name != "queue" {
		t.Fatalf("status not filled: %+v", so.Status)
	}
	events, err := e.c.Client.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=worker,reason=Scaled"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) < 3 {
		t.Fatalf("want a Scaled event for each scale (0→1, 1→5, 5→0), got %d", len(events.Items))
	}
}

// startRedis runs a private redis-server that the test can stop to make the source unreachable.
func startRedis(t *testing.T) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Skipf("redis-server not runnable: %v", err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	rc := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rc.Close()
	for i := 0; i < 100 && rc.Ping(context.Background()).Err() != nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	return addr, stop
}

// Losing the event source must never scale the workload to zero: after failureThreshold failures the fallback
// replicas apply, and the Fallback condition is set and cleared.
func TestFallbackWhenSourceUnreachable(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	addr, stop := startRedis(t)
	rc, list := redisList(t, addr)
	e.deployment("fb", 0)
	so := redisSO("fb", "fb", addr, list)
	so.Spec.Fallback = &tidalv1alpha1.Fallback{FailureThreshold: 3, Replicas: 4}
	e.scaledObject(so)

	push(t, rc, list, 7) // 2 replicas
	e.waitReplicas("fb", 2, 30*time.Second)
	stop()
	e.waitReplicas("fb", 4, 60*time.Second)
	e.eventually("Fallback=True", 10*time.Second, func() (bool, string) {
		s := e.condition("fb", tidalv1alpha1.ConditionFallback)
		return s == metav1.ConditionTrue, string(s)
	})
	// Well past the cooldown, still never zero.
	time.Sleep(4 * time.Second)
	if got := e.replicas("fb"); got != 4 {
		t.Fatalf("while the source is down replicas = %d, want fallback 4", got)
	}
}

// paused-replicas pins the target; removing the annotation resumes autoscaling.
func TestPauseAndResume(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := redisList(t, "127.0.0.1:6379")
	e.deployment("paused", 0)
	so := redisSO("paused", "paused", "127.0.0.1:6379", list)
	so.Annotations = map[string]string{tidalv1alpha1.KEDAPausedReplicasAnnotation: "3"}
	e.scaledObject(so)
	e.waitReplicas("paused", 3, 30*time.Second)
	e.eventually("Paused=True", 10*time.Second, func() (bool, string) {
		s := e.condition("paused", tidalv1alpha1.ConditionPaused)
		return s == metav1.ConditionTrue, string(s)
	})
	push(t, rc, list, 40) // would be 8 replicas, but paused
	time.Sleep(3 * time.Second)
	if got := e.replicas("paused"); got != 3 {
		t.Fatalf("paused target moved to %d", got)
	}
	patch := []byte(`{"metadata":{"annotations":{"` + tidalv1alpha1.KEDAPausedReplicasAnnotation + `":null}}}`)
	if _, err := e.tidal.TidalV1alpha1().ScaledObjects(e.ns).Patch(e.ctx, "paused", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("paused", 8, 60*time.Second)
}

// Deleting a ScaledObject with restoreToOriginalReplicaCount puts the target back where it was.
func TestRestoreOnDelete(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	_, list := redisList(t, "127.0.0.1:6379")
	e.deployment("restore", 2)
	so := redisSO("restore", "restore", "127.0.0.1:6379", list)
	so.Spec.CooldownPeriod = ptr[int32](0)
	so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{RestoreToOriginalReplicaCount: true}
	e.scaledObject(so)
	e.waitReplicas("restore", 0, 60*time.Second) // empty queue: to zero
	if err := e.tidal.TidalV1alpha1().ScaledObjects(e.ns).Delete(e.ctx, "restore", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("restore", 2, 30*time.Second)
	e.eventually("ScaledObject gone", 30*time.Second, func() (bool, string) {
		_, err := e.tidal.TidalV1alpha1().ScaledObjects(e.ns).Get(e.ctx, "restore", metav1.GetOptions{})
		return err != nil, fmt.Sprint(err)
	})
}
