// Package keyvaultfake is a fake of Azure Key Vault's Get Secret operation and of the Microsoft Entra ID
// endpoints a client-secret credential uses, for tests, used through the real azsecrets client and azidentity
// ClientSecretCredential. Key Vault's REST API (GET {vaultUri}/secrets/{name}/{version}?api-version=...) answers
// an unauthenticated request with its bearer challenge (401, WWW-Authenticate naming the authority and the
// resource), accepts only tokens the Entra ID fake issued for that resource's scope, and reports errors in Key
// Vault's JSON error shape. The Entra ID side serves instance discovery, the tenant's OpenID configuration and
// the v2.0 token endpoint for the client-credentials grant, refusing a wrong secret with AADSTS7000215, and
// federated client assertions of the applications Federate names (AADSTS700213 when refused). Both
// are one HTTPS server reached through HTTPClient, which routes every host (the vault's and the authority's,
// real public-cloud names by default) to it and trusts its CA. Production code never imports it.
package keyvaultfake

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/testrand"

	"github.com/tidalscale/tidal/internal/testpki"
)

// Config names the fake's hosts; zero values are the public cloud's.
type Config struct {
	// VaultHost is the vault's host, e.g. tidal-test.vault.azure.net.
	VaultHost string
	// Resource is Key Vault's resource in the challenge, e.g. https://vault.azure.net.
	Resource string
	// AuthorityHost is the Entra ID host, e.g. login.microsoftonline.com.
	AuthorityHost string
}

// Server is a running fake vault and Entra ID tenant with one application allowed to read the vault.
type Server struct {
	// VaultURI is the vault's URL, https://<VaultHost>.
	VaultURI string
	// TenantID, ClientID and ClientSecret are the service principal the fake accepts.
	TenantID, ClientID, ClientSecret string
	// SecretCalls counts Get Secret requests (challenges included); TokenCalls counts token requests.
	SecretCalls, TokenCalls atomic.Int64

	cfg  Config
	srv  *httptest.Server
	ca   *testpki.CA
	addr string

	mu      sync.Mutex
	secrets map[string][]secretVersion // by name, oldest first
	tokens  map[string]string          // access token → scope
	// federated maps an application's client id to the check of its federated client assertions.
	federated map[string]func(assertion string) bool
}

type secretVersion struct {
	id, value string
	created   time.Time
}

// New starts the fake; t's cleanup stops it.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.VaultHost == "" {
		cfg.VaultHost = "tidal-test.vault.azure.net"
	}
	if cfg.Resource == "" {
		cfg.Resource = "https://vault.azure.net"
	}
	if cfg.AuthorityHost == "" {
		cfg.AuthorityHost = "login.microsoftonline.com"
	}
	s := &Server{
		VaultURI: "https://" + cfg.VaultHost, TenantID: testrand.UUID(), ClientID: testrand.UUID(), ClientSecret: "cs~" + testrand.Hex(16),
		cfg: cfg, ca: testpki.NewCA(t, "keyvaultfake"),
		secrets: map[string][]secretVersion{}, tokens: map[string]string{},
	}
	pair := s.ca.Server(t, "keyvaultfake", cfg.VaultHost, cfg.AuthorityHost, "127.0.0.1")
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.StartTLS()
	s.addr = s.srv.Listener.Addr().String()
	t.Cleanup(s.srv.Close)
	return s
}

// Close stops the server: later calls fail to connect, as when the vault cannot be reached.
func (s *Server) Close() { s.srv.Close() }

// HTTPClient reaches the fake for every host and trusts its CA: give it to the SDK clients.
func (s *Server) HTTPClient() *http.Client { return s.ca.ClientTo(s.addr) }

// Federate lets application clientID (of the fake's tenant) authenticate with a federated client assertion (the
// client_credentials grant with a jwt-bearer client_assertion, as workload identity does) that accept approves,
// standing for the federated identity credential's issuer and subject.
func (s *Server) Federate(clientID string, accept func(assertion string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.federated == nil {
		s.federated = map[string]func(string) bool{}
	}
	s.federated[clientID] = accept
}

// Set stores value as a new version of secret name, which becomes its current version; it returns the version.
func (s *Server) Set(name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := testrand.Hex(16)
	s.secrets[name] = append(s.secrets[name], secretVersion{id: id, value: value, created: time.Now()})
	return id
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	switch host {
	case s.cfg.VaultHost:
		s.getSecret(w, r)
	case s.cfg.AuthorityHost:
		s.entra(w, r)
	default:
		http.Error(w, "unknown host "+host, http.StatusMisdirectedRequest)
	}
}

// getSecret serves GET /secrets/{name}/{version}.
func (s *Server) getSecret(w http.ResponseWriter, r *http.Request) {
	s.SecretCalls.Add(1)
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet || len(parts) < 2 || len(parts) > 3 || parts[0] != "secrets" || parts[1] == "" {
		kvError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: "+r.URL.Path)
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		kvError(w, http.StatusBadRequest, "BadParameter", "The 'api-version' query parameter is missing.")
		return
	}
	challenge := fmt.Sprintf(`Bearer authorization="https://%s/%s", resource="%s"`, s.cfg.AuthorityHost, s.TenantID, s.cfg.Resource)
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", challenge)
		kvError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	s.mu.Lock()
	scope, issued := s.tokens[tok]
	s.mu.Unlock()
	if !issued || scope != strings.TrimSuffix(s.cfg.Resource, "/")+"/.default" {
		w.Header().Set("WWW-Authenticate", challenge)
		kvError(w, http.StatusUnauthorized, "Unauthorized", "AKV10022: Invalid audience.")
		return
	}
	name, version := parts[1], ""
	if len(parts) == 3 {
		version = parts[2]
	}
	s.mu.Lock()
	versions := s.secrets[name]
	s.mu.Unlock()
	var v *secretVersion
	for i := range versions {
		if version == "" || versions[i].id == version {
			v = &versions[i]
		}
	}
	if v == nil {
		what := "name/id"
		if version != "" {
			what = "name/id/version"
		}
		kvError(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("A secret with (%s) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.", what, strings.TrimSuffix(name+"/"+version, "/")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"value": v.value, "id": fmt.Sprintf("https://%s/secrets/%s/%s", s.cfg.VaultHost, name, v.id),
		"attributes": map[string]any{"enabled": true, "created": v.created.Unix(), "updated": v.created.Unix(), "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
		"tags":       map[string]string{},
	})
}

func kvError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// entra serves instance discovery, the tenant's OpenID configuration and the token endpoint.
func (s *Server) entra(w http.ResponseWriter, r *http.Request) {
	base := "https://" + s.cfg.AuthorityHost
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/common/discovery/instance":
		writeJSON(w, http.StatusOK, map[string]any{
			"tenant_discovery_endpoint": base + "/" + s.TenantID + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata": []map[string]any{{"preferred_network": s.cfg.AuthorityHost, "preferred_cache": s.cfg.AuthorityHost,
				"aliases": []string{s.cfg.AuthorityHost}}},
		})
	case r.Method == http.MethodGet && r.URL.Path == "/"+s.TenantID+"/v2.0/.well-known/openid-configuration":
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":           base + "/" + s.TenantID + "/oauth2/v2.0/token",
			"authorization_endpoint":   base + "/" + s.TenantID + "/oauth2/v2.0/authorize",
			"issuer":                   base + "/" + s.TenantID + "/v2.0",
			"response_types_supported": []string{"code", "id_token", "code id_token", "id_token token"},
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+s.TenantID+"/oauth2/v2.0/token":
		s.token(w, r)
	case strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
		tenant := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_tenant",
			"error_description": fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", tenant), "error_codes": []int{90002}})
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.TokenCalls.Add(1)
	if err := r.ParseForm(); err != nil {
		entraError(w, http.StatusBadRequest, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	// MSAL adds the OpenID scopes to the resource's /.default scope.
	var resourceScope string
	for _, sc := range strings.Fields(f.Get("scope")) {
		if strings.HasSuffix(sc, "/.default") {
			resourceScope = sc
		}
	}
	s.mu.Lock()
	accept := s.federated[f.Get("client_id")]
	s.mu.Unlock()
	assertion := f.Get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	switch {
	case f.Get("grant_type") != "client_credentials":
		entraError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "AADSTS70003: The app requested an unsupported grant type.")
	case assertion && accept == nil:
		entraError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", f.Get("client_id"), s.TenantID))
	case assertion && !accept(f.Get("client_assertion")):
		entraError(w, http.StatusBadRequest, "invalid_client", 700213,
			"AADSTS700213: No matching federated identity record found for presented assertion subject.")
	case assertion && resourceScope == "":
		entraError(w, http.StatusBadRequest, "invalid_scope", 1002012, "AADSTS1002012: The provided value for scope is not valid.")
	case assertion:
		s.issue(w, resourceScope)
	case f.Get("client_id") != s.ClientID:
		entraError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", f.Get("client_id"), s.TenantID))
	case f.Get("client_secret") != s.ClientSecret:
		entraError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.ClientID))
	case resourceScope == "":
		entraError(w, http.StatusBadRequest, "invalid_scope", 1002012, "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
	default:
		s.issue(w, resourceScope)
	}
}

// issue answers an access token for resourceScope.
func (s *Server) issue(w http.ResponseWriter, resourceScope string) {
	tok := "eyJ0eXAi." + testrand.Hex(24)
	s.mu.Lock()
	s.tokens[tok] = resourceScope
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
}

func entraError(w http.ResponseWriter, status int, code string, n int, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc, "error_codes": []int{n},
		"timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z"), "trace_id": testrand.UUID(), "correlation_id": testrand.UUID(),
		"error_uri": "https://login.microsoftonline.com/error?code=" + fmt.Sprint(n)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
