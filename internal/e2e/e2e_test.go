//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"

	"github.com/tidalscale/tidal/internal/devcluster"
)

// What the test installs and where.
const (
	release     = "tidal"
	namespace   = "tidal-system"
	demoNS      = "e2e-demo"
	redisAddr   = "127.0.0.1:6379"
	webhookName = "tidal-validating-webhook"
	apiService  = "v1beta1.external.metrics.k8s.io"
	// podMetricsAPIService is registered too (metricsAdapter.apiService.podMetrics).
	podMetricsAPIService = "v1beta1.metrics.k8s.io"
)

// Host ports of the Tidal pods: the container node runs every pod on the host's network, so no two may share a
// port, and none may take the defaults (8080, 9090, 6443, 10250) other things on a dev machine use.
var ports = struct{ operatorMetrics, webhook, adapterHTTPS, adapterStream, adapterMetrics, autoscalerMetrics, vnKubelet, vnMetrics int }{
	18180, 18443, 18643, 18690, 18181, 18182, 18250, 18186,
}

var (
	scaledObjects = schema.GroupVersionResource{Group: "tidal.dev", Version: "v1alpha1", Resource: "scaledobjects"}
	apiServices   = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	tidalCRs      = []schema.GroupVersionResource{scaledObjects,
		{Group: "tidal.dev", Version: "v1alpha1", Resource: "scaledjobs"},
		{Group: "tidal.dev", Version: "v1alpha1", Resource: "triggerauthentications"},
		{Group: "tidal.dev", Version: "v1alpha1", Resource: "clustertriggerauthentications"},
		{Group: "tidal.dev", Version: "v1alpha1", Resource: "nodegroups"},
		{Group: "tidal.dev", Version: "v1alpha1", Resource: "capacityrequests"}}
)

// image is one entry of bin/images/images.json (make images).
type image struct {
	Name    string `json:"name"`
	Ref     string `json:"ref"`
	Archive string `json:"archive"`
}

// env is what the steps share.
type env struct {
	t       *testing.T
	dc      *devcluster.Cluster
	dyn     dynamic.Interface
	ready   devcluster.ReadyLine
	refs    map[string]string // deployable name → image ref
	began   time.Time
	timings []string
}

// step runs one named step and records how long it took.
func (e *env) step(name string, fn func(ctx context.Context)) {
	e.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	fn(ctx)
	line := fmt.Sprintf("%-58s %6.1fs (at %6.1fs)", name, time.Since(start).Seconds(), time.Since(e.began).Seconds())
	e.timings = append(e.timings, line)
	e.t.Log("step done: " + line)
}

// TestReleaseRunsAsContainersAndScalesRedisWorkersFromZero is `make e2e`: the images of `make images` run as
// containers on the dev cluster's container node (tidal-dev up --container-node), installed with the chart
// through the Helm SDK and configured only through values. The operator, metrics adapter, node autoscaler and a
// (sim-backend) virtual node must come up Running and Ready there with in-cluster config, mounted certificates
// and the chart's RBAC; the adapter's APIService must turn Available and the operator's webhook must admit a
// ScaledObject (both through Service routes); the ScaledObject on a Redis list scales the demo worker from zero,
// the worker containers drain the list, and it scales back to zero; a ScaledObject in mode hpa gets its HPA, whose
// External metric the API server serves from the adapter and the dev cluster's HPA controller scales on; helm
// upgrade to a new image tag rolls every Deployment while a scaled-out ScaledObject keeps its replicas; a plain
// HPA on CPU utilization scales CPU-burning containers up and back down on the adapter's metrics.k8s.io, which
// measures the container node's pods from its kubelet; helm uninstall leaves no CR stuck, no webhook configuration and no APIService.
//
// Needs: root, containerd and runc, Redis on 127.0.0.1:6379, bin/images from make images ($TIDAL_E2E_IMAGES
// overrides the directory), and builds tidal-dev unless $TIDAL_DEV_BIN names one.
func TestReleaseRunsAsContainersAndScalesRedisWorkersFromZero(t *testing.T) {
	e := &env{t: t, began: time.Now(), refs: map[string]string{}}
	t.Cleanup(func() { t.Logf("timings:\n  %s", strings.Join(e.timings, "\n  ")) })
	var images []image
	e.step("preflight: images.json, Redis", func(ctx context.Context) { images = e.preflight(ctx) })
	e.step("tidal-dev up --container-node", e.startCluster)
	e.step("import the images into the container node's containerd", func(ctx context.Context) {
		var archives []string
		for _, im := range images {
			archives = append(archives, im.Archive)
		}
		names, err := devcluster.ImportImages(ctx, e.ready.Containerd, e.ready.ContainerdNamespace, archives...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("imported %v", names)
	})
	e.step("helm install (Tidal pods on the container node)", e.install)
	e.step("operator, adapter, node autoscaler, virtual node Running as containers", e.waitTidalPods)
	e.step("APIService Available, webhook configured (Service routes)", e.waitAPIServiceAndWebhook)
	e.step("RBAC: each service account can do exactly the golden list", e.checkRBAC)
	e.step("ScaledObject on Redis: scale from zero, drain, back to zero", e.scaleRedisWorkers)
	e.step("ScaledObject mode hpa: external metric via aggregator, HPA scales up", e.scaleHPAMode)
	e.step("helm upgrade to a new image tag: all roll, scale kept", e.upgradeKeepsScale)
	e.step("HPA on CPU utilization of burning containers: up and down", e.scaleOnCPU)
	e.step("helm uninstall: no CR stuck, no webhook config, no APIService", e.uninstall)
}

func (e *env) preflight(ctx context.Context) []image {
	t := e.t
	root, err := devcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("TIDAL_E2E_IMAGES")
	if dir == "" {
		dir = filepath.Join(root, "bin", "images")
	}
	b, err := os.ReadFile(filepath.Join(dir, "images.json"))
	if err != nil {
		t.Fatalf("%v: run make images first (make e2e does)", err)
	}
	var images []image
	if err := json.Unmarshal(b, &images); err != nil {
		t.Fatalf("images.json: %v", err)
	}
	for i := range images {
		images[i].Archive = filepath.Join(dir, images[i].Archive)
		e.refs[images[i].Name] = images[i].Ref
	}
	for _, n := range []string{"tidal-operator", "tidal-metrics-adapter", "tidal-node-autoscaler", "tidal-virtual-node", "tidal-demo-worker"} {
		if e.refs[n] == "" {
			t.Fatalf("images.json has no %s image", n)
		}
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s: %v (the e2e test scales workers on a Redis list)", redisAddr, err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the container node needs root")
	}
	return images
}

func (e *env) startCluster(ctx context.Context) {
	t := e.t
	bin := os.Getenv(devcluster.EnvBinary)
	if bin == "" {
		var err error
		if bin, err = devcluster.BuildBinary(ctx); err != nil {
			t.Fatal(err)
		}
	}
	proc, err := devcluster.StartProcess(ctx, bin, "up", "--nodes=1", "--container-node", "--exit-with-parent", "--log-level=info")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proc.Stop(2 * time.Minute); err != nil {
			t.Errorf("stop tidal-dev: %v", err)
		}
		if t.Failed() {
			t.Logf("tidal-dev stderr (end):\n%s", proc.Stderr())
		}
	})
	e.ready = proc.Ready
	if e.dc, err = devcluster.Connect(e.ready.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	if e.dyn, err = dynamic.NewForConfig(e.dc.Config); err != nil {
		t.Fatal(err)
	}
	t.Logf("dev cluster %s, container node %s, containerd %s", e.ready.APIServer, e.ready.ContainerNode, e.ready.Containerd)
}

func (e *env) helm() *action.Configuration {
	flags := genericclioptions.NewConfigFlags(false)
	kc, ns := e.dc.Kubeconfig, namespace
	flags.KubeConfig, flags.Namespace = &kc, &ns
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, namespace, "secret", e.t.Logf); err != nil {
		e.t.Fatalf("helm configuration: %v", err)
	}
	return cfg
}

// values puts every deployable on the container node, on distinct host ports, with the images just imported.
func (e *env) values() map[string]any {
	ref := e.refs["tidal-operator"]
	repoTag := ref[strings.LastIndex(ref, "/")+1:]
	registry := strings.TrimSuffix(ref, "/"+repoTag)
	tag := repoTag[strings.LastIndex(repoTag, ":")+1:]
	// Every pod shares the host's network: a new pod cannot bind its ports while the old one runs.
	recreate := map[string]any{"type": "Recreate"}
	place := func(m map[string]any) map[string]any {
		m["nodeSelector"] = map[string]any{devcluster.ContainerNodeSelectorKey: devcluster.ContainerNodeSelectorValue}
		m["tolerations"] = []any{map[string]any{"key": devcluster.ContainerNodeTaintKey, "operator": "Exists", "effect": "NoSchedule"}}
		return m
	}
	adapterHost := fmt.Sprintf("%s-metrics-adapter.%s.svc", release, namespace)
	return map[string]any{
		"global": map[string]any{"image": map[string]any{"registry": registry, "tag": tag, "pullPolicy": "Never"}},
		"operator": place(map[string]any{
			"metricsPort": ports.operatorMetrics, "strategy": recreate,
			// The webhook configuration is Helm's, so uninstall removes it.
			"webhook": map[string]any{"port": ports.webhook, "helmOwnedConfiguration": true},
			// No cluster DNS in the dev cluster: the operator dials the adapter's stream on the node's address and
			// checks the certificate for the Service name (the last --metrics-adapter-address wins).
			"extraArgs": []any{fmt.Sprintf("--metrics-adapter-address=127.0.0.1:%d", ports.adapterStream),
				"--metrics-adapter-server-name=" + adapterHost},
		}),
		"metricsAdapter": place(map[string]any{"securePort": ports.adapterHTTPS, "streamPort": ports.adapterStream,
			"metricsPort": ports.adapterMetrics, "strategy": recreate,
			// metrics.k8s.io too: the adapter measures the container node's pods (scaleOnCPU).
			"apiService": map[string]any{"external": true, "podMetrics": true}}),
		"nodeAutoscaler": place(map[string]any{"enabled": true, "metricsPort": ports.autoscalerMetrics, "strategy": recreate}),
		// The chart's virtual node runs in a container with the sim backend; the container node itself is the
		// host-side virtual node of tidal-dev (see the package's notes on why not the reverse).
		"virtualNode": place(map[string]any{"enabled": true, "nodeName": "tidal-e2e-sim", "kubeletPort": ports.vnKubelet,
			// virtual-kubelet cannot resolve status.podIP for a pod's env; on the host network it is this.
			"nodeAddress": "127.0.0.1",
			"extraArgs":   []any{fmt.Sprintf("--metrics-addr=:%d", ports.vnMetrics)}}),
	}
}

func (e *env) install(ctx context.Context) { e.installWith(ctx, nil) }

// installWith installs the chart with values() and the top-level overrides merged over it.
func (e *env) installWith(ctx context.Context, overrides map[string]any) {
	t := e.t
	root, _ := devcluster.ModuleRoot()
	chrt, err := loader.Load(filepath.Join(root, "charts", "tidal"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dc.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	inst := action.NewInstall(e.helm())
	inst.ReleaseName, inst.Namespace, inst.Timeout = release, namespace, 3*time.Minute
	vals := e.values()
	for k, v := range overrides {
		if m, ok := v.(map[string]any); ok {
			if base, ok := vals[k].(map[string]any); ok {
				for kk, vv := range m {
					base[kk] = vv
				}
				continue
			}
		}
		vals[k] = v
	}
	rel, err := inst.RunWithContext(ctx, chrt, vals)
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	if rel.Info.Status != "deployed" {
		t.Fatalf("release status %s", rel.Info.Status)
	}
}

// waitTidalPods waits until each deployable's pod runs as a container on the container node, Ready.
func (e *env) waitTidalPods(ctx context.Context) {
	e.waitComponents(ctx, "operator", "metrics-adapter", "node-autoscaler", "virtual-node")
}

func (e *env) waitComponents(ctx context.Context, components ...string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for _, comp := range components {
		sel := fmt.Sprintf("app.kubernetes.io/instance=%s,app.kubernetes.io/component=%s", release, comp)
		var last string
		err := devcluster.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
			pods, err := e.dc.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return false, err
			}
			for i := range pods.Items {
				p := &pods.Items[i]
				last = describePod(p)
				if p.Spec.NodeName == e.ready.ContainerNode && p.Status.Phase == corev1.PodRunning && allReady(p) &&
					strings.HasPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://") {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			e.t.Fatalf("%s: no pod Running and Ready as a container on %s: %v; last: %s\n%s", comp, e.ready.ContainerNode, err, last, e.podLogs(sel))
		}
		e.t.Logf("%s: %s", comp, last)
	}
}

func (e *env) waitAPIServiceAndWebhook(ctx context.Context) {
	var msg string
	err := devcluster.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
		o, err := e.dyn.Resource(apiServices).Get(ctx, apiService, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		var ok bool
		ok, msg = available(o)
		return ok, nil
	})
	if err != nil {
		e.t.Fatalf("APIService %s not Available: %v (%s)", apiService, err, msg)
	}
	// The external metrics API answers through the aggregator, the Service route and the adapter's auth.
	if _, err := e.dc.Client.Discovery().ServerResourcesForGroupVersion("external.metrics.k8s.io/v1beta1"); err != nil {
		e.t.Fatalf("external.metrics.k8s.io discovery: %v", err)
	}
	whc, err := e.dc.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhookName, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("webhook configuration: %v", err)
	}
	err = devcluster.WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
		whc, err = e.dc.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhookName, metav1.GetOptions{})
		return err == nil && len(whc.Webhooks) > 0 && len(whc.Webhooks[0].ClientConfig.CABundle) > 0, nil
	})
	if err != nil {
		e.t.Fatalf("the operator did not fill in the webhook's CA bundle: %v", err)
	}
}

func (e *env) scaleRedisWorkers(ctx context.Context) {
	t := e.t
	c := e.dc.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	list := fmt.Sprintf("tidal-e2e-%d", time.Now().UnixNano())
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rdb.Close()
	t.Cleanup(func() { rdb.Del(context.Background(), list) })

	e.createWorker(ctx, "demo-worker", list, 0, "100ms")
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tidal.dev/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "demo-worker", "namespace": demoNS},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": "demo-worker"},
			"pollingInterval": int64(1), "cooldownPeriod": int64(5),
			"minReplicaCount": int64(0), "maxReplicaCount": int64(3),
			"triggers": []any{map[string]any{"type": "redis",
				"metadata": map[string]any{"address": redisAddr, "listName": list, "listLength": "5"}}},
		},
	}}
	// Created through the operator's validating webhook (failurePolicy Fail): proof the API server reaches it.
	if _, err := e.dyn.Resource(scaledObjects).Namespace(demoNS).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ScaledObject: %v", err)
	}
	e.waitReadyCondition(ctx, "demo-worker")
	if r := e.replicas(ctx, "demo-worker"); r != 0 {
		t.Fatalf("replicas %d with an empty list, want 0", r)
	}

	const items = 40
	for i := range items {
		if err := rdb.RPush(ctx, list, fmt.Sprintf("item-%d", i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	pushed := time.Now()
	e.waitFor(ctx, "scale from zero", func() bool { return e.replicas(ctx, "demo-worker") > 0 })
	t.Logf("scaled from zero %.1fs after the push", time.Since(pushed).Seconds())
	e.waitFor(ctx, "a worker Running as a container", func() bool {
		pods, err := c.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{LabelSelector: "app=demo-worker"})
		if err != nil {
			return false
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Spec.NodeName == e.ready.ContainerNode && p.Status.Phase == corev1.PodRunning &&
				strings.HasPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://") {
				return true
			}
		}
		return false
	})
	e.waitFor(ctx, "the workers drain the list", func() bool {
		n, err := rdb.LLen(ctx, list).Result()
		return err == nil && n == 0
	})
	drained := time.Now()
	t.Logf("list drained %.1fs after the push", drained.Sub(pushed).Seconds())
	e.waitFor(ctx, "scale back to zero, no worker pod left", func() bool {
		if e.replicas(ctx, "demo-worker") != 0 {
			return false
		}
		pods, err := c.CoreV1().Pods(demoNS).List(ctx, metav1.ListOptions{LabelSelector: "app=demo-worker"})
		return err == nil && len(pods.Items) == 0
	})
	t.Logf("back to zero %.1fs after the list drained", time.Since(drained).Seconds())

	// Deleted while the operator runs: its finalizer is released, nothing is left stuck.
	if err := e.dyn.Resource(scaledObjects).Namespace(demoNS).Delete(ctx, "demo-worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(ctx, "ScaledObject deleted (finalizer released)", func() bool {
		_, err := e.dyn.Resource(scaledObjects).Namespace(demoNS).Get(ctx, "demo-worker", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// createWorker creates a Deployment of demo workers on the container node in demoNS, labelled app=name, popping
// list and spending work on each item.
func (e *env) createWorker(ctx context.Context, name, list string, replicas int32, work string) {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: demoNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "worker", Image: e.refs["tidal-demo-worker"], ImagePullPolicy: corev1.PullNever,
						Env: []corev1.EnvVar{{Name: "REDIS_ADDRESS", Value: redisAddr}, {Name: "LIST_NAME", Value: list},
							{Name: "WORK_DURATION", Value: work}}}},
				},
			},
		},
	}
	devcluster.OnContainerNode(&d.Spec.Template.Spec)
	if _, err := e.dc.Client.AppsV1().Deployments(demoNS).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// waitReadyCondition waits until the ScaledObject name in demoNS is Ready.
func (e *env) waitReadyCondition(ctx context.Context, name string) {
	var conds any
	e.waitFor(ctx, "ScaledObject "+name+" Ready", func() bool {
		o, err := e.dyn.Resource(scaledObjects).Namespace(demoNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		list, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
		conds = list
		for _, c := range list {
			m, _ := c.(map[string]any)
			if m["type"] == "Ready" && m["status"] == "True" {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("conditions %v", conds) })
}

// replicas is the Deployment name's spec.replicas in demoNS, or -1.
func (e *env) replicas(ctx context.Context, name string) int32 {
	d, err := e.dc.Client.AppsV1().Deployments(demoNS).Get(ctx, name, metav1.GetOptions{})
	if err != nil || d.Spec.Replicas == nil {
		return -1
	}
	return *d.Spec.Replicas
}

func (e *env) uninstall(ctx context.Context) {
	t := e.t
	un := action.NewUninstall(e.helm())
	un.Wait, un.Timeout = true, 3*time.Minute
	res, err := un.Run(release)
	if err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if res.Release.Info.Status != "uninstalled" {
		t.Errorf("release status after uninstall %s", res.Release.Info.Status)
	}
	e.waitFor(ctx, "Tidal pods gone", func() bool {
		pods, err := e.dc.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
		return err == nil && len(pods.Items) == 0
	})
	// Checked after the operator is gone, so a configuration it re-created while terminating would be seen.
	if _, err := e.dc.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhookName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("webhook configuration %s after uninstall: %v (want NotFound)", webhookName, err)
	}
	for _, name := range []string{apiService, podMetricsAPIService} {
		if _, err := e.dyn.Resource(apiServices).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("APIService %s after uninstall: %v (want NotFound)", name, err)
		}
	}
	for _, gvr := range tidalCRs {
		l, err := e.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Errorf("list %s: %v", gvr.Resource, err)
			continue
		}
		for _, o := range l.Items {
			if o.GetDeletionTimestamp() != nil {
				t.Errorf("%s %s/%s stuck in deletion (finalizers %v)", gvr.Resource, o.GetNamespace(), o.GetName(), o.GetFinalizers())
			}
		}
	}
}

// waitFor polls cond every 250ms until it holds, failing the test at ctx's deadline with what (and detail).
func (e *env) waitFor(ctx context.Context, what string, cond func() bool, detail ...func() string) {
	e.t.Helper()
	if err := devcluster.WaitFor(ctx, 250*time.Millisecond, func() (bool, error) { return cond(), nil }); err != nil {
		msg := ""
		for _, d := range detail {
			msg += " " + d()
		}
		e.t.Fatalf("%s: %v%s", what, err, msg)
	}
}

// podLogs is the end of the logs of the pods matching sel, for failure messages.
func (e *env) podLogs(sel string) string {
	// Called when a step's context has run out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := e.dc.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	tail := int64(30)
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			out, err := e.dc.Client.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &tail}).DoRaw(ctx)
			fmt.Fprintf(&b, "--- %s/%s (err %v):\n%s\n", p.Name, c.Name, err, out)
		}
	}
	return b.String()
}

func allReady(p *corev1.Pod) bool {
	if len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return false
		}
	}
	return true
}

func describePod(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s node=%q phase=%s reason=%q msg=%q", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Reason, p.Status.Message)
	for _, cs := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, "; %s ready=%v restarts=%d id=%s", cs.Name, cs.Ready, cs.RestartCount, cs.ContainerID)
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, " terminated %s (%d): %s", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
		case cs.LastTerminationState.Terminated != nil:
			fmt.Fprintf(&b, " last terminated %s (%d)", cs.LastTerminationState.Terminated.Reason, cs.LastTerminationState.Terminated.ExitCode)
		}
	}
	return b.String()
}

func available(o *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Available" {
			return m["status"] == "True", fmt.Sprintf("%v: %v", m["reason"], m["message"])
		}
	}
	return false, "no Available condition"
}
