package identity

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google/externalaccount"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// GCPFederation is the Google workload identity federation Tidal's service account is a member of: podIdentity
// gcp exchanges a TokenRequest token of that service account at Google's Security Token Service and, when
// ServiceAccount is set, impersonates that Google service account with the federated token.
type GCPFederation struct {
	// Audience is the workload identity pool provider:
	// //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>.
	Audience string
	// ServiceAccount is the e-mail of the Google service account to impersonate; empty uses the federated
	// token itself.
	ServiceAccount string
	// TokenURL replaces https://sts.googleapis.com/v1/token (tests, private endpoints).
	TokenURL string
	// ImpersonationURL replaces the IAM credentials base URL https://iamcredentials.googleapis.com (tests).
	ImpersonationURL string
	// Project is the Google Cloud project of the secret stores read with podIdentity gcp (gcpSecretManager
	// names no project; KEDA takes CLOUDSDK_CORE_PROJECT too).
	Project string
}

// GCPScope is the scope the federated credentials ask for.
const GCPScope = "https://www.googleapis.com/auth/cloud-platform"

// tokenAudience is the audience of the Kubernetes token: the provider's default allowed audience,
// https://iam.googleapis.com/projects/....
func (g GCPFederation) tokenAudience() string {
	if strings.HasPrefix(g.Audience, "//") {
		return "https:" + g.Audience
	}
	return g.Audience
}

func (p *Provider) gcp(pi *tidalv1alpha1.AuthPodIdentity) (*scalers.PodIdentity, error) {
	ns, sa, err := p.self(pi.Provider, "gcp")
	if err != nil {
		return nil, err
	}
	g := p.GCP
	if !strings.HasPrefix(g.Audience, "//iam.googleapis.com/") {
		return nil, fmt.Errorf("%s (provider %s): Tidal was given no workload identity pool provider (%s=//iam.googleapis.com/projects/.../providers/...)", Field, pi.Provider, EnvGCPProvider)
	}
	cfg := externalaccount.Config{
		Audience:             g.Audience,
		SubjectTokenType:     "urn:ietf:params:oauth:token-type:jwt",
		TokenURL:             g.TokenURL,
		Scopes:               []string{GCPScope},
		SubjectTokenSupplier: subjectToken{tokens: p.Tokens, namespace: ns, serviceAccount: sa, audience: g.tokenAudience()},
	}
	if g.ServiceAccount != "" {
		base := g.ImpersonationURL
		if base == "" {
			base = "https://iamcredentials.googleapis.com"
		}
		cfg.ServiceAccountImpersonationURL = strings.TrimSuffix(base, "/") + "/v1/projects/-/serviceAccounts/" + g.ServiceAccount + ":generateAccessToken"
	}
	ctx := context.Background()
	if p.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, p.HTTPClient)
	}
	ts, err := externalaccount.NewTokenSource(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s (provider %s): %w", Field, pi.Provider, err)
	}
	what := fmt.Sprintf("%s (provider %s, service account %s/%s)", Field, pi.Provider, ns, sa)
	return &scalers.PodIdentity{Provider: string(pi.Provider), GCP: oauth2.ReuseTokenSource(nil, namedTokenSource{ts: ts, what: what})}, nil
}

// subjectToken supplies the Kubernetes token exchanged at Google's STS.
type subjectToken struct {
	tokens                              *Tokens
	namespace, serviceAccount, audience string
}

func (s subjectToken) SubjectToken(ctx context.Context, _ externalaccount.SupplierOptions) (string, error) {
	return s.tokens.Token(ctx, s.namespace, s.serviceAccount, s.audience)
}

type namedTokenSource struct {
	ts   oauth2.TokenSource
	what string
}

func (n namedTokenSource) Token() (*oauth2.Token, error) {
	t, err := n.ts.Token()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.what, err)
	}
	return t, nil
}
