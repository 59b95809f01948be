package triggers_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/internal/testenv"
)

// A trigger whose TriggerAuthentication sets podIdentity gets its credentials in TriggerConfig.PodIdentity;
// identityOwner workload reads the role from the scale target's pod service account, and an account without
// one is an error naming the trigger, the authentication and spec.podIdentity.
func TestConfigsPodIdentity(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	kube := e.Cluster.Client
	for name, ann := range map[string]map[string]string{"worker": {identity.EKSRoleAnnotation: "arn:aws:iam::000000000000:role/worker"}, "plain": nil} {
		if _, err := kube.CoreV1().ServiceAccounts(e.NS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	workload := "workload"
	ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "irsa", Namespace: e.NS},
		Spec: tidalv1alpha1.TriggerAuthenticationSpec{PodIdentity: &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, IdentityOwner: &workload}}}
	if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := &triggers.Resolver{Kube: kube, Tidal: e.Tidal}
	obj := func(sa string) triggers.Object {
		return triggers.Object{Kind: "ScaledObject", Namespace: e.NS, Name: "orders",
			Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "aws-sqs-queue", AuthenticationRef: &tidalv1alpha1.AuthenticationRef{Name: "irsa"}}},
			Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app"}}}}}
	}
	cfgs, _, _, err := triggers.Configs(ctx, r, obj("worker"))
	if err != nil {
		t.Fatal(err)
	}
	if pi := cfgs[0].PodIdentity; pi == nil || pi.Provider != "aws" || pi.AWS == nil {
		t.Fatalf("PodIdentity %+v, want aws credentials for the worker's role", pi)
	}
	_, _, _, err = triggers.Configs(ctx, r, obj("plain"))
	if err == nil || !strings.Contains(err.Error(), `spec.triggers[0]: TriggerAuthentication "irsa": spec.podIdentity`) ||
		!strings.Contains(err.Error(), "eks.amazonaws.com/role-arn") {
		t.Fatalf("error %v, want one naming the trigger, the authentication, spec.podIdentity and the annotation", err)
	}
}
