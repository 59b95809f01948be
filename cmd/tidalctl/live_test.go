package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/cmd/tidalctl/status"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers/registry"
)

// base is the fixed clock of the golden outputs: the test rewrites the status timestamps the operator wrote.
var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// liveObjects runs the operator in-process against a Redis list with 12 items (target 5: three replicas) and a
// Redis trigger that cannot connect, stops it once both statuses settled, and pins their timestamps to base.
func liveObjects(t *testing.T) (c *devcluster.Cluster, ns string) {
	t.Helper()
	c = devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	ns = c.Namespace(t)
	tc, err := tidalclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	list := fmt.Sprintf("tidalctl-test-%d", rand.Int64())
	t.Cleanup(func() { rc.Del(context.Background(), list); rc.Close() })
	items := make([]any, 12)
	for i := range items {
		items[i] = i
	}
	if err := rc.RPush(ctx, list, items...).Err(); err != nil {
		t.Fatalf("redis at 127.0.0.1:6379: %v", err)
	}
	for name, replicas := range map[string]int32{"worker": 0, "legacy": 1} {
		createDeployment(ctx, t, c, ns, name, replicas)
	}
	window, percent := int32(60), autoscalingv2.PercentScalingPolicy
	orders := &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "orders"},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			ScaleTargetRef: tidalv1alpha1.ScaleTarget{Name: "worker"}, PollingInterval: ptr.To[int32](1),
			CooldownPeriod: ptr.To[int32](300), MinReplicaCount: ptr.To[int32](0), MaxReplicaCount: ptr.To[int32](10),
			Advanced: &tidalv1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &tidalv1alpha1.HorizontalPodAutoscalerConfig{
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: &window,
					Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: percent, Value: 50, PeriodSeconds: 30}},
				}},
			}},
			Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "redis", Name: "queue",
				// addressFromEnv: explain must read the target's environment to rebuild the scaler.
				Metadata: map[string]string{"addressFromEnv": "REDIS_ADDRESS", "listName": list, "listLength": "5"}}},
		},
	}
	legacy := &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			ScaleTargetRef: tidalv1alpha1.ScaleTarget{Name: "legacy"}, PollingInterval: ptr.To[int32](1),
			MaxReplicaCount: ptr.To[int32](5),
			Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "redis",
				Metadata: map[string]string{"address": "127.0.0.1:1", "listName": "jobs", "listLength": "5"}}},
		},
	}
	for _, so := range []*tidalv1alpha1.ScaledObject{orders, legacy} {
		if _, err := tc.TidalV1alpha1().ScaledObjects(ns).Create(ctx, so, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	opCtx, stopOp := context.WithCancel(ctx)
	source, err := poller.Start(opCtx, poller.Options{Registry: registry.New()})
	if err != nil {
		stopOp()
		t.Fatal(err)
	}
	op, err := app.New(app.Options{Config: c.Config, Source: source, Logger: zaptest.NewLogger(t), Namespace: ns, WatchNamespace: ns})
	if err != nil {
		stopOp()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := op.Run(opCtx); err != nil {
			t.Logf("operator: %v", err)
		}
	}()
	settled := func() (bool, error) {
		o, err := tc.TidalV1alpha1().ScaledObjects(ns).Get(ctx, "orders", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		l, err := tc.TidalV1alpha1().ScaledObjects(ns).Get(ctx, "legacy", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ordersDone := o.Status.DesiredReplicas != nil && *o.Status.DesiredReplicas == 3 &&
			o.Status.CurrentReplicas != nil && *o.Status.CurrentReplicas == 3 &&
			len(o.Status.Triggers) == 1 && o.Status.Triggers[0].Value == "12"
		// Under load a sample may time out instead; wait for the refused connection the golden file shows.
		legacyDone := len(l.Status.Triggers) == 1 && strings.HasSuffix(l.Status.Triggers[0].Error, "connect: connection refused") &&
			meta.IsStatusConditionFalse(l.Status.Conditions, tidalv1alpha1.ConditionReady) && l.Status.DesiredReplicas != nil
		return ordersDone && legacyDone, nil
	}
	if err := devcluster.WaitFor(ctx, 200*time.Millisecond, settled); err != nil {
		stopOp()
		<-done
		t.Fatalf("statuses did not settle: %v", err)
	}
	stopOp()
	<-done

	// Pin every timestamp the output shows to the fixed clock.
	for _, name := range []string{"orders", "legacy"} {
		so, err := tc.TidalV1alpha1().ScaledObjects(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if so.Status.LastActiveTime != nil {
			so.Status.LastActiveTime = &metav1.Time{Time: base}
		}
		for i := range so.Status.Triggers {
			so.Status.Triggers[i].LastSampleTime = &metav1.Time{Time: base.Add(30 * time.Second)}
		}
		if ds := so.Status.DecisionState; ds != nil { // the history as of the pinned sample time
			for _, points := range [][]tidalv1alpha1.DecisionPoint{ds.Recommendations, ds.ScaleUpEvents, ds.ScaleDownEvents} {
				for i := range points {
					points[i].UnixMilli = base.Add(30 * time.Second).UnixMilli()
				}
			}
		}
		for m, h := range so.Status.Health { // the failure count depends on how many polls the test waited
			if h.Status == tidalv1alpha1.HealthStatusFailing {
				h.NumberOfFailures = ptr.To[int32](3)
				so.Status.Health[m] = h
			}
		}
		if _, err := tc.TidalV1alpha1().ScaledObjects(ns).UpdateStatus(ctx, so, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return c, ns
}

func createDeployment(ctx context.Context, t *testing.T, c *devcluster.Cluster, ns, name string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "tidal/demo-worker",
					Env: []corev1.EnvVar{{Name: "REDIS_ADDRESS", Value: "127.0.0.1:6379"}}}}},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestStatusAndExplainLive runs status and explain against live ScaledObjects the operator reconciled, and
// checks the kubeconfig flags kubectl users rely on.
func TestStatusAndExplainLive(t *testing.T) {
	c, ns := liveObjects(t)
	now := base.Add(42 * time.Second)
	kc := []string{"--kubeconfig", c.Kubeconfig}

	r := tidalctl(t, now, append(kc, "status", "-n", ns)...).ok(t)
	golden(t, "testdata/status.golden", strings.ReplaceAll(r.stdout, ns, "<ns>"))

	r = tidalctl(t, now, append(kc, "explain", "orders", "-n", ns)...).ok(t)
	golden(t, "testdata/explain-orders.golden", strings.ReplaceAll(r.stdout, ns, "<ns>"))

	r = tidalctl(t, now, append(kc, "explain", "legacy", "-n", ns)...).ok(t)
	golden(t, "testdata/explain-legacy.golden", strings.ReplaceAll(r.stdout, ns, "<ns>"))

	t.Run("json", func(t *testing.T) {
		r := tidalctl(t, now, append(kc, "status", "-n", ns, "-o", "json", "orders")...).ok(t)
		var rows []status.Row
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, r.stdout)
		}
		if len(rows) != 1 || rows[0].Name != "orders" || *rows[0].Desired != 3 || rows[0].Triggers[0].Value != "12" {
			t.Errorf("status -o json rows = %+v", rows)
		}
		r = tidalctl(t, now, append(kc, "explain", "orders", "-n", ns, "-o", "yaml")...).ok(t)
		if !strings.Contains(r.stdout, "desiredReplicas: 3") || !strings.Contains(r.stdout, "reason: HPA") {
			t.Errorf("explain -o yaml:\n%s", r.stdout)
		}
	})
	t.Run("timeline", func(t *testing.T) {
		tc, err := tidalclient.NewForConfig(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		so, err := tc.TidalV1alpha1().ScaledObjects(ns).Get(context.Background(), "orders", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if so.Status.LastScaleUp == nil {
			r := tidalctl(t, now, append(kc, "status", "--timeline", "orders", "-n", ns)...)
			if r.code != 1 || !strings.Contains(r.stderr, "no status.lastScaleUp") {
				t.Errorf("timeline without a scale-up: exit %d, stderr %q", r.code, r.stderr)
			}
			return
		}
		r := tidalctl(t, now, append(kc, "status", "--timeline", "orders", "-n", ns)...).ok(t)
		if !strings.Contains(r.stdout, "decision") || !strings.Contains(r.stdout, "sample") {
			t.Errorf("timeline:\n%s", r.stdout)
		}
	})
	t.Run("KUBECONFIG", func(t *testing.T) {
		t.Setenv("KUBECONFIG", c.Kubeconfig)
		r := tidalctl(t, now, "status", "-n", ns, "orders").ok(t)
		if !strings.Contains(r.stdout, "orders") {
			t.Errorf("status with $KUBECONFIG:\n%s", r.stdout)
		}
	})
	t.Run("context", func(t *testing.T) {
		// A context whose namespace is the test namespace: no -n needed.
		cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cur := *cfg.Contexts[cfg.CurrentContext]
		cur.Namespace = ns
		cfg.Contexts["tidalctl-test"] = &cur
		path := t.TempDir() + "/kubeconfig"
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			t.Fatal(err)
		}
		r := tidalctl(t, now, "--kubeconfig", path, "--context", "tidalctl-test", "status", "-A").ok(t)
		if !strings.Contains(r.stdout, "NAMESPACE") || !strings.Contains(r.stdout, ns) {
			t.Errorf("status -A:\n%s", r.stdout)
		}
		r = tidalctl(t, now, "--kubeconfig", path, "--context", "tidalctl-test", "status").ok(t)
		if !strings.Contains(r.stdout, "orders") || !strings.Contains(r.stdout, "legacy") {
			t.Errorf("status in the context's namespace:\n%s", r.stdout)
		}
		r = tidalctl(t, now, "--kubeconfig", path, "--context", "nope", "status")
		if r.code != 1 || !strings.Contains(r.stderr, `context "nope"`) {
			t.Errorf("unknown context: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("not found", func(t *testing.T) {
		r := tidalctl(t, now, append(kc, "explain", "nope", "-n", ns)...)
		if r.code != 1 || r.stderr != fmt.Sprintf("tidalctl: ScaledObject \"nope\" not found in namespace %s\n", ns) {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestDevUp starts a real tidal-dev through `tidalctl dev up`, waits for its ready line and stops it by
// cancelling, as Ctrl-C would.
func TestDevUp(t *testing.T) {
	bin := os.Getenv(envDevBinary)
	if bin == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var err error
		if bin, err = devcluster.BuildBinary(ctx); err != nil {
			t.Fatal(err)
		}
		t.Setenv(envDevBinary, bin)
	}
	pr, pw := io.Pipe()
	var errOut strings.Builder
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	codeCh := make(chan int, 1)
	go func() {
		codeCh <- run(ctx, []string{"dev", "up", "--nodes", "1", "--data-dir", t.TempDir() + "/dev"},
			streams{in: strings.NewReader(""), out: pw, err: &errOut, now: time.Now})
		pw.Close()
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		if _, ok := devcluster.ParseReadyLine(line); !ok {
			t.Fatalf("first stdout line %q is not tidal-dev's ready line", line)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("no ready line from tidal-dev after 3m; stderr: %s", errOut.String())
	}
	cancel()
	go func() {
		for range lines {
		}
	}()
	select {
	case code := <-codeCh:
		if code != 0 {
			t.Errorf("dev up exited %d after interrupt; stderr: %s", code, errOut.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("tidal-dev did not stop within 2m of the interrupt")
	}
}
