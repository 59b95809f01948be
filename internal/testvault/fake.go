package testvault

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/internal/pki"
)

// fake serves the part of Vault's HTTP API (v1) Tidal uses, with Vault's paths, JSON envelopes and errors:
//   - GET /v1/<kv1 mount>/<name>: {"data": {...}};
//   - GET /v1/secret/data/<name> (KV version 2): {"data": {"data": {...}, "metadata": {...}}};
//   - PUT|POST /v1/auth/kubernetes/login {"role", "jwt"}: the JWT is checked with a TokenReview against the
//     cluster and the role's bound service account, then {"auth": {"client_token", ...}};
//   - PUT|POST /v1/auth/approle/login {"role_id", "secret_id"}: {"auth": {"client_token", ...}}, 400
//     {"errors":["invalid role or secret ID"]} otherwise;
//   - PUT|POST /v1/auth/token/revoke-self: 204;
//   - PUT|POST /v1/<pki mount>/issue/<role> {"common_name", "alt_names", "ip_sans", "ttl"}: a certificate issued by
//     the mount's CA, {"data": {"certificate", "issuing_ca", "ca_chain", "private_key", "private_key_type",
//     "serial_number", "expiration"}}; an unknown role is 400 {"errors":["unknown role: <role>"]}.
//
// Every request needs a valid X-Vault-Token (403 {"errors":["permission denied"]}); a missing secret is 404
// {"errors":[]}; X-Vault-Namespace scopes the data (a namespace holds only what was written in it).
type fake struct {
	kube kubernetes.Interface

	mu     sync.Mutex
	kv1    map[string]bool           // KV version 1 mounts
	data   map[string]map[string]any // namespace + "|" + path → data
	tokens map[string]bool
	roles  map[string][2]string // role → namespace, service account
	pkis   map[string]*pkiMount // PKI engines by mount
	apps   map[string]string    // AppRole role ID → secret ID
	seq    int
}

// pkiMount is one PKI engine: its CA and roles.
type pkiMount struct {
	ca    *pki.CA
	roles map[string]bool
}

func newFake(kube kubernetes.Interface) *fake {
	return &fake{kube: kube, kv1: map[string]bool{}, data: map[string]map[string]any{},
		tokens: map[string]bool{RootToken: true}, roles: map[string][2]string{}, pkis: map[string]*pkiMount{}, apps: map[string]string{}}
}

func (f *fake) mountKV1(path string) {
	f.mu.Lock()
	f.kv1[strings.Trim(path, "/")] = true
	f.mu.Unlock()
}

func (f *fake) put(ns, path string, data map[string]any) {
	f.mu.Lock()
	f.data[strings.Trim(ns, "/")+"|"+path] = data
	f.mu.Unlock()
}

func (f *fake) addRole(role, ns, sa string) {
	f.mu.Lock()
	f.roles[role] = [2]string{ns, sa}
	f.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func vaultErr(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": msgs})
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		vaultErr(w, http.StatusNotFound)
		return
	}
	ns := strings.Trim(r.Header.Get("X-Vault-Namespace"), "/")
	switch {
	case path == "auth/kubernetes/login" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		f.login(w, r)
		return
	case path == "auth/approle/login" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		f.appRoleLogin(w, r)
		return
	}
	token := r.Header.Get("X-Vault-Token")
	f.mu.Lock()
	valid := f.tokens[token]
	f.mu.Unlock()
	if !valid {
		vaultErr(w, http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case path == "auth/token/revoke-self" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		if token != RootToken {
			f.mu.Lock()
			delete(f.tokens, token)
			f.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	case (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.Contains(path, "/issue/"):
		f.issue(w, r, path)
	case r.Method == http.MethodGet:
		mount, _, _ := strings.Cut(path, "/")
		f.mu.Lock()
		data, found := f.data[ns+"|"+path]
		isKV1 := f.kv1[mount]
		f.mu.Unlock()
		if !found || (!isKV1 && !strings.HasPrefix(path, "secret/data/")) {
			vaultErr(w, http.StatusNotFound)
			return
		}
		body := map[string]any{"request_id": "00000000-0000-0000-0000-000000000000", "lease_id": "", "renewable": false,
			"lease_duration": 2764800, "wrap_info": nil, "warnings": nil, "auth": nil, "data": data}
		if !isKV1 {
			body["lease_duration"] = 0
			body["data"] = map[string]any{"data": data, "metadata": map[string]any{
				"created_time": time.Now().UTC().Format(time.RFC3339Nano), "deletion_time": "", "destroyed": false, "version": 1}}
		}
		writeJSON(w, http.StatusOK, body)
	default:
		vaultErr(w, http.StatusMethodNotAllowed, "unsupported operation")
	}
}

// login checks the JWT with a TokenReview and the role's bound service account, as the kubernetes auth method
// does.
func (f *fake) login(w http.ResponseWriter, r *http.Request) {
	var req struct{ Role, JWT string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Role == "" || req.JWT == "" {
		vaultErr(w, http.StatusBadRequest, "missing role or jwt")
		return
	}
	f.mu.Lock()
	bound, ok := f.roles[req.Role]
	f.mu.Unlock()
	if !ok {
		vaultErr(w, http.StatusBadRequest, `invalid role name "`+req.Role+`"`)
		return
	}
	tr, err := f.kube.AuthenticationV1().TokenReviews().Create(r.Context(),
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: req.JWT}}, metav1.CreateOptions{})
	if err != nil || !tr.Status.Authenticated {
		vaultErr(w, http.StatusForbidden, "permission denied")
		return
	}
	if tr.Status.User.Username != "system:serviceaccount:"+bound[0]+":"+bound[1] {
		vaultErr(w, http.StatusForbidden, "service account name not authorized")
		return
	}
	f.grant(w, map[string]any{"role": req.Role, "service_account_name": bound[1], "service_account_namespace": bound[0]})
}

// appRoleLogin checks the role and secret IDs, as the approle auth method does.
func (f *fake) appRoleLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RoleID   string `json:"role_id"`
		SecretID string `json:"secret_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.RoleID == "" {
		vaultErr(w, http.StatusBadRequest, "missing role_id")
		return
	}
	f.mu.Lock()
	want, ok := f.apps[req.RoleID]
	f.mu.Unlock()
	if !ok || req.SecretID != want {
		vaultErr(w, http.StatusBadRequest, "invalid role or secret ID")
		return
	}
	f.grant(w, map[string]any{"role_name": "tidal"})
}

// grant answers a successful login with a new token.
func (f *fake) grant(w http.ResponseWriter, metadata map[string]any) {
	f.mu.Lock()
	f.seq++
	token := "hvs.fake" + strings.Repeat("x", 4) + string(rune('a'+f.seq%26)) + time.Now().Format("150405.000000000")
	f.tokens[token] = true
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"request_id": "00000000-0000-0000-0000-000000000001", "lease_id": "",
		"renewable": false, "lease_duration": 0, "data": nil, "wrap_info": nil, "warnings": nil,
		"auth": map[string]any{"client_token": token, "accessor": "acc" + token[len(token)-6:], "policies": []string{"default", "tidal-reader"},
			"token_policies": []string{"default", "tidal-reader"}, "metadata": metadata,
			"lease_duration": 600, "renewable": true, "entity_id": "", "token_type": "service", "orphan": true}})
}

func (f *fake) addAppRole(roleID, secretID string) {
	f.mu.Lock()
	f.apps[roleID] = secretID
	f.mu.Unlock()
}

func (f *fake) enablePKI(mount, role string) ([]byte, error) {
	ca, err := pki.NewCA(pki.Request{CommonName: "tidal-test-vault-ca", Lifetime: 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.pkis[mount]
	if m == nil {
		m = &pkiMount{ca: ca, roles: map[string]bool{}}
		f.pkis[mount] = m
	}
	m.roles[role] = true
	return m.ca.CertPEM, nil
}

// issue answers <mount>/issue/<role> as Vault's PKI engine does.
func (f *fake) issue(w http.ResponseWriter, r *http.Request, path string) {
	mount, role, _ := strings.Cut(path, "/issue/")
	f.mu.Lock()
	m := f.pkis[mount]
	known := m != nil && m.roles[role]
	f.mu.Unlock()
	switch {
	case m == nil:
		vaultErr(w, http.StatusNotFound, "no handler for route \""+path+"\". route entry not found.")
		return
	case !known:
		vaultErr(w, http.StatusBadRequest, "unknown role: "+role)
		return
	}
	var req struct {
		CommonName string `json:"common_name"`
		AltNames   string `json:"alt_names"`
		IPSans     string `json:"ip_sans"`
		TTL        string `json:"ttl"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		vaultErr(w, http.StatusBadRequest, "error parsing JSON")
		return
	}
	if req.CommonName == "" {
		vaultErr(w, http.StatusBadRequest, "the common_name field is required, or must be provided in a CSR with \"use_csr_common_name\" set to true, unless \"require_cn\" is set to false")
		return
	}
	lifetime := 72 * time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			vaultErr(w, http.StatusBadRequest, "error parsing ttl: "+err.Error())
			return
		}
		lifetime = d
	}
	hosts := []string{req.CommonName}
	for _, list := range []string{req.AltNames, req.IPSans} {
		for _, h := range strings.Split(list, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
	}
	leaf, err := m.ca.Issue(pki.Request{CommonName: req.CommonName, Hosts: hosts, Lifetime: lifetime})
	if err != nil {
		vaultErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	ca := strings.TrimSpace(string(m.ca.CertPEM))
	writeJSON(w, http.StatusOK, map[string]any{"request_id": "00000000-0000-0000-0000-000000000002", "lease_id": "",
		"renewable": false, "lease_duration": 0, "wrap_info": nil, "warnings": nil, "auth": nil,
		"data": map[string]any{"certificate": strings.TrimSpace(string(leaf.CertPEM)), "issuing_ca": ca, "ca_chain": []string{ca},
			"private_key": strings.TrimSpace(string(leaf.KeyPEM)), "private_key_type": "ec",
			"serial_number": leaf.Cert.SerialNumber.String(), "expiration": leaf.Cert.NotAfter.Unix()}})
}
