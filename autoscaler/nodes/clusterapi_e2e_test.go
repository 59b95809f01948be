package nodes_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/clusterapi"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	"github.com/tidalscale/tidal/internal/devcluster"
)

// TestClusterAPIScalesMachineDeployment: pending pods grow a MachineDeployment through /scale; the test plays
// Cluster API (Machines with nodeRefs, kwok nodes), the pods schedule, and no further scale-up follows.
func TestClusterAPIScalesMachineDeployment(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	if err := devcluster.ApplyCRDDir(context.Background(), c, "provider/clusterapi/testdata"); err != nil {
		t.Fatal(err)
	}
	var ns string
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true}, nodeGroup("capi", 0, 5, func(g *v1alpha1.NodeGroup) {
		g.Spec.ProviderRef = v1alpha1.ProviderRef{Name: v1alpha1.ProviderClusterAPI,
			Config: map[string]string{clusterapi.ConfigMachineDeployment: "workers"}}
	}))
	ns = e.ns
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mdGVR := schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta1", Resource: "machinedeployments"}
	machineGVR := schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta1", Resource: "machines"}
	// The NodeGroup names the namespace now that it is known (the autoscaler writes its status meanwhile).
	var ng *v1alpha1.NodeGroup
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := e.tidal.TidalV1alpha1().NodeGroups().Get(ctx, e.group("capi"), metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.ProviderRef.Config[clusterapi.ConfigNamespace] = ns
		ng, err = e.tidal.TidalV1alpha1().NodeGroups().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
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
	e.deployment("capi-app", 2, "3", e.selectGroup("capi"))
	replicas := func() int64 {
		got, err := dyn.Resource(mdGVR).Namespace(ns).Get(ctx, "workers", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas")
		return n
	}
	e.eventually(2*time.Minute, "MachineDeployment scaled to 2", func() (bool, error) { return replicas() == 2, nil })

	// Play Cluster API: two Machines whose nodes register.
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("%s-m%d", e.group("capi"), i)
		node := sim.Node(ng, name)
		node.Spec.ProviderID = "capi-test://" + name
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		m := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine",
			"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{clusterapi.LabelDeploymentName: "workers"}},
			"spec":     map[string]any{"clusterName": "c1", "providerID": node.Spec.ProviderID},
			"status":   map[string]any{"phase": "Running", "nodeRef": map[string]any{"name": name}},
		}}
		if _, err := dyn.Resource(machineGVR).Namespace(ns).Create(ctx, m, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.eventually(2*time.Minute, "pods scheduled on the Machines' nodes", func() (bool, error) {
		return scheduled(e.pods("capi-app")) == 2, nil
	})
	for i := 0; i < 3; i++ {
		e.eventually(30*time.Second, "a status update", statusNewerThan(e, time.Now()))
	}
	if got := replicas(); got != 2 {
		t.Fatalf("MachineDeployment replicas = %d after the nodes registered, want 2", got)
	}
	st, err := readStatus(e)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.NodeGroups) != 1 || st.NodeGroups[0].Ready != 2 || st.NodeGroups[0].Target != 2 {
		t.Fatalf("status node groups = %+v, want capi with 2 ready of 2", st.NodeGroups)
	}
}
