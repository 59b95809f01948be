package identity

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// AWSAudience is the audience of the tokens exchanged at STS (what EKS's pod identity webhook projects).
const AWSAudience = "sts.amazonaws.com"

// EKSRoleAnnotation is the service-account annotation naming the IAM role of its pods (IRSA).
const EKSRoleAnnotation = "eks.amazonaws.com/role-arn"

// aws follows KEDA's podIdentity aws: identityOwner workload (and the deprecated aws-eks provider) assumes the
// role the scale target's service account is annotated with, roleArn assumes that role as Tidal, and neither uses
// Tidal's own credential chain. Tidal assumes both roles with AssumeRoleWithWebIdentity and a TokenRequest token
// (of the workload's service account for workload, of Tidal's for roleArn), so the role's trust policy names
// that service account, as for IRSA.
func (p *Provider) aws(ctx context.Context, pi *tidalv1alpha1.AuthPodIdentity, namespace, workloadSA string) (*scalers.PodIdentity, error) {
	owner := deref(pi.IdentityOwner)
	role := deref(pi.RoleArn)
	if pi.Provider == tidalv1alpha1.PodIdentityProviderAWSEKS {
		owner = "workload"
	}
	out := &scalers.PodIdentity{Provider: string(pi.Provider)}
	var tokenNS, tokenSA string
	switch {
	case role != "" && owner == "workload":
		return nil, fmt.Errorf("%s (provider %s): roleArn and identityOwner: workload exclude each other", Field, pi.Provider)
	case owner == "workload":
		sa, err := p.Tokens.Kube.CoreV1().ServiceAccounts(namespace).Get(ctx, workloadSA, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("%s (provider %s, identityOwner workload): service account %s/%s: %w", Field, pi.Provider, namespace, workloadSA, err)
		}
		role = sa.Annotations[EKSRoleAnnotation]
		if role == "" {
			return nil, fmt.Errorf("%s (provider %s, identityOwner workload): service account %s/%s has no %s annotation", Field, pi.Provider, namespace, workloadSA, EKSRoleAnnotation)
		}
		tokenNS, tokenSA = namespace, workloadSA
	case role != "":
		ns, name, err := p.self(pi.Provider, "roleArn")
		if err != nil {
			return nil, err
		}
		tokenNS, tokenSA = ns, name
	default:
		return out, nil // Tidal's own credential chain
	}
	if !strings.HasPrefix(role, "arn:") || strings.Count(role, ":") < 5 {
		return nil, fmt.Errorf("%s (provider %s): want a role ARN (arn:aws:iam::<account>:role/<name>), got %q", Field, pi.Provider, role)
	}
	what := fmt.Sprintf("%s (provider %s, role %s, service account %s/%s)", Field, pi.Provider, role, tokenNS, tokenSA)
	retriever := tokenRetriever{tokens: p.Tokens, namespace: tokenNS, serviceAccount: tokenSA}
	out.AWS = func(region string) aws.CredentialsProvider {
		opts := sts.Options{Region: region, BaseEndpoint: endpoint(p.AWSSTSEndpoint)}
		if p.HTTPClient != nil {
			opts.HTTPClient = p.HTTPClient
		}
		client := sts.New(opts)
		web := stscreds.NewWebIdentityRoleProvider(client, role, retriever, func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = sessionName(namespace)
		})
		return aws.NewCredentialsCache(namedProvider{p: web, what: what})
	}
	return out, nil
}

// tokenRetriever is the web identity token of one service account, from the TokenRequest API.
type tokenRetriever struct {
	tokens                    *Tokens
	namespace, serviceAccount string
}

// GetIdentityToken implements stscreds.IdentityTokenRetriever (which passes no context: the request is bounded
// here).
func (r tokenRetriever) GetIdentityToken() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := r.tokens.Token(ctx, r.namespace, r.serviceAccount, AWSAudience)
	if err != nil {
		return nil, err
	}
	return []byte(tok), nil
}

// namedProvider prefixes a retrieval error with what names the identity, so a failing scaler says which
// spec.podIdentity and role failed.
type namedProvider struct {
	p    aws.CredentialsProvider
	what string
}

func (n namedProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := n.p.Retrieve(ctx)
	if err != nil {
		return c, fmt.Errorf("%s: %w", n.what, err)
	}
	return c, nil
}

// sessionName is the role session name (2-64 characters of [\w+=,.@-]): tidal-<namespace>.
func sessionName(namespace string) string {
	n := "tidal-" + namespace
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

func endpoint(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
