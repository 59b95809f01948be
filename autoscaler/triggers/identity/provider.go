package identity

import (
	"context"
	"fmt"
	"net/http"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// Provider turns a TriggerAuthentication's spec.podIdentity into SDK credentials. Each provider exchanges a
// service-account token from the TokenRequest API (with the provider's audience) at the provider's token
// service: the token of the workload's service account for AWS identityOwner workload, else the token of the
// service account this deployable runs as (Self), KEDA's identityOwner keda.
type Provider struct {
	// Tokens requests and caches the service-account tokens.
	Tokens *Tokens
	// SelfNamespace and SelfServiceAccount name the service account the deployable runs as (the chart passes
	// them); empty refuses the providers that need its token.
	SelfNamespace, SelfServiceAccount string
	// HTTPClient calls the identity endpoints; nil means each SDK's default.
	HTTPClient *http.Client

	// AWSSTSEndpoint replaces the regional STS endpoint (a VPC endpoint; tests); empty means the SDK's.
	AWSSTSEndpoint string

	// AzureClientID, AzureTenantID and AzureAuthorityHost are the azure-workload defaults when the
	// authentication gives no identityId, identityTenantId or identityAuthorityHost (the chart sets them from
	// the operator's AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_AUTHORITY_HOST).
	AzureClientID, AzureTenantID, AzureAuthorityHost string

	// GCP is the Google workload identity federation setup for provider gcp.
	GCP GCPFederation
}

// Field is the field path errors about pod identity start with.
const Field = "spec.podIdentity"

// Resolve builds the credentials of pi for a trigger in namespace whose scale target runs as workloadSA ("" is
// the namespace's default service account). A nil pi, or provider none, gives nil. Errors name spec.podIdentity
// and the provider, never a token.
func (p *Provider) Resolve(ctx context.Context, pi *tidalv1alpha1.AuthPodIdentity, namespace, workloadSA string) (*scalers.PodIdentity, error) {
	if pi == nil || pi.Provider == "" || pi.Provider == tidalv1alpha1.PodIdentityProviderNone {
		return nil, nil
	}
	if p == nil || p.Tokens == nil {
		return nil, fmt.Errorf("%s (provider %s): no token source configured", Field, pi.Provider)
	}
	if workloadSA == "" {
		workloadSA = "default"
	}
	switch pi.Provider {
	case tidalv1alpha1.PodIdentityProviderAWS, tidalv1alpha1.PodIdentityProviderAWSEKS:
		return p.aws(ctx, pi, namespace, workloadSA)
	case tidalv1alpha1.PodIdentityProviderAzureWorkload:
		return p.azure(pi)
	case tidalv1alpha1.PodIdentityProviderGCP:
		return p.gcp(pi)
	}
	return nil, fmt.Errorf("%s.provider: want none, aws, aws-eks, azure-workload or gcp, got %q", Field, pi.Provider)
}

// self is the deployable's own service account, or an error naming what needs it.
func (p *Provider) self(provider tidalv1alpha1.PodIdentityProvider, what string) (string, string, error) {
	if p.SelfNamespace == "" || p.SelfServiceAccount == "" {
		return "", "", fmt.Errorf("%s (provider %s): %s needs the service account Tidal runs as, and this deployable was not told it (%s and %s)", Field, provider, what, EnvNamespace, EnvServiceAccount)
	}
	return p.SelfNamespace, p.SelfServiceAccount, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
