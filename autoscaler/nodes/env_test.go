package nodes_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/clusterapi"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
	"github.com/tidalscale/tidal/internal/devcluster"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// testLabel marks the NodeGroups of one test so that test's autoscaler manages only them.
const testLabel = "tidal.dev/test-run"

// env is one test's autoscaler against the shared dev cluster: its own namespace (pods, status ConfigMap), its
// own NodeGroups, a sim provider.
type env struct {
	t     testing.TB
	c     *devcluster.Cluster
	ns    string
	id    string
	tidal tidalclient.Interface
	as    *nodes.Autoscaler
	// metrics of the autoscaler, unregistered, for assertions on counters.
	metrics *nodes.Metrics
}

// newEnv creates the groups and starts an autoscaler for them with cfg (namespaces and selector filled in).
func newEnv(t testing.TB, cfg nodes.Config, groups ...*v1alpha1.NodeGroup) *env {
	t.Helper()
	return newEnvWith(t, cfg, nil, groups...)
}

// newEnvWith is newEnv with a hook that runs once the namespace exists, before the autoscaler starts.
func newEnvWith(t testing.TB, cfg nodes.Config, before func(*env), groups ...*v1alpha1.NodeGroup) *env {
	t.Helper()
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	e := &env{t: t, c: c, ns: c.Namespace(t), id: shortID(), metrics: nodes.NewMetrics(nil)}
	if before != nil {
		before(e)
	}
	var err error
	if e.tidal, err = tidalclient.NewForConfig(c.Config); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	for _, g := range groups {
		g.Name = e.group(g.Name)
		if g.Labels == nil {
			g.Labels = map[string]string{}
		}
		g.Labels[testLabel] = e.id
		if _, err := e.tidal.TidalV1alpha1().NodeGroups().Create(ctx, g, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create node group %s: %v", g.Name, err)
		}
	}
	cfg.PodNamespace = e.ns
	cfg.StatusNamespace = e.ns
	cfg.NodeGroupSelector = labels.SelectorFromSet(labels.Set{testLabel: e.id})
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = time.Second
	}
	logger := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.Client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "tidal-node-autoscaler"})
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	providers := provider.Registry{v1alpha1.ProviderClusterAPI: clusterapi.New(dyn)}
	as, err := nodes.New(ctx, nodes.Options{
		Client: c.Client, TidalClient: e.tidal, Providers: providers, Recorder: recorder, Logger: logger, Config: cfg,
		Metrics: e.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	simProv, err := sim.New(sim.Options{
		Client: c.Client, Nodes: as.Informers().Core().V1().Nodes().Lister(), DefaultDelay: time.Second, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	providers[v1alpha1.ProviderSim] = simProv
	if err := as.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { simProv.Run(ctx); done <- struct{}{} }()
	go func() { as.Run(ctx); done <- struct{}{} }()
	e.as = as
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		broadcaster.Shutdown()
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		for _, g := range groups {
			e.removeGroup(cctx, g.Name)
		}
	})
	return e
}

func shortID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// group returns the cluster-unique name of a test's group.
func (e *env) group(name string) string { return e.id + "-" + name }

// nodeGroup is a sim NodeGroup of 4-CPU/16Gi nodes.
func nodeGroup(name string, min, max int32, mutate func(*v1alpha1.NodeGroup)) *v1alpha1.NodeGroup {
	g := &v1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.NodeGroupSpec{
			MinSize: min, MaxSize: max,
			Template: v1alpha1.NodeTemplate{Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
			}},
			ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderSim},
		},
	}
	if mutate != nil {
		mutate(g)
	}
	return g
}

// createGroup creates ng and, when the test ends, removes it and its nodes.
func (e *env) createGroup(ng *v1alpha1.NodeGroup) {
	e.t.Helper()
	if _, err := e.tidal.TidalV1alpha1().NodeGroups().Create(context.Background(), ng, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { e.removeGroup(context.Background(), ng.Name) })
}

// removeGroup deletes the NodeGroup name and its nodes, ignoring errors (cleanup).
func (e *env) removeGroup(ctx context.Context, name string) {
	_ = e.tidal.TidalV1alpha1().NodeGroups().Delete(ctx, name, metav1.DeleteOptions{})
	_ = e.c.Client.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: template.LabelNodeGroup + "=" + name})
}

// scale sets the replicas of the Deployment app through its /scale subresource, as an operator does.
func (e *env) scale(app string, replicas int32) {
	e.t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := e.c.Client.AppsV1().Deployments(e.ns).GetScale(ctx, app, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = replicas
		_, err = e.c.Client.AppsV1().Deployments(e.ns).UpdateScale(ctx, app, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// running counts the pods of app that are Running and not being deleted.
func (e *env) running(app string) int {
	e.t.Helper()
	n := 0
	for _, p := range e.pods(app) {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

// deployment creates a Deployment of replicas pods requesting cpu each.
func (e *env) deployment(name string, replicas int32, cpu string, mutate func(*corev1.PodTemplateSpec)) *appsv1.Deployment {
	e.t.Helper()
	lbl := map[string]string{"app": name}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: lbl},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("100Mi")},
			}}},
		},
	}
	if mutate != nil {
		mutate(&tmpl)
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: tmpl,
		},
	}
	out, err := e.c.Client.AppsV1().Deployments(e.ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create deployment %s: %v", name, err)
	}
	return out
}

// selectGroup makes pods select nodes of one group.
func (e *env) selectGroup(group string) func(*corev1.PodTemplateSpec) {
	return func(p *corev1.PodTemplateSpec) {
		p.Spec.NodeSelector = map[string]string{template.LabelNodeGroup: e.group(group)}
	}
}

// groupNodes lists the nodes of a group.
func (e *env) groupNodes(group string) []corev1.Node {
	e.t.Helper()
	list, err := e.c.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{
		LabelSelector: template.LabelNodeGroup + "=" + e.group(group),
	})
	if err != nil {
		e.t.Fatalf("list nodes: %v", err)
	}
	return list.Items
}

// pods lists the pods of an app label.
func (e *env) pods(app string) []corev1.Pod {
	e.t.Helper()
	list, err := e.c.Client.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	return list.Items
}

// eventually polls cond every 250ms until it holds or timeout passes.
func (e *env) eventually(timeout time.Duration, what string, cond func() (bool, error)) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		e.t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
	}
}

// scheduledRunning counts pods bound to a node.
func scheduled(pods []corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			n++
		}
	}
	return n
}
