package triggers_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testvault"
)

// spec.hashiCorpVault resolves with token and kubernetes authentication (a TokenRequest for
// credential.serviceAccountName, reviewed by the server with a TokenReview), from KV version 1 and 2 and the
// generic type; Vault's parameters win over secretTargetRef's; a changed secret is read again once half the TTL
// has passed; while the server is down the last values keep coming with a DegradedError naming the field and
// the HTTP status, and after the TTL resolution fails. No error shows a value.
func TestVaultStore(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	v := testvault.Start(t, e.Cluster.Client, e.Cluster.Config)
	v.EnableKV1(t, "kv1")
	v.PutKV1(t, "kv1", "redis", map[string]any{"password": "kv1-s3cret"})
	v.PutKV2(t, "redis", map[string]any{"password": "kv2-s3cret", "port": "6380"})
	if _, err := e.Cluster.Client.CoreV1().ServiceAccounts(e.NS).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scaler"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	v.EnableKubernetesAuth(t, "tidal", e.NS, "scaler")
	if _, err := e.Cluster.Client.CoreV1().Secrets(e.NS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain"},
		StringData: map[string]string{"password": "from-secret", "username": "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secrets := []tidalv1alpha1.VaultSecret{
		{Parameter: "password", Path: "kv1/redis", Key: "password", Type: tidalv1alpha1.VaultSecretTypeSecret},
		{Parameter: "v2password", Path: "secret/data/redis", Key: "password", Type: tidalv1alpha1.VaultSecretTypeSecretV2},
		{Parameter: "port", Path: "secret/data/redis", Key: "port"},
	}
	create := func(name string, hv *tidalv1alpha1.HashiCorpVault) *tidalv1alpha1.AuthenticationRef {
		ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.NS},
			Spec: tidalv1alpha1.TriggerAuthenticationSpec{HashiCorpVault: hv,
				SecretTargetRef: []tidalv1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "plain", Key: "password"},
					{Parameter: "username", Name: "plain", Key: "username"}}}}
		if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return &tidalv1alpha1.AuthenticationRef{Name: name}
	}
	tokenRef := create("vault-token", &tidalv1alpha1.HashiCorpVault{Address: v.Addr, Authentication: tidalv1alpha1.VaultAuthenticationToken,
		Credential: &tidalv1alpha1.VaultCredential{Token: testvault.RootToken}, Secrets: secrets})
	kubeRef := create("vault-kubernetes", &tidalv1alpha1.HashiCorpVault{Address: v.Addr, Authentication: tidalv1alpha1.VaultAuthenticationKubernetes,
		Role: "tidal", Mount: "kubernetes", Credential: &tidalv1alpha1.VaultCredential{ServiceAccountName: "scaler"}, Secrets: secrets})

	// credential.serviceAccount: a token file, as mounted in the operator's pod.
	jwt, err := stores.KubeTokens{Kube: e.Cluster.Client}.ServiceAccountToken(ctx, e.NS, "scaler", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(jwt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileRef := create("vault-token-file", &tidalv1alpha1.HashiCorpVault{Address: v.Addr, Authentication: tidalv1alpha1.VaultAuthenticationKubernetes,
		Role: "tidal", Credential: &tidalv1alpha1.VaultCredential{ServiceAccount: tokenFile}, Secrets: secrets})

	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := &triggers.Resolver{Kube: e.Cluster.Client, Tidal: e.Tidal, ClusterObjectNamespace: e.NS, Stores: stores.NewCache(10*time.Minute, clk.Now)}
	noValue := func(t *testing.T, err error) {
		t.Helper()
		for _, s := range []string{"kv1-s3cret", "kv2-s3cret", "rotated-s3cret", "from-secret", testvault.RootToken} {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Fatalf("the error shows a secret: %v", err)
			}
		}
	}
	for _, ref := range []*tidalv1alpha1.AuthenticationRef{tokenRef, kubeRef, fileRef} {
		t.Run(ref.Name, func(t *testing.T) {
			params, err := r.AuthParams(ctx, e.NS, ref, noEnv)
			noValue(t, err)
			want := map[string]string{"password": "kv1-s3cret", "v2password": "kv2-s3cret", "port": "6380", "username": "app"}
			if err != nil || len(params) != len(want) {
				t.Fatalf("params %d keys, %v; want %d keys", len(params), err, len(want))
			}
			for k, w := range want {
				if params[k] != w {
					t.Fatalf("parameter %s is not the expected value", k)
				}
			}
		})
	}

	// Rotation: cached until half the TTL, then read again.
	v.PutKV2(t, "redis", map[string]any{"password": "rotated-s3cret", "port": "6380"})
	clk.Add(4 * time.Minute)
	if params, err := r.AuthParams(ctx, e.NS, kubeRef, noEnv); err != nil || params["v2password"] != "kv2-s3cret" {
		t.Fatalf("within TTL/2: want the cached value, err %v", err)
	}
	clk.Add(2 * time.Minute)
	if params, err := r.AuthParams(ctx, e.NS, kubeRef, noEnv); err != nil || params["v2password"] != "rotated-s3cret" {
		t.Fatalf("after TTL/2: want the rotated value, err %v", err)
	}

	// The server goes down: degraded, with the last values, until the TTL is over.
	v.Down(true)
	clk.Add(6 * time.Minute)
	params, err := r.AuthParams(ctx, e.NS, kubeRef, noEnv)
	noValue(t, err)
	if !triggers.IsDegraded(err) || params["v2password"] != "rotated-s3cret" || params["username"] != "app" {
		t.Fatalf("store down: degraded=%v err=%v, last values kept=%v", triggers.IsDegraded(err), err, params["v2password"] == "rotated-s3cret")
	}
	for _, s := range []string{"spec.hashiCorpVault", "503", "vault-kubernetes"} {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("degraded error %q does not mention %q", err, s)
		}
	}
	clk.Add(5 * time.Minute)
	params, err = r.AuthParams(ctx, e.NS, kubeRef, noEnv)
	noValue(t, err)
	if err == nil || triggers.IsDegraded(err) || !strings.Contains(err.Error(), "spec.hashiCorpVault") {
		t.Fatalf("after the TTL: err %v, want a plain error naming the field", err)
	}
	var se *stores.StatusError
	if !errors.As(err, &se) || se.StatusCode != 503 {
		t.Fatalf("after the TTL: %v, want the HTTP status kept", err)
	}
	_ = params
	v.Down(false)

	// A wrong path or key names the field and the path.
	bad := create("vault-bad", &tidalv1alpha1.HashiCorpVault{Address: v.Addr, Authentication: tidalv1alpha1.VaultAuthenticationToken,
		Credential: &tidalv1alpha1.VaultCredential{Token: testvault.RootToken},
		Secrets:    []tidalv1alpha1.VaultSecret{{Parameter: "password", Path: "secret/data/none", Key: "password", Type: tidalv1alpha1.VaultSecretTypeSecretV2}}})
	_, err = r.AuthParams(ctx, e.NS, bad, noEnv)
	if err == nil || !strings.Contains(err.Error(), "spec.hashiCorpVault.secrets[0]") || !strings.Contains(err.Error(), "secret/data/none") {
		t.Fatalf("missing secret: %v", err)
	}
	// A wrong token is Vault's 403.
	denied := create("vault-denied", &tidalv1alpha1.HashiCorpVault{Address: v.Addr, Authentication: tidalv1alpha1.VaultAuthenticationToken,
		Credential: &tidalv1alpha1.VaultCredential{Token: "not-a-token"}, Secrets: secrets})
	_, err = r.AuthParams(ctx, e.NS, denied, noEnv)
	if !errors.As(err, &se) || se.StatusCode != 403 || strings.Contains(err.Error(), "not-a-token") {
		t.Fatalf("wrong token: %v", err)
	}
}

// spec.hashiCorpVault.namespace is sent as X-Vault-Namespace: the same path reads the namespace's secret.
func TestVaultNamespace(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	v := testvault.Start(t, e.Cluster.Client, e.Cluster.Config)
	v.PutKV2(t, "redis", map[string]any{"password": "root-ns"})
	if !v.PutKV2In(t, "team-a", "redis", map[string]any{"password": "team-a-ns"}) {
		t.Skip("this Vault has no namespaces (Vault Enterprise and OpenBao do)")
	}
	for ns, want := range map[string]string{"": "root-ns", "team-a": "team-a-ns"} {
		name := "vault-ns-" + ns
		if ns == "" {
			name = "vault-ns-root"
		}
		ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.NS},
			Spec: tidalv1alpha1.TriggerAuthenticationSpec{HashiCorpVault: &tidalv1alpha1.HashiCorpVault{Address: v.Addr,
				Namespace: ns, Authentication: tidalv1alpha1.VaultAuthenticationToken,
				Credential: &tidalv1alpha1.VaultCredential{Token: testvault.RootToken},
				Secrets: []tidalv1alpha1.VaultSecret{{Parameter: "password", Path: "secret/data/redis", Key: "password",
					Type: tidalv1alpha1.VaultSecretTypeSecretV2}}}}}
		if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		r := &triggers.Resolver{Kube: e.Cluster.Client, Tidal: e.Tidal}
		params, err := r.AuthParams(ctx, e.NS, &tidalv1alpha1.AuthenticationRef{Name: name}, noEnv)
		if err != nil || params["password"] != want {
			t.Fatalf("namespace %q: got the expected value=%v, err %v", ns, params["password"] == want, err)
		}
	}
}

// A secret of type pki issues a certificate at <mount>/issue/<role> with pkiData, as KEDA does: the parameters
// get the certificate (for pkiData's names, signed by the engine's CA), its private key and the issuing CA; an
// unknown role is an error naming the path and Vault's status, never a key.
func TestVaultPKI(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	v := testvault.Start(t, e.Cluster.Client, e.Cluster.Config)
	caPEM := v.EnablePKI(t, "pki", "worker")
	pkiData := tidalv1alpha1.VaultPkiData{CommonName: "worker.example.com", AltNames: "worker.internal", TTL: "1h"}
	secret := func(parameter, key, role string) tidalv1alpha1.VaultSecret {
		return tidalv1alpha1.VaultSecret{Parameter: parameter, Path: "pki/issue/" + role, Key: key, Type: tidalv1alpha1.VaultSecretTypePki, PkiData: pkiData}
	}
	create := func(name string, secrets ...tidalv1alpha1.VaultSecret) *tidalv1alpha1.AuthenticationRef {
		ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.NS},
			Spec: tidalv1alpha1.TriggerAuthenticationSpec{HashiCorpVault: &tidalv1alpha1.HashiCorpVault{Address: v.Addr,
				Authentication: tidalv1alpha1.VaultAuthenticationToken, Credential: &tidalv1alpha1.VaultCredential{Token: testvault.RootToken},
				Secrets: secrets}}}
		if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return &tidalv1alpha1.AuthenticationRef{Name: name}
	}
	r := &triggers.Resolver{Kube: e.Cluster.Client, Tidal: e.Tidal}
	params, err := r.AuthParams(ctx, e.NS, create("vault-pki", secret("cert", "certificate", "worker"),
		secret("key", "private_key", "worker"), secret("ca", "issuing_ca", "worker")), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if params["ca"] != strings.TrimSpace(string(caPEM)) {
		t.Errorf("ca parameter is not the engine's CA")
	}
	block, _ := pem.Decode([]byte(params["cert"]))
	if block == nil {
		t.Fatalf("cert parameter is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "worker.internal"}); err != nil {
		t.Errorf("the issued certificate does not verify for worker.internal against the engine's CA: %v", err)
	}
	if cert.Subject.CommonName != "worker.example.com" || !slices.Contains(cert.DNSNames, "worker.example.com") {
		t.Errorf("certificate for %q with SANs %v, want worker.example.com", cert.Subject.CommonName, cert.DNSNames)
	}
	if life := cert.NotAfter.Sub(cert.NotBefore); life > 2*time.Hour {
		t.Errorf("certificate lives %v; pkiData.ttl asked 1h", life)
	}
	// Each secret of type pki is its own issue request (as in KEDA): certificate and private_key here come from
	// two requests, so only the key of one request would pair with its certificate. Check the key is a usable
	// private key of the same kind instead.
	if kb, _ := pem.Decode([]byte(params["key"])); kb == nil || !strings.Contains(kb.Type, "PRIVATE KEY") {
		t.Errorf("key parameter is not a PEM private key")
	}

	_, err = r.AuthParams(ctx, e.NS, create("vault-pki-bad", secret("cert", "certificate", "nobody")), noEnv)
	if err == nil || !strings.Contains(err.Error(), "pki/issue/nobody") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("unknown role: err = %v, want one naming the path and HTTP 400", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), testvault.RootToken) {
		t.Fatalf("the error shows a secret")
	}
}

// authentication approle logs in with the role ID (role) and the secret ID read from a Secret; a wrong secret ID
// is an error naming the login path and Vault's status, never the ID.
func TestVaultAppRole(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	v := testvault.Start(t, e.Cluster.Client, e.Cluster.Config)
	v.PutKV2(t, "queue", map[string]any{"password": "approle-s3cret"})
	roleID, secretID := v.EnableAppRole(t)
	for name, id := range map[string]string{"approle": secretID, "approle-wrong": "not-the-secret-id"} {
		if _, err := e.Cluster.Client.CoreV1().Secrets(e.NS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name},
			StringData: map[string]string{"secret-id": id}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name, secretName string) *tidalv1alpha1.AuthenticationRef {
		ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.NS},
			Spec: tidalv1alpha1.TriggerAuthenticationSpec{HashiCorpVault: &tidalv1alpha1.HashiCorpVault{Address: v.Addr,
				Authentication: tidalv1alpha1.VaultAuthenticationAppRole, Role: roleID,
				Credential: &tidalv1alpha1.VaultCredential{SecretID: &tidalv1alpha1.VaultSecretIDSource{
					ValueFrom: tidalv1alpha1.ValueFromSecret{SecretKeyRef: tidalv1alpha1.SecretKeyRef{Name: secretName, Key: "secret-id"}}}},
				Secrets: []tidalv1alpha1.VaultSecret{{Parameter: "password", Path: "secret/data/queue", Key: "password",
					Type: tidalv1alpha1.VaultSecretTypeSecretV2}}}}}
		if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return &tidalv1alpha1.AuthenticationRef{Name: name}
	}
	r := &triggers.Resolver{Kube: e.Cluster.Client, Tidal: e.Tidal}
	params, err := r.AuthParams(ctx, e.NS, create("vault-approle", "approle"), noEnv)
	if err != nil || params["password"] != "approle-s3cret" {
		t.Fatalf("approle: err = %v, password read = %t", err, params["password"] == "approle-s3cret")
	}
	_, err = r.AuthParams(ctx, e.NS, create("vault-approle-wrong", "approle-wrong"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "auth/approle/login") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("wrong secret ID: err = %v, want one naming auth/approle/login and HTTP 400", err)
	}
	if strings.Contains(err.Error(), "not-the-secret-id") || strings.Contains(err.Error(), secretID) {
		t.Fatalf("the error shows a secret ID")
	}
	_, err = r.AuthParams(ctx, e.NS, create("vault-approle-missing", "no-such-secret"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "spec.hashiCorpVault.credential.secretId") {
		t.Fatalf("missing Secret: err = %v, want one naming spec.hashiCorpVault.credential.secretId", err)
	}
}
