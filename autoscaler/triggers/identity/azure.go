package identity

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// AzureAudience is the audience of tokens Microsoft Entra ID accepts as federated client assertions.
const AzureAudience = "api://AzureADTokenExchange"

// azure follows KEDA's podIdentity azure-workload: the identity (identityId, the application's client id, in
// identityTenantId at identityAuthorityHost) federates Tidal's service account; Tidal presents a TokenRequest
// token of that service account as the client assertion.
func (p *Provider) azure(pi *tidalv1alpha1.AuthPodIdentity) (*scalers.PodIdentity, error) {
	ns, sa, err := p.self(pi.Provider, "azure-workload")
	if err != nil {
		return nil, err
	}
	clientID, tenant, authority := deref(pi.IdentityID), deref(pi.IdentityTenantID), deref(pi.IdentityAuthorityHost)
	if clientID == "" {
		clientID = p.AzureClientID
	}
	if tenant == "" {
		tenant = p.AzureTenantID
	}
	if authority == "" {
		authority = p.AzureAuthorityHost
	}
	switch {
	case clientID == "":
		return nil, fmt.Errorf("%s.identityId (provider %s): required (Tidal was given no default client id)", Field, pi.Provider)
	case tenant == "":
		return nil, fmt.Errorf("%s.identityTenantId (provider %s): required (Tidal was given no default tenant)", Field, pi.Provider)
	}
	opts := &azidentity.ClientAssertionCredentialOptions{}
	if authority != "" {
		u, err := url.Parse(authority)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("%s.identityAuthorityHost (provider %s): want an https URL, got %q", Field, pi.Provider, authority)
		}
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: authority}
		// Instance discovery asks Microsoft's public endpoint about the authority: a sovereign or private
		// cloud's authority is trusted as configured, as azidentity advises for them.
		opts.DisableInstanceDiscovery = !publicAuthority[strings.TrimSuffix(u.Host, ".")]
	}
	if p.HTTPClient != nil {
		opts.Transport = p.HTTPClient
	}
	assertion := func(ctx context.Context) (string, error) { return p.Tokens.Token(ctx, ns, sa, AzureAudience) }
	cred, err := azidentity.NewClientAssertionCredential(tenant, clientID, assertion, opts)
	if err != nil {
		return nil, fmt.Errorf("%s (provider %s): %w", Field, pi.Provider, err)
	}
	what := fmt.Sprintf("%s (provider %s, identityId %s, tenant %s, service account %s/%s)", Field, pi.Provider, clientID, tenant, ns, sa)
	return &scalers.PodIdentity{Provider: string(pi.Provider), Azure: namedCredential{cred: cred, what: what}}, nil
}

// publicAuthority are Microsoft Entra ID's authority hosts that instance discovery knows.
var publicAuthority = map[string]bool{
	"login.microsoftonline.com": true, "login.microsoftonline.us": true, "login.chinacloudapi.cn": true,
	"login.partner.microsoftonline.cn": true, "login.microsoftonline.de": true,
}

// namedCredential prefixes a token error with what names the identity.
type namedCredential struct {
	cred azcore.TokenCredential
	what string
}

func (n namedCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	t, err := n.cred.GetToken(ctx, o)
	if err != nil {
		return t, fmt.Errorf("%s: %w", n.what, err)
	}
	return t, nil
}
