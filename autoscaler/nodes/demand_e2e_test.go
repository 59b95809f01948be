package nodes_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/sim"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// capacityRequest creates a CapacityRequest for replicas pods of app requesting cpu each on group, expiring at
// expires; mutate, if any, changes it before it is created.
func (e *env) capacityRequest(app string, replicas int32, cpu, group string, expires time.Time, mutate ...func(*v1alpha1.CapacityRequest)) *v1alpha1.CapacityRequest {
	e.t.Helper()
	cr := &v1alpha1.CapacityRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "deployment-" + app, Namespace: e.ns},
		Spec: v1alpha1.CapacityRequestSpec{
			Replicas: replicas,
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			Pod: v1alpha1.CapacityRequestPod{
				Labels:       map[string]string{"app": app},
				Requests:     corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("100Mi")},
				NodeSelector: map[string]string{template.LabelNodeGroup: e.group(group)},
			},
			ExpiresAt: metav1.NewTime(expires),
		},
	}
	for _, m := range mutate {
		m(cr)
	}
	out, err := e.tidal.TidalV1alpha1().CapacityRequests(e.ns).Create(context.Background(), cr, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create capacity request: %v", err)
	}
	return out
}

func (e *env) targetSize(group string) int32 {
	e.t.Helper()
	ng, err := e.tidal.TidalV1alpha1().NodeGroups().Get(context.Background(), e.group(group), metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get node group: %v", err)
	}
	return ng.Status.TargetSize
}

// TestDemandProvisionsBeforePodsAndNeverTwice publishes demand for six 1.5-CPU pods (two per 4-CPU node), sees
// three nodes requested while no pod of the workload exists, then creates the pods while the nodes are still
// being provisioned (3s delay), so they go Pending with the request still unexpired: the group must stay at three.
func TestDemandProvisionsBeforePodsAndNeverTwice(t *testing.T) {
	t.Parallel()
	slow := func(g *v1alpha1.NodeGroup) {
		g.Spec.ProviderRef.Config = map[string]string{sim.ConfigProvisioningDelay: "3s"}
	}
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true}, nodeGroup("pool", 0, 10, slow))
	e.capacityRequest("web", 6, "1500m", "pool", time.Now().Add(10*time.Minute))

	e.eventually(time.Minute, "three nodes requested for the demand", func() (bool, error) {
		return e.targetSize("pool") == 3, nil
	})
	if pods := e.pods("web"); len(pods) != 0 {
		t.Fatalf("%d pods of the workload exist; the nodes must have been requested before any", len(pods))
	}
	if got := testutil.ToFloat64(e.metrics.NodesAhead.WithLabelValues(e.group("pool"))); got != 3 {
		t.Errorf("nodes_provisioned_ahead_total = %v, want 3", got)
	}
	e.eventually(time.Minute, "request status: 6 missing, 3 nodes provisioned", func() (bool, error) {
		cr, err := e.tidal.TidalV1alpha1().CapacityRequests(e.ns).Get(context.Background(), "deployment-web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return cr.Status.MissingReplicas == 6 && cr.Status.ProvisionedNodes == 3, nil
	})

	e.deployment("web", 6, "1500m", e.selectGroup("pool"))
	maxTarget := int32(0)
	e.eventually(2*time.Minute, "6 pods scheduled", func() (bool, error) {
		maxTarget = max(maxTarget, e.targetSize("pool"))
		pods := e.pods("web")
		return len(pods) == 6 && scheduled(pods) == 6, nil
	})
	for i := 0; i < 3; i++ {
		e.eventually(30*time.Second, "a status update", statusNewerThan(e, time.Now()))
		maxTarget = max(maxTarget, e.targetSize("pool"))
	}
	if n := len(e.groupNodes("pool")); n != 3 || maxTarget != 3 {
		t.Fatalf("group has %d nodes (max target seen %d), want exactly 3: pending pods and demand were counted twice", n, maxTarget)
	}
	if got := testutil.ToFloat64(e.metrics.ScaledUpNodes.WithLabelValues(e.group("pool"))); got != 3 {
		t.Errorf("scaled_up_nodes_total = %v, want 3", got)
	}
	e.eventually(time.Minute, "request status: nothing missing", func() (bool, error) {
		cr, err := e.tidal.TidalV1alpha1().CapacityRequests(e.ns).Get(context.Background(), "deployment-web", metav1.GetOptions{})
		return err == nil && cr.Status.MissingReplicas == 0, err
	})
}

// TestDemandExpiryReleasesHeadroom: nodes grown for a request whose pods never come are kept while it is
// unexpired, and removed by the normal scale-down once it expires.
func TestDemandExpiryReleasesHeadroom(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastScaleDown, nodeGroup("pool", 0, 5, nil))
	expires := time.Now().Add(45 * time.Second)
	e.capacityRequest("never", 2, "3", "pool", expires)

	e.eventually(time.Minute, "two ready nodes for the demand", func() (bool, error) {
		ready := 0
		for _, n := range e.groupNodes("pool") {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == 2, nil
	})
	// Empty nodes are unneeded after 3s (fastScaleDown); the unexpired request keeps them. Each status update
	// follows a full loop, scale-down included.
	for i := 0; i < 3 && time.Now().Add(5*time.Second).Before(expires); i++ {
		e.eventually(30*time.Second, "a status update", statusNewerThan(e, time.Now()))
		if time.Now().Before(expires) {
			if n := len(e.groupNodes("pool")); n != 2 {
				t.Fatalf("%d nodes while the request is unexpired, want 2", n)
			}
		}
	}
	e.eventually(3*time.Minute, "the nodes removed after expiry", func() (bool, error) {
		return len(e.groupNodes("pool")) == 0, nil
	})
	cr, err := e.tidal.TidalV1alpha1().CapacityRequests(e.ns).Get(context.Background(), "deployment-never", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Status.MissingReplicas != 0 || cr.Status.ProvisionedNodes != 2 {
		t.Errorf("status after expiry: missing %d provisioned %d, want 0 and 2", cr.Status.MissingReplicas, cr.Status.ProvisionedNodes)
	}
}

// TestHeadroomKeepsFreeCapacity: a group with spec.headroom of 3 CPU grows one node with no pod at all, and
// another once a pod takes that room.
func TestHeadroomKeepsFreeCapacity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true}, nodeGroup("pool", 0, 5, func(g *v1alpha1.NodeGroup) {
		g.Spec.Headroom = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}
	}))
	e.eventually(time.Minute, "one node for the headroom", func() (bool, error) {
		return len(e.groupNodes("pool")) == 1, nil
	})
	e.deployment("taker", 1, "2", e.selectGroup("pool"))
	e.eventually(2*time.Minute, "the pod scheduled and a second node for the headroom", func() (bool, error) {
		return scheduled(e.pods("taker")) == 1 && len(e.groupNodes("pool")) == 2, nil
	})
}

// TestCapacityRequestValidation: bad values are refused by the API server, naming the field.
func TestCapacityRequestValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nodes.Config{ScaleDownDisabled: true})
	valid := func() *v1alpha1.CapacityRequest {
		return &v1alpha1.CapacityRequest{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "bad-", Namespace: e.ns},
			Spec: v1alpha1.CapacityRequestSpec{
				Replicas: 1, Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
				Pod:       v1alpha1.CapacityRequestPod{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
				ExpiresAt: metav1.NewTime(time.Now().Add(time.Minute)),
			},
		}
	}
	for _, tc := range []struct {
		name, field string
		mutate      func(*v1alpha1.CapacityRequest)
	}{
		{"negative replicas", "spec.replicas", func(cr *v1alpha1.CapacityRequest) { cr.Spec.Replicas = -1 }},
		{"too many replicas", "spec.replicas", func(cr *v1alpha1.CapacityRequest) { cr.Spec.Replicas = v1alpha1.MaxCapacityRequestReplicas + 1 }},
		{"empty selector", "spec.selector", func(cr *v1alpha1.CapacityRequest) { cr.Spec.Selector = metav1.LabelSelector{} }},
		{"negative request", "spec.pod.requests", func(cr *v1alpha1.CapacityRequest) {
			cr.Spec.Pod.Requests[corev1.ResourceCPU] = resource.MustParse("-1")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := valid()
			tc.mutate(cr)
			_, err := e.tidal.TidalV1alpha1().CapacityRequests(e.ns).Create(context.Background(), cr, metav1.CreateOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("create: %v; want a refusal naming %s", err, tc.field)
			}
		})
	}
	if _, err := e.tidal.TidalV1alpha1().CapacityRequests(e.ns).Create(context.Background(), valid(), metav1.CreateOptions{}); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	ng := nodeGroup(e.group("bad-headroom"), 0, 1, func(g *v1alpha1.NodeGroup) {
		g.Spec.Headroom = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")}
	})
	if _, err := e.tidal.TidalV1alpha1().NodeGroups().Create(context.Background(), ng, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "spec.headroom") {
		_ = e.tidal.TidalV1alpha1().NodeGroups().Delete(context.Background(), ng.Name, metav1.DeleteOptions{})
		t.Fatalf("node group with negative headroom: %v; want a refusal naming spec.headroom", err)
	}
}
