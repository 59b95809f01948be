// Package identity obtains the credentials a TriggerAuthentication's spec.boundServiceAccountToken and
// spec.podIdentity stand for: Kubernetes service-account tokens from the TokenRequest API (Tokens), and from
// them the cloud providers' SDK credentials (AWS web identity, Azure workload identity federation, Google
// workload identity federation). Tokens and credentials are secrets: they are never logged and never appear in
// an error.
package identity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultTokenLifetime is the expirationSeconds Tokens asks for when Lifetime is zero (the apiserver may grant
// another; the cache follows what it grants).
const DefaultTokenLifetime = time.Hour

// RefreshFraction is the part of a token's granted lifetime after which Tokens requests a new one.
const RefreshFraction = 0.8

// Tokens requests service-account tokens with the TokenRequest API (serviceaccounts/token create) and caches
// each one per service account and audience until RefreshFraction of its granted lifetime has passed. Safe for
// concurrent use; the zero value needs Kube.
type Tokens struct {
	Kube kubernetes.Interface
	// Now is the clock the cache reads; nil means time.Now.
	Now func() time.Time
	// Lifetime is the expirationSeconds requested; zero means DefaultTokenLifetime. The apiserver raises a value
	// under ten minutes to ten minutes.
	Lifetime time.Duration
	// Logger gets one debug line per request, naming the service account and the expiry, never the token.
	Logger *zap.Logger

	mu    sync.Mutex
	cache map[tokenKey]cachedToken
}

type tokenKey struct{ namespace, serviceAccount, audience string }

type cachedToken struct {
	token     string
	refreshAt time.Time
	expiresAt time.Time
}

// Token is a token of serviceAccount in namespace for audience ("" is the apiserver's own audience, what
// KEDA's boundServiceAccountToken asks for), from the cache while it is fresh. An error names the service
// account, never a token.
func (t *Tokens) Token(ctx context.Context, namespace, serviceAccount, audience string) (string, error) {
	if t == nil || t.Kube == nil {
		return "", errors.New("no Kubernetes client to request service-account tokens with")
	}
	if serviceAccount == "" {
		return "", errors.New("service account name is empty")
	}
	k := tokenKey{namespace, serviceAccount, audience}
	now := t.now()
	t.mu.Lock()
	c, ok := t.cache[k]
	t.mu.Unlock()
	if ok && now.Before(c.refreshAt) {
		return c.token, nil
	}
	lifetime := t.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultTokenLifetime
	}
	secs := int64(lifetime / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}
	if audience != "" {
		req.Spec.Audiences = []string{audience}
	}
	got, err := t.Kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token request for service account %s/%s: %w", namespace, serviceAccount, err)
	}
	if got.Status.Token == "" {
		return "", fmt.Errorf("token request for service account %s/%s: the apiserver returned no token", namespace, serviceAccount)
	}
	expires := got.Status.ExpirationTimestamp.Time
	if expires.IsZero() || !expires.After(now) {
		expires = now.Add(lifetime)
	}
	c = cachedToken{token: got.Status.Token, expiresAt: expires,
		refreshAt: now.Add(time.Duration(float64(expires.Sub(now)) * RefreshFraction))}
	t.mu.Lock()
	if t.cache == nil {
		t.cache = map[tokenKey]cachedToken{}
	}
	t.cache[k] = c
	t.mu.Unlock()
	if t.Logger != nil {
		t.Logger.Debug("requested a service-account token",
			zap.String("serviceAccount", namespace+"/"+serviceAccount), zap.String("audience", audience),
			zap.Time("expires", expires), zap.Time("refreshAt", c.refreshAt))
	}
	return c.token, nil
}

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}
