package devcluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// waitTimeout is generous: the machine running the tests may be busy compiling other packages.
const waitTimeout = 2 * time.Minute

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestDeploymentRunsOnSimulatedNodesAndScalesToZero(t *testing.T) {
	t.Parallel()
	c := Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)

	dep := deployment("web", 3)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	selector := "app=web"
	err := WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		ready := 0
		for i := range pods.Items {
			if podRunningAndReady(&pods.Items[i]) {
				ready++
			}
		}
		return ready == 3 && len(pods.Items) == 3, nil
	})
	if err != nil {
		t.Fatalf("3 pods Running and Ready: %v", err)
	}

	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	for _, p := range pods.Items {
		node, err := c.Client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s: node %q: %v", p.Name, p.Spec.NodeName, err)
		}
		if node.Labels["type"] != "kwok" {
			t.Errorf("pod %s runs on node %s with labels %v, want a type=kwok node", p.Name, node.Name, node.Labels)
		}
		if p.Status.PodIP == "" {
			t.Errorf("pod %s has no pod IP", p.Name)
		}
	}

	scale, err := c.Client.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	scale.Spec.Replicas = 0
	if _, err := c.Client.AppsV1().Deployments(ns).UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale to 0: %v", err)
	}
	err = WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err == nil && len(pods.Items) == 0, err
	})
	if err != nil {
		t.Fatalf("pods deleted after scaling to 0: %v", err)
	}
}

func TestPodThatFitsNoNodeStaysPending(t *testing.T) {
	t.Parallel()
	c := Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "huge"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "app",
			Image: "example.invalid/app:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("1000"),
			}},
		}}},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	var got *corev1.PodCondition
	err := WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "huge", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodScheduled {
				got = &p.Status.Conditions[i]
			}
		}
		return got != nil, nil
	})
	if err != nil {
		t.Fatalf("PodScheduled condition: %v", err)
	}
	if got.Status != corev1.ConditionFalse || got.Reason != corev1.PodReasonUnschedulable {
		t.Errorf("PodScheduled = %s/%s (%s), want False/Unschedulable", got.Status, got.Reason, got.Message)
	}

	err = WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		events, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": "huge",
			"reason":              "FailedScheduling",
		}.String()})
		return err == nil && len(events.Items) > 0, err
	})
	if err != nil {
		t.Fatalf("FailedScheduling event: %v", err)
	}

	p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "huge", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
		t.Errorf("pod on node %q in phase %s, want unbound and Pending", p.Spec.NodeName, p.Status.Phase)
	}
}

func TestKubectlListsNodes(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/kubectl"); statErr != nil {
			t.Skip("kubectl not installed: skipping the kubectl check")
		}
		kubectl = "/usr/bin/kubectl"
	}
	c := Get(t)
	ctx := testContext(t)
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.Kubeconfig, "get", "nodes",
		"-l", "type=kwok", "-o", "name").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get nodes: %v: %s", err, out)
	}
	nodes := strings.Fields(string(out))
	if len(nodes) < DefaultNodes {
		t.Fatalf("kubectl listed %d kwok nodes %v, want at least %d", len(nodes), nodes, DefaultNodes)
	}
	for _, n := range nodes {
		if !strings.HasPrefix(n, "node/") {
			t.Errorf("kubectl printed %q, want node/<name>", n)
		}
	}
}

func TestJobCompletes(t *testing.T) {
	t.Parallel()
	c := Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "once"},
		Spec: batchv1.JobSpec{
			Completions: new(int32(2)),
			Parallelism: new(int32(2)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "work", Image: "example.invalid/work:1"}},
			}},
		},
	}
	if _, err := c.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create job: %v", err)
	}
	err := WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		j, err := c.Client.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range j.Status.Conditions {
			if cond.Type == batchv1.JobFailed && cond.Status == corev1.ConditionTrue {
				return false, errors.New("job failed: " + cond.Message)
			}
			if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
				return j.Status.Succeeded == 2, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("job complete with 2 succeeded pods: %v", err)
	}
}

func TestApplyYAML(t *testing.T) {
	t.Parallel()
	c := Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)

	manifest := []byte(`
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: applied
spec:
  replicas: 1
  selector: {matchLabels: {app: applied}}
  template:
    metadata: {labels: {app: applied}}
    spec:
      containers: [{name: app, image: example.invalid/app:1}]
`)
	objs, err := ApplyYAML(ctx, c.Config, ns, manifest)
	if err != nil {
		t.Fatalf("ApplyYAML: %v", err)
	}
	if len(objs) != 2 {
		t.Fatalf("applied %d objects, want 2", len(objs))
	}
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get applied configmap: %v", err)
	}
	if cm.Data["mode"] != "fast" {
		t.Errorf("configmap data = %v, want mode=fast", cm.Data)
	}
	// Applying again with a change updates in place.
	changed := []byte(strings.Replace(string(manifest), "mode: fast", "mode: slow", 1))
	if _, err := ApplyYAML(ctx, c.Config, ns, changed); err != nil {
		t.Fatalf("ApplyYAML again: %v", err)
	}
	cm, err = c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get configmap: %v", err)
	}
	if cm.Data["mode"] != "slow" {
		t.Errorf("configmap data after re-apply = %v, want mode=slow", cm.Data)
	}

	if _, err := ApplyYAML(ctx, c.Config, ns, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")); err == nil {
		t.Error("ApplyYAML of an object without a name succeeded, want an error")
	}
}

func TestApplyYAMLDefinesAndUsesACRD(t *testing.T) {
	t.Parallel()
	c := Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)

	group := ns + ".apply.test.tidal.dev"
	manifest := []byte(strings.ReplaceAll(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.GROUP
spec:
  group: GROUP
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
---
apiVersion: GROUP/v1
kind: Gadget
metadata:
  name: g1
spec:
  size: 3
`, "GROUP", group))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.Client.Discovery().RESTClient().Delete().
			AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "gadgets."+group).Do(ctx).Error()
		if err != nil {
			t.Logf("delete CRD: %v", err)
		}
	})
	objs, err := ApplyYAML(ctx, c.Config, ns, manifest)
	if err != nil {
		t.Fatalf("ApplyYAML: %v", err)
	}
	if len(objs) != 2 || objs[1].GetNamespace() != ns {
		t.Fatalf("applied %d objects (last in namespace %q), want 2 with the Gadget in %q", len(objs), objs[len(objs)-1].GetNamespace(), ns)
	}
	size, _, _ := unstructured.NestedInt64(objs[1].Object, "spec", "size")
	if size != 3 {
		t.Errorf("stored gadget spec.size = %d, want 3", size)
	}
}

func TestNamespacePrefix(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "simple", in: "TestScale", want: "testscale-"},
		{name: "subtest", in: "TestScale/from_zero", want: "testscale-from-zero-"},
		{name: "long", in: strings.Repeat("a", 80), want: strings.Repeat("a", 40) + "-"},
		{name: "only symbols", in: "///", want: "test-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := namespacePrefix(tc.in); got != tc.want {
				t.Errorf("namespacePrefix(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "example.invalid/" + name + ":1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("10m"),
						corev1.ResourceMemory: resource.MustParse("16Mi"),
					}},
				}}},
			},
		},
	}
}

func podRunningAndReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// countRunningReady counts Running and Ready pods matching selector in ns.
func countRunningReady(ctx context.Context, client kubernetes.Interface, ns, selector string) (int, error) {
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range pods.Items {
		if podRunningAndReady(&pods.Items[i]) {
			n++
		}
	}
	return n, nil
}

// testBinary is the tidal-dev binary to run directly: $TIDAL_DEV_BIN or a (cached) build.
func testBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(EnvBinary); bin != "" {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := BuildBinary(ctx)
	if err != nil {
		t.Fatalf("build tidal-dev: %v", err)
	}
	return bin
}

// notExist reports whether path is gone.
func notExist(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// kubeconfigDir is the data dir a ready line's kubeconfig lives in.
func kubeconfigDir(r ReadyLine) string { return filepath.Dir(r.Kubeconfig) }
