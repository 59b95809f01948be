package identity_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers/azure"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// fakeEntra is Microsoft Entra ID's v2.0 endpoints for one tenant as MSAL (under azidentity) uses them: the
// OpenID configuration and /{tenant}/oauth2/v2.0/token with the client_credentials grant and a jwt-bearer
// client_assertion. federated maps a client id to the Kubernetes user whose tokens (checked with the dev
// cluster's TokenReview for api://AzureADTokenExchange) it accepts. It also serves a storage queue's metadata
// (GET /<queue>?comp=metadata) to the access tokens it issued.
type fakeEntra struct {
	srv       *httptest.Server
	tenant    string
	mu        sync.Mutex
	issued    map[string]string // access token → client id
	presented []string          // every client assertion
}

func newFakeEntra(t *testing.T, e *testenv.Env, tenant string, federated map[string]string) *fakeEntra {
	f := &fakeEntra{tenant: tenant, issued: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+tenant+"/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := f.srv.URL + "/" + tenant
		writeJSON(w, 200, map[string]any{
			"token_endpoint": base + "/oauth2/v2.0/token", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer": base + "/v2.0", "token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt"},
		})
	})
	mux.HandleFunc("POST /"+tenant+"/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": err.Error()})
			return
		}
		f2 := r.PostForm
		if f2.Get("grant_type") != "client_credentials" || f2.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type", "error_description": "AADSTS70003"})
			return
		}
		assertion, client := f2.Get("client_assertion"), f2.Get("client_id")
		f.mu.Lock()
		f.presented = append(f.presented, assertion)
		f.mu.Unlock()
		user, err := review(e.Cluster.Client, assertion, identity.AzureAudience)
		if err != nil || user == "" || federated[client] != user {
			writeJSON(w, 400, map[string]any{"error": "invalid_client", "error_codes": []int{700213},
				"error_description": "AADSTS700213: No matching federated identity record found for presented assertion subject."})
			return
		}
		tok := "eyJ0eXAi.fake-access." + client + "." + strings.Repeat("x", 8)
		f.mu.Lock()
		f.issued[tok] = client
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	})
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		_, ok := f.issued[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		w.Header().Set("x-ms-version", r.Header.Get("x-ms-version"))
		if !ok || r.URL.Query().Get("comp") != "metadata" {
			w.Header().Set("x-ms-error-code", "AuthenticationFailed")
			w.WriteHeader(403)
			return
		}
		w.Header().Set("x-ms-approximate-messages-count", "7")
		w.WriteHeader(200)
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// podIdentity azure-workload: Tidal presents a TokenRequest token of its own service account (audience
// api://AzureADTokenExchange) as the client assertion of identityId in identityTenantId at identityAuthorityHost;
// Entra (a fake speaking the v2.0 token endpoint, azidentity as client) checks it with TokenReview against the
// identity's federated subject, and a storage queue client reads with the access token issued. An identity that
// does not federate the account fails naming spec.podIdentity and the provider, without the token in the error
// or the logs. Another provider's identity on an Azure trigger is refused naming spec.podIdentity.
func TestAzureWorkloadIdentity(t *testing.T) {
	e := testenv.New(t)
	kube := e.Cluster.Client
	tidalUser := serviceAccount(t, kube, e.NS, "tidal", nil)
	const tenant, client, stranger = "72f988bf-0000-0000-0000-000000000001", "0c0ffee0-0000-0000-0000-000000000001", "0c0ffee0-0000-0000-0000-00000000dead"
	f := newFakeEntra(t, e, tenant, map[string]string{client: tidalUser, stranger: "system:serviceaccount:elsewhere:someone"})
	p, logs := provider(kube, e.NS, "tidal")
	p.HTTPClient = f.srv.Client()
	ctx := context.Background()
	spec := func(id string) *tidalv1alpha1.AuthPodIdentity {
		return &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAzureWorkload,
			IdentityID: ptr(id), IdentityTenantID: ptr(tenant), IdentityAuthorityHost: ptr(f.srv.URL + "/")}
	}
	queue := func(t *testing.T, id string) (int64, error) {
		pi, err := p.Resolve(ctx, spec(id), e.NS, "")
		if err != nil {
			t.Fatal(err)
		}
		cred, err := azure.WorkloadIdentity(pi, policy.ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		q, err := azqueue.NewQueueClient(f.srv.URL+"/orders", cred, &azqueue.ClientOptions{ClientOptions: azure.ClientOptions(f.srv.Client())})
		if err != nil {
			t.Fatal(err)
		}
		props, err := q.GetProperties(ctx, nil)
		if err != nil {
			return 0, err
		}
		return *props.ApproximateMessagesCount, nil
	}

	if n, err := queue(t, client); err != nil || n != 7 {
		t.Fatalf("queue read with the federated identity: %d, %v", n, err)
	}
	_, err := queue(t, stranger)
	if err == nil || !strings.Contains(err.Error(), "spec.podIdentity (provider azure-workload") || !strings.Contains(err.Error(), "AADSTS700213") {
		t.Fatalf("error %v, want one naming spec.podIdentity (provider azure-workload and Entra's refusal", err)
	}
	f.mu.Lock()
	presented := append([]string(nil), f.presented...)
	f.mu.Unlock()
	if len(presented) < 2 {
		t.Fatalf("Entra saw %d assertions", len(presented))
	}
	for _, tok := range presented {
		scalertest.AssertNoSecret(t, tok, err.Error(), logs.All())
	}

	for _, tc := range []struct {
		name, want string
		pi         *tidalv1alpha1.AuthPodIdentity
	}{
		{"no tenant", "spec.podIdentity.identityTenantId", &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAzureWorkload, IdentityID: ptr(client)}},
		{"no client id", "spec.podIdentity.identityId", &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAzureWorkload, IdentityTenantID: ptr(tenant)}},
		{"plain http authority", "spec.podIdentity.identityAuthorityHost", &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAzureWorkload,
			IdentityID: ptr(client), IdentityTenantID: ptr(tenant), IdentityAuthorityHost: ptr("http://login.example.com/")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Resolve(ctx, tc.pi, e.NS, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	aws, err := p.Resolve(ctx, &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS}, e.NS, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := azure.WorkloadIdentity(aws, policy.ClientOptions{}); err == nil || !strings.Contains(err.Error(), "spec.podIdentity: provider aws does not apply") {
		t.Fatalf("aws identity on an Azure trigger: %v", err)
	}
}
