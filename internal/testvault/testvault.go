// Package testvault gives tests a HashiCorp Vault / OpenBao server: a real dev server when a binary is found
// ($TIDAL_VAULT_BIN, else bao or vault on $PATH), otherwise an in-process fake speaking the same HTTP API for
// what Tidal uses (KV version 1 and 2 reads, kubernetes auth login checked with a real TokenReview, token
// revoke-self, X-Vault-Token, X-Vault-Namespace, Vault's error envelope). The fake is named in the test log.
//
// Either way the server sits behind a front the test can turn Down, which answers 503 with Vault's "Vault is
// sealed" error, as a sealed server does.
package testvault

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/testrand"

	vault "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"

	"github.com/tidalscale/tidal/autoscaler/triggers/stores"
)

// RootToken is the dev server's root token.
const RootToken = "tidal-test-root"

// Server is a Vault for one test.
type Server struct {
	// Addr is the address triggers use (the front).
	Addr string
	// Real reports a real Vault/OpenBao binary; false is the fake.
	Real bool
	root *vault.Client
	fake *fake
	down atomic.Bool
	kube kubernetes.Interface
	cfg  *rest.Config
}

// Binary is the Vault or OpenBao binary tests run, "" when none is found.
func Binary() string {
	if b := os.Getenv("TIDAL_VAULT_BIN"); b != "" {
		return b
	}
	for _, name := range []string{"bao", "vault"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start runs a server until the test ends. kube and cfg are the cluster the kubernetes auth method reviews
// tokens with.
func Start(t testing.TB, kube kubernetes.Interface, cfg *rest.Config) *Server {
	t.Helper()
	s := &Server{kube: kube, cfg: cfg}
	var backend string
	if bin := Binary(); bin != "" {
		backend = startReal(t, bin)
		s.Real = true
		t.Logf("testvault: real server %s", bin)
	} else {
		s.fake = newFake(kube)
		srv := httptest.NewServer(s.fake)
		t.Cleanup(srv.Close)
		backend = srv.URL
		t.Logf("testvault: no bao/vault binary (set TIDAL_VAULT_BIN): using the in-process fake of Vault's HTTP API")
	}
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"errors":["Vault is sealed"]}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	s.Addr = front.URL
	root, err := vault.NewClient(&vault.Config{Address: backend})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(RootToken)
	root.ClearNamespace()
	s.root = root
	return s
}

// Down makes the server answer 503 sealed (true) or serve again (false).
func (s *Server) Down(down bool) { s.down.Store(down) }

func startReal(t testing.TB, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id="+RootToken, "-dev-listen-address="+addr)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s dev server not ready at %s: %v", bin, url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// EnableKV1 mounts a KV version 1 engine at path (the dev server has KV version 2 at secret/).
func (s *Server) EnableKV1(t testing.TB, path string) {
	t.Helper()
	if s.fake != nil {
		s.fake.mountKV1(path)
		return
	}
	if err := s.root.Sys().Mount(path, &vault.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatalf("mount kv1 at %s: %v", path, err)
	}
}

// PutKV1 writes data at <mount>/<name> of a KV version 1 engine.
func (s *Server) PutKV1(t testing.TB, mount, name string, data map[string]any) {
	t.Helper()
	if s.fake != nil {
		s.fake.put("", mount+"/"+name, data)
		return
	}
	if _, err := s.root.Logical().Write(mount+"/"+name, data); err != nil {
		t.Fatalf("write %s/%s: %v", mount, name, err)
	}
}

// PutKV2 writes a new version of secret/<name> (KV version 2; read at secret/data/<name>).
func (s *Server) PutKV2(t testing.TB, name string, data map[string]any) {
	t.Helper()
	if s.fake != nil {
		s.fake.put("", "secret/data/"+name, data)
		return
	}
	if _, err := s.root.Logical().Write("secret/data/"+name, map[string]any{"data": data}); err != nil {
		t.Fatalf("write secret/data/%s: %v", name, err)
	}
}

// CreateAuthentication creates TriggerAuthentication name in namespace: token authentication with the root token,
// parameter param from key of the KV version 2 secret secret/<secret>.
func (s *Server) CreateAuthentication(t testing.TB, tc tidalclient.Interface, namespace, name, param, secret, key string) {
	t.Helper()
	ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: tidalv1alpha1.TriggerAuthenticationSpec{HashiCorpVault: &tidalv1alpha1.HashiCorpVault{
			Address: s.Addr, Authentication: tidalv1alpha1.VaultAuthenticationToken,
			Credential: &tidalv1alpha1.VaultCredential{Token: RootToken},
			Secrets: []tidalv1alpha1.VaultSecret{{Parameter: param, Path: "secret/data/" + secret, Key: key,
				Type: tidalv1alpha1.VaultSecretTypeSecretV2}}}}}
	if _, err := tc.TidalV1alpha1().TriggerAuthentications(namespace).Create(context.Background(), ta, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// EnableAppRole enables the approle auth method at auth/approle with a role that may read every path, and
// returns its role ID and a secret ID.
func (s *Server) EnableAppRole(t testing.TB) (roleID, secretID string) {
	t.Helper()
	if s.fake != nil {
		roleID, secretID = "role-"+testrand.Hex(8), "secret-"+testrand.Hex(16)
		s.fake.addAppRole(roleID, secretID)
		return roleID, secretID
	}
	if err := s.root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatalf("enable approle: %v", err)
	}
	if err := s.root.Sys().PutPolicy("tidal-approle-reader", `path "*" { capabilities = ["read", "create", "update"] }`); err != nil {
		t.Fatalf("approle policy: %v", err)
	}
	if _, err := s.root.Logical().Write("auth/approle/role/tidal", map[string]any{"token_policies": "tidal-approle-reader"}); err != nil {
		t.Fatalf("approle role: %v", err)
	}
	id, err := s.root.Logical().Read("auth/approle/role/tidal/role-id")
	if err != nil || id == nil {
		t.Fatalf("approle role-id: %v", err)
	}
	sec, err := s.root.Logical().Write("auth/approle/role/tidal/secret-id", nil)
	if err != nil || sec == nil {
		t.Fatalf("approle secret-id: %v", err)
	}
	roleID, _ = id.Data["role_id"].(string)
	secretID, _ = sec.Data["secret_id"].(string)
	return roleID, secretID
}

// EnablePKI mounts a PKI engine at mount with a root CA and a role that may issue for any name, and returns the
// CA's certificate (PEM).
func (s *Server) EnablePKI(t testing.TB, mount, role string) []byte {
	t.Helper()
	if s.fake != nil {
		caPEM, err := s.fake.enablePKI(mount, role)
		if err != nil {
			t.Fatal(err)
		}
		return caPEM
	}
	if err := s.root.Sys().Mount(mount, &vault.MountInput{Type: "pki", Config: vault.MountConfigInput{MaxLeaseTTL: "87600h"}}); err != nil {
		t.Fatalf("mount pki at %s: %v", mount, err)
	}
	root, err := s.root.Logical().Write(mount+"/root/generate/internal", map[string]any{"common_name": "tidal-test-vault-ca", "ttl": "87600h"})
	if err != nil {
		t.Fatalf("generate the root CA of %s: %v", mount, err)
	}
	caPEM, _ := root.Data["certificate"].(string)
	if _, err := s.root.Logical().Write(mount+"/roles/"+role, map[string]any{"allow_any_name": true, "max_ttl": "72h", "key_type": "ec"}); err != nil {
		t.Fatalf("create role %s/%s: %v", mount, role, err)
	}
	return []byte(caPEM)
}

// EnableKubernetesAuth mounts the kubernetes auth method at auth/kubernetes, reviewing tokens with the cluster,
// with role allowing service account namespace/serviceAccount to read every path.
func (s *Server) EnableKubernetesAuth(t testing.TB, role, namespace, serviceAccount string) {
	t.Helper()
	if s.fake != nil {
		s.fake.addRole(role, namespace, serviceAccount)
		return
	}
	ctx := context.Background()
	// Vault reviews tokens with a reviewer JWT: a service account allowed to create TokenReviews.
	rev := "vault-reviewer-" + testrand.Hex(4)
	if _, err := s.kube.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: rev}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: namespace + "-" + rev},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: rev, Namespace: namespace}}}
	if _, err := s.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	jwt, err := stores.KubeTokens{Kube: s.kube}.ServiceAccountToken(ctx, namespace, rev, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.root.Sys().EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatalf("enable kubernetes auth: %v", err)
	}
	if _, err := s.root.Logical().Write("auth/kubernetes/config", map[string]any{
		"kubernetes_host": s.cfg.Host, "kubernetes_ca_cert": string(s.cfg.CAData), "token_reviewer_jwt": jwt,
	}); err != nil {
		t.Fatalf("configure kubernetes auth: %v", err)
	}
	if err := s.root.Sys().PutPolicy("tidal-reader", `path "*" { capabilities = ["read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.root.Logical().Write("auth/kubernetes/role/"+role, map[string]any{
		"bound_service_account_names": serviceAccount, "bound_service_account_namespaces": namespace,
		"policies": "tidal-reader", "ttl": "10m",
	}); err != nil {
		t.Fatalf("write role: %v", err)
	}
}

// PutKV2In writes secret/<name> in the Vault namespace ns (X-Vault-Namespace), creating the namespace on a real
// server; ok is false when the server has no namespaces (Vault community edition).
func (s *Server) PutKV2In(t testing.TB, ns, name string, data map[string]any) (ok bool) {
	t.Helper()
	if s.fake != nil {
		s.fake.put(ns, "secret/data/"+name, data)
		return true
	}
	if _, err := s.root.Logical().Write("sys/namespaces/"+ns, nil); err != nil {
		t.Logf("no namespaces on this server: %v", err)
		return false
	}
	c, err := s.root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(RootToken)
	c.SetNamespace(ns)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("mount kv2 in namespace %s: %v", ns, err)
	}
	if _, err := c.Logical().Write("secret/data/"+name, map[string]any{"data": data}); err != nil {
		t.Fatalf("write %s secret/data/%s: %v", ns, name, err)
	}
	return true
}
