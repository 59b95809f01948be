package webhook

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ConfigurationName is the ValidatingWebhookConfiguration the operator keeps up to date.
const ConfigurationName = "tidal-validating-webhook"

// Configuration renders the webhook configuration for a client config (URL or Service) and CA bundle.
// A nil namespaceSelector matches every namespace.
func Configuration(client admissionregistrationv1.WebhookClientConfig, caBundle []byte, namespaceSelector *metav1.LabelSelector) *admissionregistrationv1.ValidatingWebhookConfiguration {
	client.CABundle = caBundle
	if client.Service != nil && client.Service.Path == nil {
		p := Path
		client.Service.Path = &p
	}
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(10)
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName, Labels: map[string]string{"app.kubernetes.io/managed-by": "tidal-operator"}},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "vscaledobject.tidal.dev",
			ClientConfig: client,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"tidal.dev"}, APIVersions: []string{"v1alpha1"},
					Resources: []string{"scaledobjects", "scaledjobs", "triggerauthentications", "clustertriggerauthentications"}},
			}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       namespaceSelector,
		}},
	}
}

// EnsureConfiguration creates or updates the ValidatingWebhookConfiguration.
func EnsureConfiguration(ctx context.Context, kube kubernetes.Interface, want *admissionregistrationv1.ValidatingWebhookConfiguration) error {
	api := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create ValidatingWebhookConfiguration %s: %w", want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get ValidatingWebhookConfiguration %s: %w", want.Name, err)
	}
	if apiequality.Semantic.DeepEqual(got.Webhooks, want.Webhooks) {
		return nil
	}
	upd := got.DeepCopy()
	upd.Webhooks = want.Webhooks
	if _, err := api.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update ValidatingWebhookConfiguration %s: %w", want.Name, err)
	}
	return nil
}
