package clusterapi_test

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/clusterapi"
	"github.com/tidalscale/tidal/internal/devcluster"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

var (
	mdGVR      = schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta1", Resource: "machinedeployments"}
	machineGVR = schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta1", Resource: "machines"}
)

func TestMachineDeploymentLifecycle(t *testing.T) {
	c := devcluster.Get(t)
	ctx := context.Background()
	if err := devcluster.ApplyCRDDir(ctx, c, "testdata"); err != nil {
		t.Fatal(err)
	}
	ns := c.Namespace(t)
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	md := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "MachineDeployment",
		"metadata": map[string]any{"name": "workers", "namespace": ns},
		"spec":     map[string]any{"clusterName": "c1", "replicas": int64(0)},
	}}
	if _, err := dyn.Resource(mdGVR).Namespace(ns).Create(ctx, md, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	group := &v1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "capi"},
		Spec: v1alpha1.NodeGroupSpec{MaxSize: 3, ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderClusterAPI,
			Config: map[string]string{clusterapi.ConfigMachineDeployment: "workers", clusterapi.ConfigNamespace: ns}}},
	}
	p := clusterapi.New(dyn)
	replicas := func() int64 {
		t.Helper()
		got, err := dyn.Resource(mdGVR).Namespace(ns).Get(ctx, "workers", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas")
		return n
	}

	if err := p.IncreaseSize(ctx, group, 2); err != nil {
		t.Fatalf("IncreaseSize: %v", err)
	}
	if got := replicas(); got != 2 {
		t.Fatalf("replicas after IncreaseSize(2) = %d, want 2", got)
	}
	if err := p.IncreaseSize(ctx, group, 2); err == nil || !strings.Contains(err.Error(), "exceed maxSize 3") {
		t.Fatalf("IncreaseSize beyond max: err = %v", err)
	}
	instances, err := p.Instances(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if len(instances) != 2 || instances[0].State != provider.InstanceCreating || instances[0].NodeName != "" {
		t.Fatalf("instances before Machines exist = %+v, want 2 creating placeholders", instances)
	}

	// Play the MachineSet controller: two Machines, each with a node.
	for _, name := range []string{"workers-a", "workers-b"} {
		m := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine",
			"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{clusterapi.LabelDeploymentName: "workers"}},
			"spec":     map[string]any{"clusterName": "c1", "providerID": "test://" + name},
			"status":   map[string]any{"phase": "Running", "nodeRef": map[string]any{"name": "node-" + name}},
		}}
		if _, err := dyn.Resource(machineGVR).Namespace(ns).Create(ctx, m, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	instances, err = p.Instances(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if len(instances) != 2 {
		t.Fatalf("instances = %+v, want 2", instances)
	}
	for _, in := range instances {
		if in.State != provider.InstanceRunning || !strings.HasPrefix(in.NodeName, "node-workers-") || !strings.HasPrefix(in.ID, "test://") {
			t.Errorf("instance %+v, want running with node and provider ID", in)
		}
	}
	if err := p.DecreaseTargetSize(ctx, group, 1); err == nil || !strings.Contains(err.Error(), "below 2 registered") {
		t.Fatalf("DecreaseTargetSize below registered nodes: err = %v", err)
	}

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-workers-a"}, Spec: corev1.NodeSpec{ProviderID: "test://workers-a"}}
	if err := p.DeleteNodes(ctx, group, []*corev1.Node{node}); err != nil {
		t.Fatalf("DeleteNodes: %v", err)
	}
	if got := replicas(); got != 1 {
		t.Fatalf("replicas after DeleteNodes = %d, want 1", got)
	}
	a, err := dyn.Resource(machineGVR).Namespace(ns).Get(ctx, "workers-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.GetAnnotations()[clusterapi.AnnotationDeleteMachine]; !ok {
		t.Fatalf("machine workers-a annotations %v, want %s", a.GetAnnotations(), clusterapi.AnnotationDeleteMachine)
	}
	b, err := dyn.Resource(machineGVR).Namespace(ns).Get(ctx, "workers-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.GetAnnotations()[clusterapi.AnnotationDeleteMachine]; ok {
		t.Fatal("machine workers-b was marked for deletion too")
	}
	stranger := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}}
	if err := p.DeleteNodes(ctx, group, []*corev1.Node{stranger}); err == nil || !strings.Contains(err.Error(), `node "elsewhere" has no Machine`) {
		t.Fatalf("DeleteNodes of a foreign node: err = %v", err)
	}

	// Recover right after the removal: replicas (1) are below the active Machines (2), the MachineSet has yet to
	// delete the marked Machine, so the mark stays and its node counts as deleting.
	annotations := func(name string) map[string]string {
		t.Helper()
		m, err := dyn.Resource(machineGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m.GetAnnotations()
	}
	deleting, err := p.Recover(ctx, group)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(deleting) != 1 || deleting[0] != "node-workers-a" {
		t.Fatalf("Recover after DeleteNodes: deleting = %v, want [node-workers-a]", deleting)
	}
	if _, ok := annotations("workers-a")[clusterapi.AnnotationDeleteMachine]; !ok {
		t.Fatal("Recover cleared the mark of a Machine the MachineSet is about to delete")
	}
	// A run that died between marking and lowering the replicas: replicas back at 2. The stale mark would make
	// the MachineSet delete workers-a at the next unrelated scale-down, so Recover clears it; a delete-machine
	// annotation someone else set (workers-b) stays.
	if err := p.IncreaseSize(ctx, group, 1); err != nil {
		t.Fatal(err)
	}
	userMark := `{"metadata":{"annotations":{"cluster.x-k8s.io/delete-machine":"yes"}}}`
	if _, err := dyn.Resource(machineGVR).Namespace(ns).Patch(ctx, "workers-b", types.MergePatchType, []byte(userMark), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if deleting, err = p.Recover(ctx, group); err != nil || len(deleting) != 0 {
		t.Fatalf("Recover after a crash before the replicas changed: deleting = %v, err = %v; want none", deleting, err)
	}
	if a := annotations("workers-a"); a[clusterapi.AnnotationDeleteMachine] != "" || a[clusterapi.AnnotationDeleteRequested] != "" {
		t.Fatalf("workers-a annotations after Recover = %v, want the delete marks cleared", a)
	}
	if annotations("workers-b")[clusterapi.AnnotationDeleteMachine] != "yes" {
		t.Fatal("Recover cleared a delete-machine annotation the autoscaler did not set")
	}
}

func TestConfigErrors(t *testing.T) {
	p := clusterapi.New(nil)
	cases := []struct {
		name   string
		config map[string]string
		want   string
	}{
		{name: "missing machineDeployment", config: map[string]string{}, want: "providerRef.config.machineDeployment is required"},
		{name: "bad apiVersion", config: map[string]string{clusterapi.ConfigMachineDeployment: "md", clusterapi.ConfigAPIVersion: "v1"}, want: "providerRef.config.apiVersion: want group/version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := &v1alpha1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "g"}, Spec: v1alpha1.NodeGroupSpec{MaxSize: 1,
				ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderClusterAPI, Config: tc.config}}}
			err := p.IncreaseSize(context.Background(), g, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
