package kubeworkload

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"podSelector": "app=worker", "value": "2"}
	scalertest.ParseTableFunc(t, Type, scalers.ParseExternal[Metadata], []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: defaults, Check: func(t *testing.T, m Metadata) {
			if m.Value != 2 || m.ActivationValue != 0 || m.selector.String() != "app=worker" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "set-based selector", MD: scalertest.WithPairs(defaults, "podSelector", "app in (a, b), tier!=db", "value", "0.5", "activationValue", "3"),
			Check: func(t *testing.T, m Metadata) {
				if m.Value != 0.5 || m.ActivationValue != 3 || !strings.Contains(m.selector.String(), "tier!=db") {
					t.Errorf("fields wrong: %+v %s", m, m.selector)
				}
			}},
		{Name: "missing podSelector", MD: scalertest.WithPairs(defaults, "podSelector", scalertest.Delete), WantErr: `"podSelector"`},
		{Name: "blank podSelector", MD: scalertest.WithPairs(defaults, "podSelector", " "), WantErr: "podSelector"},
		{Name: "bad podSelector", MD: scalertest.WithPairs(defaults, "podSelector", "app in ("), WantErr: "podSelector"},
		{Name: "bad podSelector value", MD: scalertest.WithPairs(defaults, "podSelector", "app=in valid"), WantErr: "podSelector"},
		{Name: "missing value", MD: scalertest.WithPairs(defaults, "value", scalertest.Delete), WantErr: `"value"`},
		{Name: "value text", MD: scalertest.WithPairs(defaults, "value", "two"), WantErr: "value: want a finite number"},
		{Name: "value zero", MD: scalertest.WithPairs(defaults, "value", "0"), WantErr: "value: a metric target must be at least"},
		{Name: "value negative", MD: scalertest.WithPairs(defaults, "value", "-1"), WantErr: "value"},
		{Name: "activationValue text", MD: scalertest.WithPairs(defaults, "activationValue", "x"), WantErr: "activationValue"},
		{Name: "activationValue negative", MD: scalertest.WithPairs(defaults, "activationValue", "-2"), WantErr: "activationValue"},
	})
}

// pod creates a pod that no node can take (so it stays Pending, untouched by kwok) with the given labels.
func pod(t testing.TB, kube kubernetes.Interface, ns, name string, labels map[string]string) *corev1.Pod {
	t.Helper()
	p, err := kube.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeSelector: map[string]string{"tidal.dev/test": "no-such-node"},
			Containers: []corev1.Container{{Name: "c", Image: "worker"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newScaler(t testing.TB, kube kubernetes.Interface, ns string, md map[string]string) *Scaler {
	t.Helper()
	return scalertest.New[*Scaler](t, New, &scalers.TriggerConfig{Type: Type, Index: 0, Metadata: md, ObjectNamespace: ns, Kube: kube})
}

// sampleUntil samples until want is read (the list is served from the watch cache, which lags writes slightly).
func sampleUntil(t *testing.T, s *Scaler, want float64, wantActive bool) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("value %v active %v", want, wantActive), 60*time.Second, func() (bool, string) {
		v, active := scalertest.Sample(t, s, "")
		return v == want && active == wantActive, fmt.Sprintf("value %v active %v", v, active)
	})
}

func TestSample(t *testing.T) {
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	s := newScaler(t, c.Client, ns, map[string]string{"podSelector": "app=worker", "value": "2", "activationValue": "1"})
	if specs := s.MetricSpecs(); specs[0].External.Metric.Name != "s0-workload-"+ns {
		t.Fatalf("metric name %q", specs[0].External.Metric.Name)
	}
	sampleUntil(t, s, 0, false)
	pod(t, c.Client, ns, "w0", map[string]string{"app": "worker"})
	pod(t, c.Client, ns, "other", map[string]string{"app": "web"})
	sampleUntil(t, s, 1, false)
	for i := 1; i < 5; i++ {
		pod(t, c.Client, ns, fmt.Sprintf("w%d", i), map[string]string{"app": "worker"})
	}
	sampleUntil(t, s, 5, true)
	// Finished pods do not count.
	p, err := c.Client.CoreV1().Pods(ns).Get(context.Background(), "w0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodFailed
	if _, err := c.Client.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sampleUntil(t, s, 4, true)
	// Another namespace's pods do not count.
	other := c.Namespace(t)
	pod(t, c.Client, other, "w9", map[string]string{"app": "worker"})
	sampleUntil(t, newScaler(t, c.Client, other, map[string]string{"podSelector": "app=worker", "value": "2"}), 1, true)
	sampleUntil(t, s, 4, true)
}

func TestWatchSignalsChanges(t *testing.T) {
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	s := newScaler(t, c.Client, ns, map[string]string{"podSelector": "app=worker", "value": "1"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, changed) }()
	// The watch may open after the first create; keep creating matching pods until one is signalled.
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	i := 0
	err := devcluster.WaitFor(wctx, 300*time.Millisecond, func() (bool, error) {
		select {
		case <-changed:
			return true, nil
		case err := <-done:
			return false, fmt.Errorf("Watch returned %v", err)
		default:
		}
		pod(t, c.Client, ns, fmt.Sprintf("w%d", i), map[string]string{"app": "worker"})
		i++
		return false, nil
	})
	if err != nil {
		t.Fatalf("no change signalled after matching pods were created: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch after cancel: %v", err)
	}
}

func TestAuthorization(t *testing.T) {
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":scaler"}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newScaler(t, kube, ns, map[string]string{"podSelector": "app=worker", "value": "1"})
	_, _, err = s.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "kubernetes-workload trigger #0") {
		t.Fatalf("without RBAC: %v, want forbidden naming the trigger", err)
	}
	ctx := context.Background()
	if _, err := c.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pods"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "scaler", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := devcluster.WaitFor(wctx, 100*time.Millisecond, func() (bool, error) {
		_, _, err := s.Sample(wctx)
		return err == nil, nil
	}); err != nil {
		t.Fatalf("with RBAC the sample still fails: %v", err)
	}
}

func TestNoClientAndServerDown(t *testing.T) {
	s := newScaler(t, nil, "ns", map[string]string{"podSelector": "app=worker", "value": "1"})
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "no Kubernetes client") {
		t.Errorf("no client: %v", err)
	}
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s = newScaler(t, kube, "ns", map[string]string{"podSelector": "app=worker", "value": "1"})
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "list pods") {
		t.Errorf("server down: %v", err)
	}
	if err := s.Watch(context.Background(), make(chan struct{}, 1)); err == nil || !strings.Contains(err.Error(), "watch pods") {
		t.Errorf("watch with server down: %v, want an error so the caller polls", err)
	}
}

// BenchmarkSample measures one pod list (served from the apiserver's watch cache) of a namespace with 20
// matching pods in the dev cluster.
func BenchmarkSample(b *testing.B) {
	c := devcluster.Get(b)
	ns := c.Namespace(b)
	for i := 0; i < 20; i++ {
		pod(b, c.Client, ns, fmt.Sprintf("w%d", i), map[string]string{"app": "worker"})
	}
	scalertest.BenchmarkSample(b, newScaler(b, c.Client, ns, map[string]string{"podSelector": "app=worker", "value": "5"}))
}
