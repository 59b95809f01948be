// Package oauthtest is an in-process OAuth2 authorization server for tests: a token endpoint speaking RFC 6749's
// client-credentials grant (section 4.4: form POST, client authentication by HTTP basic auth or form fields as
// section 2.3.1 says, a JSON token response with expires_in, RFC 6749 section 5.2 errors such as 401
// invalid_client) and a resource-server guard that admits only the bearer tokens it issued (RFC 6750).
package oauthtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// Server is a token endpoint for one registered client.
type Server struct {
	// ClientID and ClientSecret are the registered client's credentials.
	ClientID, ClientSecret string

	srv *httptest.Server

	mu        sync.Mutex
	expiresIn int  // seconds, sent as expires_in
	bodyOnly  bool // refuse HTTP basic client authentication
	issued    map[string]bool
	fetches   int
	lastForm  url.Values
	basicUsed bool
}

// New starts a token endpoint for the client (id, secret) issuing tokens valid for an hour; it stops with t.
func New(t testing.TB, id, secret string) *Server {
	t.Helper()
	s := &Server{ClientID: id, ClientSecret: secret, expiresIn: 3600, issued: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.token))
	t.Cleanup(s.srv.Close)
	return s
}

// TokenURL is the token endpoint's address.
func (s *Server) TokenURL() string { return s.srv.URL + "/oauth2/token" }

// Close stops the token endpoint (tokens it issued stay valid at Protect).
func (s *Server) Close() { s.srv.Close() }

// SetExpiresIn sets the expires_in of the tokens issued from now on.
func (s *Server) SetExpiresIn(seconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiresIn = seconds
}

// RefuseBasicAuth makes the endpoint accept client credentials only as form fields (client_secret_post).
func (s *Server) RefuseBasicAuth() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodyOnly = true
}

// Fetches counts the tokens issued.
func (s *Server) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// LastForm is the form of the last token request that was granted, with the client authentication it used
// (basic or post).
func (s *Server) LastForm() (form url.Values, basic bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastForm, s.basicUsed
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/oauth2/token" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeError(w, http.StatusBadRequest, "invalid_request", "want application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "unparsable form")
		return
	}
	form := r.PostForm
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 2.3.1: the client identifier and secret are form-urlencoded before basic encoding.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if form.Has("client_secret") {
			writeError(w, http.StatusBadRequest, "invalid_request", "more than one client authentication method")
			return
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if (basic && s.bodyOnly) || id != s.ClientID || secret != s.ClientSecret {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
		}
		writeError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q", gt))
		return
	}
	s.fetches++
	tok := fmt.Sprintf("at-%d", s.fetches)
	s.issued[tok] = true
	s.lastForm, s.basicUsed = form, basic
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": s.expiresIn, "scope": form.Get("scope"),
	})
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// Protect admits a request to next only with "Authorization: Bearer <a token s issued>"; otherwise it answers
// 401 with RFC 6750's WWW-Authenticate challenge.
func (s *Server) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		valid := ok && s.issued[tok]
		s.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="oauthtest", error="invalid_token"`)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ScalerCase describes an HTTP scaler for CheckScaler.
type ScalerCase struct {
	// Type is the trigger type; New builds its scaler.
	Type string
	New  func(context.Context, *scalers.TriggerConfig) (scalers.Scaler, error)
	// Resource answers the scaler's request with a response worth Want.
	Resource http.Handler
	Want     float64
	// Metadata is the trigger metadata reading resourceURL with authModes (or authMode) oauth.
	Metadata func(resourceURL string) map[string]string
}

// CheckScaler runs the OAuth2 client-credentials checks every HTTP scaler with authModes oauth must pass, against
// a token endpoint of this package and c.Resource behind Protect: two triggers of the same client sample many
// times on one token; a wrong client secret and a token endpoint that is down are Sample errors saying so (the
// fallback path), without the secret in the error or the logs; a trigger without oauthTokenURI or clientID is a
// metadata error naming the key.
func CheckScaler(t *testing.T, c ScalerCase) {
	t.Helper()
	const secret = "client-secret-0123456789"
	idp := New(t, "tidal-scaler", secret)
	api := httptest.NewServer(idp.Protect(c.Resource))
	t.Cleanup(api.Close)
	auth := func(tokenURL, secret string) map[string]string {
		return map[string]string{"oauthTokenURI": tokenURL, "clientID": "tidal-scaler", "clientSecret": secret, "scopes": "metrics.read"}
	}

	t.Run("one token for many samples", func(t *testing.T) {
		shared := scalers.NewShared()
		for i := range 2 {
			cfg := scalertest.Config(c.Type, fmt.Sprintf("t%d", i), c.Metadata(api.URL), auth(idp.TokenURL(), secret))
			cfg.Index, cfg.Shared = i, shared
			s := scalertest.New[scalers.Scaler](t, c.New, cfg)
			for range 5 {
				if v, _ := scalertest.Sample(t, s, ""); v != c.Want {
					t.Fatalf("Sample = %v, want %v", v, c.Want)
				}
			}
		}
		if n := idp.Fetches(); n != 1 {
			t.Errorf("token fetches = %d for 10 samples of two triggers of one client, want 1", n)
		}
		if form, _ := idp.LastForm(); form.Get("scope") != "metrics.read" {
			t.Errorf("token request scope = %q, want metrics.read", form.Get("scope"))
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		wrong := "wrong-" + secret
		scalertest.SampleFails(t, c.New, scalertest.Config(c.Type, "bad", c.Metadata(api.URL), auth(idp.TokenURL(), wrong)),
			"invalid_client", wrong, secret)
	})
	t.Run("token endpoint down", func(t *testing.T) {
		down := New(t, "tidal-scaler", secret)
		down.Close()
		scalertest.SampleFails(t, c.New, scalertest.Config(c.Type, "down", c.Metadata(api.URL), auth(down.TokenURL(), secret)),
			"oauth2 token endpoint", secret)
	})
	t.Run("missing parameters", func(t *testing.T) {
		for _, key := range []string{"oauthTokenURI", "clientID"} {
			a := auth(idp.TokenURL(), secret)
			delete(a, key)
			_, err := c.New(context.Background(), scalertest.Config(c.Type, "", c.Metadata(api.URL), a))
			if err == nil || !strings.Contains(err.Error(), key+": required") {
				t.Errorf("without %s: New error = %v, want one naming %s", key, err, key)
			}
		}
	})
}
