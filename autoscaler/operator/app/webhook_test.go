package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
		{"unknown placement policy", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.Placement = &tidalv1alpha1.Placement{Policy: "teleport"}
		}, []string{"spec.placement.policy", "teleport"}},
		{"placement auto without a target", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.Placement = &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementAuto}
		}, []string{"placement.maxPendingSeconds"}},
		{"placement target zero", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.Placement = &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementAuto, MaxPendingSeconds: ptr.To[int32](0)}
		}, []string{"spec.placement.maxPendingSeconds"}},
		{"placement target above an hour", func(so *tidalv1alpha1.ScaledObject) {
			so.Spec.Placement = &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementAuto, MaxPendingSeconds: ptr.To[int32](3601)}
		}, []string{"spec.placement.maxPendingSeconds"}},
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
	// A ScaledJob carries its placement annotations itself, so bad values are refused here, naming the annotation.
	t.Run("ScaledJob with a bad placement annotation", func(t *testing.T) {
		sj := validObjects(e.NS, "bad-placement", tidalv1alpha1.KindScaledJob)[0].(*tidalv1alpha1.ScaledJob)
		sj.Annotations = map[string]string{tidalv1alpha1.AnnotationPlacement: "teleport"}
		_, err := e.Tidal.TidalV1alpha1().ScaledJobs(e.NS).Create(e.Ctx, sj, metav1.CreateOptions{})
		if err == nil {
			_ = e.Tidal.TidalV1alpha1().ScaledJobs(e.NS).Delete(e.Ctx, sj.Name, metav1.DeleteOptions{})
			t.Fatal("accepted a ScaledJob with tidal.dev/placement: teleport")
		}
		for _, w := range []string{"metadata.annotations[tidal.dev/placement]", "teleport"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
	})
}

// startWebhook runs the operator with its webhook for this test's namespace and waits until it answers.
func (e *env) startWebhook(t *testing.T) {
	e.startOperator(app.Options{Webhook: &app.WebhookOptions{
		Addr: "127.0.0.1:0", Hosts: []string{"127.0.0.1"},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.NS}},
	}})
	t.Cleanup(func() {
		_ = e.Cluster.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(e.Ctx, webhook.ConfigurationName, metav1.DeleteOptions{})
	})
	// A namespaced TriggerAuthentication with filePath is refused only once this operator's webhook serves.
	e.Eventually("webhook registered and serving", 60*time.Second, func() (bool, string) {
		ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "probe"},
			Spec: tidalv1alpha1.TriggerAuthenticationSpec{FilePath: "probe.json"}}
		_, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(e.Ctx, ta, metav1.CreateOptions{})
		if err == nil {
			_ = e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Delete(e.Ctx, "probe", metav1.DeleteOptions{})
			return false, "probe admitted"
		}
		return strings.Contains(err.Error(), "only a ClusterTriggerAuthentication"), err.Error()
	})
}

// validObjects returns valid objects of an UnsupportedField kind (both authentication kinds for
// TriggerAuthentication), named name.
func validObjects(ns, name, kind string) []runtime.Object {
	switch kind {
	case tidalv1alpha1.KindScaledObject:
		return []runtime.Object{testenv.RedisScaledObject(name, name, "127.0.0.1:6379", "l")}
	case tidalv1alpha1.KindScaledJob:
		return []runtime.Object{testenv.RedisScaledJob(name, "127.0.0.1:6379", "l", 2)}
	case tidalv1alpha1.KindTriggerAuthentication:
		return []runtime.Object{
			&tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name}},
			&tidalv1alpha1.ClusterTriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name + "-" + ns}},
		}
	}
	return nil
}

// create sends obj to the API server and removes it again if it was admitted.
func (e *env) create(obj runtime.Object) error {
	api := e.Tidal.TidalV1alpha1()
	var err error
	switch o := obj.(type) {
	case *tidalv1alpha1.ScaledObject:
		if _, err = api.ScaledObjects(e.NS).Create(e.Ctx, o, metav1.CreateOptions{}); err == nil {
			_ = api.ScaledObjects(e.NS).Delete(e.Ctx, o.Name, metav1.DeleteOptions{})
		}
	case *tidalv1alpha1.ScaledJob:
		if _, err = api.ScaledJobs(e.NS).Create(e.Ctx, o, metav1.CreateOptions{}); err == nil {
			_ = api.ScaledJobs(e.NS).Delete(e.Ctx, o.Name, metav1.DeleteOptions{})
		}
	case *tidalv1alpha1.TriggerAuthentication:
		if _, err = api.TriggerAuthentications(e.NS).Create(e.Ctx, o, metav1.CreateOptions{}); err == nil {
			_ = api.TriggerAuthentications(e.NS).Delete(e.Ctx, o.Name, metav1.DeleteOptions{})
		}
	case *tidalv1alpha1.ClusterTriggerAuthentication:
		if _, err = api.ClusterTriggerAuthentications().Create(e.Ctx, o, metav1.CreateOptions{}); err == nil {
			_ = api.ClusterTriggerAuthentications().Delete(e.Ctx, o.Name, metav1.DeleteOptions{})
		}
	default:
		return fmt.Errorf("unexpected %T", obj)
	}
	return err
}

// Every field Tidal accepts but does not act on (tidalv1alpha1.NotSupportedYet) is refused by the real webhook
// with a message naming the field; the same objects without it are admitted. An entry added to the table is
// tested here without further work.
func TestUnsupportedFieldsRefused(t *testing.T) {
	e := setup(t)
	e.startWebhook(t)
	table := tidalv1alpha1.NotSupportedYet()
	if len(table) == 0 {
		t.Fatal("empty NotSupportedYet table")
	}
	for i, u := range table {
		t.Run(u.Kind+" "+u.Path, func(t *testing.T) {
			objs := validObjects(e.NS, fmt.Sprintf("u%d", i), u.Kind)
			if len(objs) == 0 {
				t.Fatalf("no test object for kind %q: extend validObjects", u.Kind)
			}
			for _, obj := range objs {
				if err := e.create(obj.DeepCopyObject()); err != nil {
					t.Fatalf("%T without %s refused: %v", obj, u.Path, err)
				}
				u.Example(obj)
				err := e.create(obj)
				if err == nil {
					t.Fatalf("%T with %s admitted", obj, u.Path)
				}
				if !strings.Contains(err.Error(), u.Path+": ") || !strings.Contains(err.Error(), "not supported yet") {
					t.Errorf("%T: error %q does not name %s as not supported yet", obj, err, u.Path)
				}
			}
		})
	}
}

// An object that sets a field Tidal does not support yet and got in before the webhook did (no webhook here) is
// not acted on: trigger resolution returns the webhook's error, and the object reports it on its Ready
// condition. One table entry of each kind is tried.
func TestUnsupportedFieldsRefusedAtRuntime(t *testing.T) {
	e := setup(t)
	firstOf := map[string]tidalv1alpha1.UnsupportedField{}
	for _, u := range tidalv1alpha1.NotSupportedYet() {
		if _, ok := firstOf[u.Kind]; !ok {
			firstOf[u.Kind] = u
		}
	}
	api := e.Tidal.TidalV1alpha1()
	type held struct{ kind, name, path string }
	var want []held
	if u, ok := firstOf[tidalv1alpha1.KindTriggerAuthentication]; ok {
		ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "held"}}
		u.Example(ta)
		if _, err := api.TriggerAuthentications(e.NS).Create(e.Ctx, ta, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.Deployment("auth-target", 1)
		so := testenv.RedisScaledObject("auth", "auth-target", "127.0.0.1:6379", "l")
		so.Spec.Triggers[0].AuthenticationRef = &tidalv1alpha1.AuthenticationRef{Name: "held"}
		e.ScaledObject(so)
		want = append(want, held{tidalv1alpha1.KindScaledObject, "auth", u.Path})
	}
	if u, ok := firstOf[tidalv1alpha1.KindScaledObject]; ok {
		e.Deployment("so-target", 1)
		so := testenv.RedisScaledObject("so", "so-target", "127.0.0.1:6379", "l")
		u.Example(so)
		e.ScaledObject(so)
		want = append(want, held{tidalv1alpha1.KindScaledObject, "so", u.Path})
	}
	if u, ok := firstOf[tidalv1alpha1.KindScaledJob]; ok {
		sj := validObjects(e.NS, "sj", tidalv1alpha1.KindScaledJob)[0].(*tidalv1alpha1.ScaledJob)
		u.Example(sj)
		if _, err := api.ScaledJobs(e.NS).Create(e.Ctx, sj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, held{tidalv1alpha1.KindScaledJob, "sj", u.Path})
	}
	if len(want) == 0 {
		t.Skip("NotSupportedYet is empty")
	}
	e.startOperator(app.Options{})
	for _, w := range want {
		e.Eventually(fmt.Sprintf("%s %s not Ready naming %s", w.kind, w.name, w.path), 60*time.Second, func() (bool, string) {
			var conds []metav1.Condition
			if w.kind == tidalv1alpha1.KindScaledJob {
				sj, err := api.ScaledJobs(e.NS).Get(e.Ctx, w.name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				conds = sj.Status.Conditions
			} else {
				so, err := api.ScaledObjects(e.NS).Get(e.Ctx, w.name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				conds = so.Status.Conditions
			}
			c := apimeta.FindStatusCondition(conds, tidalv1alpha1.ConditionReady)
			if c == nil {
				return false, "no Ready condition"
			}
			return c.Status == metav1.ConditionFalse && strings.Contains(c.Message, w.path+": ") &&
				strings.Contains(c.Message, "not supported yet"), fmt.Sprintf("Ready=%s: %s", c.Status, c.Message)
		})
	}
}
