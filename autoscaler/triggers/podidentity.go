package triggers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// PodIdentity resolves the spec.podIdentity of a trigger's authenticationRef into SDK credentials
// (identity.Provider), nil when the authentication sets none. The scale target's pod template names the
// workload's service account (identityOwner workload). Errors name the authentication and spec.podIdentity.
func (r *Resolver) PodIdentity(ctx context.Context, namespace string, ref *tidalv1alpha1.AuthenticationRef, tmpl *corev1.PodTemplateSpec) (*scalers.PodIdentity, error) {
	pi, err := r.PodIdentitySpec(ctx, namespace, ref)
	if err != nil {
		return nil, err
	}
	if pi == nil || pi.Provider == tidalv1alpha1.PodIdentityProviderNone {
		return nil, nil
	}
	sa := ""
	if tmpl != nil {
		sa = tmpl.Spec.ServiceAccountName
	}
	out, err := r.IdentityProvider().Resolve(ctx, pi, namespace, sa)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", ref.GetKind(), ref.Name, err)
	}
	return out, nil
}

// PodIdentitySpec is the spec.podIdentity of a trigger's authenticationRef (nil when it has none), without
// obtaining credentials: the webhook's offline checks use its provider.
func (r *Resolver) PodIdentitySpec(ctx context.Context, namespace string, ref *tidalv1alpha1.AuthenticationRef) (*tidalv1alpha1.AuthPodIdentity, error) {
	if ref == nil {
		return nil, nil
	}
	var pi *tidalv1alpha1.AuthPodIdentity
	switch ref.GetKind() {
	case tidalv1alpha1.KindTriggerAuthentication:
		ta, err := r.Tidal.TidalV1alpha1().TriggerAuthentications(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("authenticationRef: TriggerAuthentication %q: %w", ref.Name, err)
		}
		pi = ta.Spec.PodIdentity
	case tidalv1alpha1.KindClusterTriggerAuthentication:
		cta, err := r.Tidal.TidalV1alpha1().ClusterTriggerAuthentications().Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("authenticationRef: ClusterTriggerAuthentication %q: %w", ref.Name, err)
		}
		pi = cta.Spec.PodIdentity
	default:
		return nil, fmt.Errorf("authenticationRef.kind: want TriggerAuthentication or ClusterTriggerAuthentication, got %q", ref.Kind)
	}
	return pi, nil
}
