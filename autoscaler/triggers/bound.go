package triggers

import (
	"context"
	"fmt"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
)

// IdentityProvider is r.Identity, made on first use when the deployable set none. External secret stores whose
// authentication says podIdentity get their credentials from it: IdentityProvider().Resolve(ctx, podIdentity,
// namespace, workloadServiceAccount) returns the AWS credentials provider, the Azure token credential or the
// Google token source (scalers.PodIdentity), and IdentityProvider().Tokens requests service-account tokens.
func (r *Resolver) IdentityProvider() *identity.Provider {
	r.identityMu.Lock()
	defer r.identityMu.Unlock()
	if r.Identity == nil {
		r.Identity = &identity.Provider{Tokens: &identity.Tokens{Kube: r.Kube}}
	}
	return r.Identity
}

// boundServiceAccountTokens puts a token of each listed service account (in namespace: the
// TriggerAuthentication's, or the operator's for a ClusterTriggerAuthentication) into its parameter, as KEDA's
// spec.boundServiceAccountToken does. Tokens come from the TokenRequest API with the apiserver's own audience and
// are cached until most of their lifetime has passed (identity.Tokens). Errors name the entry, never a token.
func (r *Resolver) boundServiceAccountTokens(ctx context.Context, ref *tidalv1alpha1.AuthenticationRef, namespace string,
	list []tidalv1alpha1.BoundServiceAccountToken, params map[string]string) error {
	if len(list) == 0 {
		return nil
	}
	tokens := r.IdentityProvider().Tokens
	for i, b := range list {
		switch {
		case b.Parameter == "":
			return fmt.Errorf("%s %q: spec.boundServiceAccountToken[%d].parameter: required", ref.GetKind(), ref.Name, i)
		case b.ServiceAccountName == "":
			return fmt.Errorf("%s %q: spec.boundServiceAccountToken[%d].serviceAccountName: required", ref.GetKind(), ref.Name, i)
		}
		tok, err := tokens.Token(ctx, namespace, b.ServiceAccountName, "")
		if err != nil {
			return fmt.Errorf("%s %q: spec.boundServiceAccountToken[%d]: %w", ref.GetKind(), ref.Name, i, err)
		}
		params[b.Parameter] = tok
	}
	return nil
}
