// Package googlefake is Google's Security Token Service (POST /v1/token, the RFC 8693 token exchange as
// sts.googleapis.com speaks it) for one workload identity pool provider, and IAM credentials'
// generateAccessToken for one Google service account, for tests of workload identity federation with the
// oauth2 externalaccount package as client. Members of the pool are Kubernetes users: a subject token is checked
// with the cluster's TokenReview for the provider's default audience (https:<provider>). Production code never
// imports it.
package googlefake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/internal/testenv"
)

// Server is the fake STS and IAM credentials endpoint.
type Server struct {
	// URL is the server's base URL: the token endpoint is URL+"/v1/token", the impersonation base URL is URL.
	URL string

	mu        sync.Mutex
	federated map[string]bool // federated access tokens
	access    map[string]bool // service-account access tokens
	presented []string
}

// New starts the fake for the pool provider (//iam.googleapis.com/projects/.../providers/...) whose members
// are the Kubernetes users in members, and the Google service account (an e-mail) a federated identity may
// impersonate; t's cleanup stops it.
func New(t testing.TB, kube kubernetes.Interface, provider string, members map[string]bool, serviceAccount string) *Server {
	t.Helper()
	f := &Server{federated: map[string]bool{}, access: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		in := r.PostForm
		if in.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" ||
			in.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt" ||
			in.Get("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
			writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "unsupported token exchange"})
			return
		}
		if in.Get("audience") != provider {
			writeJSON(w, 400, map[string]string{"error": "invalid_target", "error_description": "The target service indicated by the \"audience\" parameters is invalid."})
			return
		}
		tok := in.Get("subject_token")
		f.mu.Lock()
		f.presented = append(f.presented, tok)
		f.mu.Unlock()
		user, err := testenv.ReviewToken(r.Context(), kube, tok, "https:"+provider)
		if err != nil || !members[user] {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "The audience in ID Token does not match the expected audience, or the identity is not a member of the pool."})
			return
		}
		access := "ya29.federated-" + strings.Repeat("f", 16) + time.Now().Format("150405.000000000")
		f.mu.Lock()
		f.federated[access] = true
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"access_token": access, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
			"token_type": "Bearer", "expires_in": 3600})
	})
	mux.HandleFunc("POST /v1/projects/-/serviceAccounts/{sa}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		ok := f.federated[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if !ok || r.PathValue("sa") != serviceAccount+":generateAccessToken" {
			writeJSON(w, 403, map[string]any{"error": map[string]any{"code": 403, "status": "PERMISSION_DENIED",
				"message": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."}})
			return
		}
		access := "ya29.impersonated-" + time.Now().Format("150405.000000000")
		f.mu.Lock()
		f.access[access] = true
		f.mu.Unlock()
		writeJSON(w, 200, map[string]string{"accessToken": access, "expireTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// TokenURL is the STS token endpoint.
func (f *Server) TokenURL() string { return f.URL + "/v1/token" }

// Federated reports whether tok is a federated access token STS issued.
func (f *Server) Federated(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.federated[tok]
}

// Impersonated reports whether tok is a service-account access token generateAccessToken issued.
func (f *Server) Impersonated(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.access[tok]
}

// Presented returns every subject token STS was shown.
func (f *Server) Presented() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.presented...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
