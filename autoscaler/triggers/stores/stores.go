// Package stores reads trigger parameters from external secret stores (HashiCorp Vault / OpenBao, and the cloud
// secret managers): the hashiCorpVault, azureKeyVault, gcpSecretManager and awsSecretManager sections of a
// TriggerAuthentication or ClusterTriggerAuthentication.
//
// Each section is a Store; FromSpec lists the ones an authentication sets, in precedence order (a later store
// wins for a parameter set twice). Cache keeps what a store returned for a while (--secret-store-ttl) so
// resolving the triggers of many objects does not ask the store each time, and keeps serving the last good
// values, reporting the failure as a *StaleError, while the store cannot be read.
//
// Values read are secrets: they are never logged, put in an event, a status or an error. Errors name the field,
// the path and the store's status, never a value.
package stores

import (
	"context"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// Store reads one external secret store section of an authentication.
type Store interface {
	// Field is the section's path in error messages, e.g. spec.hashiCorpVault.
	Field() string
	// Read returns the parameters the section maps, parameter → value. An error names the field (relative to
	// Field, e.g. secrets[1]) and never a value.
	Read(ctx context.Context, d Deps) (map[string]string, error)
}

// Deps is what a Store reads with.
type Deps struct {
	// Kube reads the Secrets an authentication names (credentials) and requests service-account tokens.
	Kube kubernetes.Interface
	// Namespace is where the authentication's Secrets and service accounts are: the TriggerAuthentication's
	// namespace, or the operator's for a ClusterTriggerAuthentication.
	Namespace string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// HTTPClient is the client stores speaking HTTP use (e.g. with a test CA); http.DefaultClient's transport
	// settings when nil.
	HTTPClient *http.Client
	// Tokens requests service-account tokens (the TokenRequest API through Kube when nil).
	Tokens TokenRequester
	// PodIdentity turns a section's podIdentity into cloud credentials (identity.Provider.Resolve, as Tidal's
	// own service account: the stores' cache is per authentication, not per workload); nil refuses podIdentity.
	PodIdentity func(ctx context.Context, pi *tidalv1alpha1.AuthPodIdentity) (*scalers.PodIdentity, error)
	// GCPProject is the project gcpSecretManager reads in with podIdentity gcp (identity.GCPFederation.Project).
	GCPProject string
}

// Clock returns d.Now or time.Now.
func (d Deps) Clock() func() time.Time {
	if d.Now != nil {
		return d.Now
	}
	return time.Now
}

// TokenRequester returns a token of a service account, for the given audiences (none: the API server's).
type TokenRequester interface {
	ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, ttl time.Duration) (string, error)
}

// TokenRequester returns d.Tokens, or one using the TokenRequest API through d.Kube.
func (d Deps) TokenRequester() TokenRequester {
	if d.Tokens != nil {
		return d.Tokens
	}
	return KubeTokens{Kube: d.Kube}
}

// KubeTokens requests tokens with the TokenRequest API (create serviceaccounts/token).
type KubeTokens struct{ Kube kubernetes.Interface }

// ServiceAccountToken implements TokenRequester.
func (k KubeTokens) ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, ttl time.Duration) (string, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences}}
	if ttl > 0 {
		secs := int64(ttl / time.Second)
		req.Spec.ExpirationSeconds = &secs
	}
	tr, err := k.Kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// FromSpec returns the stores an authentication sets, in precedence order: hashiCorpVault, azureKeyVault,
// gcpSecretManager, awsSecretManager (KEDA's order). A section without a Store implementation yet is refused
// earlier (tidalv1alpha1.NotSupportedYet).
func FromSpec(spec *tidalv1alpha1.TriggerAuthenticationSpec) []Store {
	var out []Store
	if spec.HashiCorpVault != nil {
		out = append(out, &Vault{Spec: spec.HashiCorpVault})
	}
	if spec.AzureKeyVault != nil {
		out = append(out, &AzureKeyVault{Spec: spec.AzureKeyVault})
	}
	if spec.GCPSecretManager != nil {
		out = append(out, &GCPSecretManager{Spec: spec.GCPSecretManager})
	}
	if spec.AwsSecretManager != nil {
		out = append(out, &AWSSecretManager{Spec: spec.AwsSecretManager})
	}
	return out
}
