package app_test

import (
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/autoscaler/operator/webhook"
	"github.com/tidalscale/tidal/internal/testenv"
)

// Every invalid manifest is refused by the real API server — by the CRD's schema and CEL rules or by the
// operator's webhook — with a message naming the field.
func TestInvalidScaledObjectsRejected(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{Webhook: &app.WebhookOptions{
		Addr: "127.0.0.1:0", Hosts: []string{"127.0.0.1"},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.NS}},
	}})
	t.Cleanup(func() {
		_ = e.Cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(e.Ctx, webhook.ConfigurationName, metav1.DeleteOptions{})
	})
	e.Deployment("taken", 0)
	e.Deployment("hpa-owned", 0)
	base := func() *tidalv1alpha1.ScaledObject {
		return testenv.RedisScaledObject("x", "free", "127.0.0.1:6379", "l")
	}
	// Wait until the webhook answers: a valid object is admitted, then removed.
	e.Eventually("webhook registered and serving", 60*time.Second, func() (bool, string) {
		so := base()
		so.Name = "probe"
		_, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Create(e.Ctx, so, metav1.CreateOptions{})
		if err != nil {
			return false, err.Error()
		}
		_ = e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Delete(e.Ctx, "probe", metav1.DeleteOptions{})
		return true, ""
	})
	first := testenv.RedisScaledObject("first", "taken", "127.0.0.1:6379", "l")
	e.ScaledObject(first)
	minR := int32(1)
	if _, err := e.Cluster.Client.AutoscalingV2().HorizontalPodAutoscalers(e.NS).Create(e.Ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "users-own"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "hpa-owned"},
			MinReplicas:    &minR, MaxReplicas: 3,
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		mutate func(so *tidalv1alpha1.ScaledObject)
		want   []string
	}{
		{"min above max", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.MinReplicaCount = ptr.To[int32](5)
			so.Spec.MaxReplicaCount = ptr.To[int32](2)
		}, []string{"minReplicaCount"}},
		{"idle not below min", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.MinReplicaCount = ptr.To[int32](1)
			so.Spec.IdleReplicaCount = ptr.To[int32](1)
		}, []string{"idleReplicaCount"}},
		{"no triggers", func(so *tidalv1alpha1.ScaledObject) { so.Spec.Triggers = nil }, []string{"triggers"}},
		{"empty trigger type", func(so *tidalv1alpha1.ScaledObject) { so.Spec.Triggers[0].Type = "" }, []string{"type"}},
		{"unknown trigger type", func(so *tidalv1alpha1.ScaledObject) { so.Spec.Triggers[0].Type = "carrier-pigeon" }, []string{"spec.triggers[0].type", "carrier-pigeon"}},
		{"missing listName", func(so *tidalv1alpha1.ScaledObject) { delete(so.Spec.Triggers[0].Metadata, "listName") }, []string{"spec.triggers[0].metadata", "listName"}},
		{"non-numeric listLength", func(so *tidalv1alpha1.ScaledObject) { so.Spec.Triggers[0].Metadata["listLength"] = "AA" }, []string{"listLength", "AA"}},
		{"negative activation", func(so *tidalv1alpha1.ScaledObject) { so.Spec.Triggers[0].Metadata["activationListLength"] = "-4" }, []string{"activationListLength"}},
		{"bad metricType", func(so *tidalv1alpha1.ScaledObject) { so.Spec.Triggers[0].MetricType = "Bogus" }, []string{"metricType"}},
		{"bad mode", func(so *tidalv1alpha1.ScaledObject) { so.Spec.Mode = "turbo" }, []string{"mode"}},
		{"zero polling interval", func(so *tidalv1alpha1.ScaledObject) { so.Spec.PollingInterval = ptr.To[int32](0) }, []string{"pollingInterval"}},
		{"negative cooldown", func(so *tidalv1alpha1.ScaledObject) { so.Spec.CooldownPeriod = ptr.To[int32](-1) }, []string{"cooldownPeriod"}},
		{"empty target name", func(so *tidalv1alpha1.ScaledObject) { so.Spec.ScaleTargetRef.Name = "" }, []string{"scaleTargetRef.name"}},
		{"duplicate trigger names", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.Triggers = append(so.Spec.Triggers, *so.Spec.Triggers[0].DeepCopy())
		}, []string{"name"}},
		{"fallback threshold zero", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.Fallback = &tidalv1alpha1.Fallback{FailureThreshold: 0, Replicas: 2}
		}, []string{"failureThreshold"}},
		{"only cpu and min zero", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.Triggers = []tidalv1alpha1.ScaleTriggers{{Type: "cpu", MetricType: "Utilization", Metadata: map[string]string{"value": "50"}}}
		}, []string{"minReplicaCount"}},
		{"formula without target", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{ScalingModifiers: &tidalv1alpha1.ScalingModifiers{Formula: "queue * 2"}}
		}, []string{"target"}},
		{"second ScaledObject on a workload", func(so *tidalv1alpha1.ScaledObject) { so.Spec.ScaleTargetRef.Name = "taken" }, []string{"spec.scaleTargetRef", "first"}},
		{"workload already has an HPA", func(so *tidalv1alpha1.ScaledObject) { so.Spec.ScaleTargetRef.Name = "hpa-owned" }, []string{"spec.scaleTargetRef", "users-own"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			so := base()
			tc.mutate(so)
			_, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Create(e.Ctx, so, metav1.CreateOptions{})
			if err == nil {
				_ = e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Delete(e.Ctx, so.Name, metav1.DeleteOptions{})
				t.Fatalf("accepted an invalid ScaledObject")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}
