package stores

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/awssmfake"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/gcpsmfake"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/keyvaultfake"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers/gcp/monitoringfake"
)

// cloudCase is one cloud store with its fake, reached through the store's section as an authentication sets it.
type cloudCase struct {
	// store reads param "password" (and, for some, more); wrong is the same section with wrong credentials.
	store, wrong Store
	// hc reaches the fake.
	hc *http.Client
	// set publishes a new value of the secret behind "password".
	set func(value string)
	// down makes the store unreachable.
	down func()
	// wrongErr is what the error of wrong must say: the field and the provider's status.
	wrongErr []string
	// secrets must never appear in an error: credentials of both sections.
	secrets []string
}

func secretRef(name, key string) tidalv1alpha1.ValueFromSecret {
	return tidalv1alpha1.ValueFromSecret{SecretKeyRef: tidalv1alpha1.SecretKeyRef{Name: name, Key: key}}
}

func createSecret(t *testing.T, e *testenv.Env, name string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.NS}, StringData: data}
	if _, err := e.Cluster.Client.CoreV1().Secrets(e.NS).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// cloudCases sets up each store against its fake, with its credentials in Secrets of e's namespace. The
// "password" secret holds "v1" at first.
func cloudCases(t *testing.T, e *testenv.Env) map[string]func(t *testing.T) cloudCase {
	return map[string]func(t *testing.T) cloudCase{
		"aws static keys":   func(t *testing.T) cloudCase { return awsCase(t, e, false) },
		"aws session token": func(t *testing.T) cloudCase { return awsCase(t, e, true) },
		"gcp service account": func(t *testing.T) cloudCase {
			f := gcpsmfake.New(t, "tidal-proj")
			f.Add("password", "v1")
			f.Add("username", "app")
			other, _ := monitoringfake.ServiceAccount(t, f.Project, "http://127.0.0.1:1/token") // another key
			createSecret(t, e, "gcp-key", map[string]string{"key.json": f.Credentials, "other.json": other})
			spec := func(key string) Store {
				return &GCPSecretManager{Spec: &tidalv1alpha1.GCPSecretManager{
					Credentials: &tidalv1alpha1.GCPCredentials{ClientSecret: tidalv1alpha1.GCPSecretmanagerClientSecret{ValueFrom: secretRef("gcp-key", key)}},
					Secrets: []tidalv1alpha1.GCPSecretManagerSecret{
						{Parameter: "password", ID: "password"}, {Parameter: "username", ID: "username", Version: "1"}},
				}}
			}
			return cloudCase{store: spec("key.json"), wrong: spec("other.json"), hc: f.HTTPClient(),
				set: func(v string) { f.Add("password", v) }, down: f.Stop,
				wrongErr: []string{"secrets[0]", "gRPC Unauthenticated"}, secrets: []string{monitoringfake.PrivateKeyLine(t, f.Credentials), monitoringfake.PrivateKeyLine(t, other)}}
		},
		"azure service principal": func(t *testing.T) cloudCase {
			f := keyvaultfake.New(t, keyvaultfake.Config{})
			f.Set("password", "v1")
			f.Set("username", "app")
			createSecret(t, e, "akv-sp", map[string]string{"clientSecret": f.ClientSecret, "wrong": "cs~wrong-secret-value"})
			spec := func(key string) Store {
				return &AzureKeyVault{Spec: &tidalv1alpha1.AzureKeyVault{VaultURI: f.VaultURI,
					Credentials: &tidalv1alpha1.AzureKeyVaultCredentials{ClientID: f.ClientID, TenantID: f.TenantID,
						ClientSecret: &tidalv1alpha1.AzureKeyVaultClientSecret{ValueFrom: secretRef("akv-sp", key)}},
					Cloud:   &tidalv1alpha1.AzureKeyVaultCloudInfo{Type: "AzurePublicCloud"},
					Secrets: []tidalv1alpha1.AzureKeyVaultSecret{{Parameter: "password", Name: "password"}, {Parameter: "username", Name: "username"}},
				}}
			}
			return cloudCase{store: spec("clientSecret"), wrong: spec("wrong"), hc: f.HTTPClient(),
				set: func(v string) { f.Set("password", v) }, down: f.Close,
				wrongErr: []string{"secrets[0]", "HTTP 401", "AADSTS7000215"}, secrets: []string{f.ClientSecret, "cs~wrong-secret-value"}}
		},
	}
}

func awsCase(t *testing.T, e *testenv.Env, withToken bool) cloudCase {
	f := awssmfake.New(t, "eu-west-1")
	f.Put("password", "v1")
	f.Put("db", `{"username":"app"}`)
	name := "aws-keys"
	if withToken {
		name = "aws-keys-token"
	}
	createSecret(t, e, name, map[string]string{"id": f.AccessKeyID, "secret": f.SecretAccessKey, "wrong": "wrong-secret-access-key", "token": "session-token-value"})
	spec := func(secretKey string) Store {
		creds := &tidalv1alpha1.AwsSecretManagerCredentials{
			AccessKey:       &tidalv1alpha1.AwsSecretManagerValue{ValueFrom: secretRef(name, "id")},
			AccessSecretKey: &tidalv1alpha1.AwsSecretManagerValue{ValueFrom: secretRef(name, secretKey)},
		}
		if withToken {
			creds.AccessToken = &tidalv1alpha1.AwsSecretManagerValue{ValueFrom: secretRef(name, "token")}
		}
		return &AWSSecretManager{Spec: &tidalv1alpha1.AwsSecretManager{Region: "eu-west-1", Credentials: creds,
			Secrets: []tidalv1alpha1.AwsSecretManagerSecret{
				{Parameter: "password", Name: "password", VersionStage: "AWSCURRENT"}, {Parameter: "username", Name: "db", SecretKey: "username"}},
		}}
	}
	return cloudCase{store: spec("secret"), wrong: spec("wrong"), hc: f.HTTPClient(),
		set: func(v string) { f.Put("password", v) }, down: f.Close,
		wrongErr: []string{"secrets[0]", "HTTP 403 InvalidSignatureException"}, secrets: []string{f.SecretAccessKey, "wrong-secret-access-key", "session-token-value"}}
}

// clock is a settable clock for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Each cloud store resolves its parameters with its credentials read from Secrets; the cache refreshes them once
// the TTL's refresh point passes; when the store is down the last good values are served with a *StaleError
// naming the field until the TTL ends, then the error alone; wrong credentials give an error naming the field
// and the provider's status. No error carries a credential or a value.
func TestCloudStores(t *testing.T) {
	e := testenv.New(t)
	for name, setup := range cloudCases(t, e) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := setup(t)
			clk := &clock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
			const ttl = 10 * time.Minute
			cache := NewCache(ttl, clk.Now)
			d := Deps{Kube: e.Cluster.Client, Namespace: e.NS, Now: clk.Now, HTTPClient: c.hc}
			key := Key{Kind: tidalv1alpha1.KindTriggerAuthentication, Namespace: e.NS, Name: "auth", ResourceVersion: "1", Field: c.store.Field()}
			get := func() (map[string]string, error) {
				v, _, err := cache.Get(ctx, key, func(ctx context.Context) (map[string]string, error) { return c.store.Read(ctx, d) })
				return v, err
			}
			noSecret := func(err error) {
				t.Helper()
				if err == nil {
					return
				}
				for _, s := range append(c.secrets, "v1", "v2") {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error carries a secret or value: %v", err)
					}
				}
			}

			v, err := get()
			if err != nil || v["password"] != "v1" || v["username"] != "app" {
				t.Fatalf("first read = %v, %v; want password v1, username app", keys(v), err)
			}
			c.set("v2")
			clk.Add(ttl / 4)
			if v, err := get(); err != nil || v["password"] != "v1" {
				t.Fatalf("within the TTL: password changed or error (%v)", err)
			}
			clk.Add(ttl/4 + time.Second)
			if v, err := get(); err != nil || v["password"] != "v2" {
				t.Fatalf("after the refresh point: password not refreshed (%v)", err)
			}

			_, err = c.wrong.Read(ctx, d)
			for _, want := range c.wrongErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("wrong credentials: error = %v, want it to say %q", err, want)
				}
			}
			noSecret(err)

			c.down()
			clk.Add(ttl/2 + time.Second)
			v, err = get()
			var stale *StaleError
			if !errors.As(err, &stale) || v["password"] != "v2" {
				t.Fatalf("store down within the TTL: got %v, %v; want the last good values with a *StaleError", keys(v), err)
			}
			if stale.Field != c.store.Field() || !strings.Contains(err.Error(), c.store.Field()) {
				t.Errorf("stale error does not name %s: %v", c.store.Field(), err)
			}
			noSecret(err)
			clk.Add(ttl)
			v, err = get()
			if err == nil || errors.As(err, &stale) || v != nil {
				t.Fatalf("store down past the TTL: got %v, %v; want the store's error alone", keys(v), err)
			}
			noSecret(err)

		})
	}
}

// Missing or malformed sections give errors naming the field, before any request.
func TestCloudStoresRefuseIncompleteSections(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	createSecret(t, e, "creds", map[string]string{"a": "x", "json": "not json at all"})
	d := Deps{Kube: e.Cluster.Client, Namespace: e.NS}
	sec := []tidalv1alpha1.AwsSecretManagerSecret{{Parameter: "p", Name: "n"}}
	aws := func(c *tidalv1alpha1.AwsSecretManagerCredentials, s []tidalv1alpha1.AwsSecretManagerSecret) Store {
		return &AWSSecretManager{Spec: &tidalv1alpha1.AwsSecretManager{Region: "eu-west-1", Credentials: c, Secrets: s}}
	}
	val := func(name, key string) *tidalv1alpha1.AwsSecretManagerValue {
		return &tidalv1alpha1.AwsSecretManagerValue{ValueFrom: secretRef(name, key)}
	}
	for _, tc := range []struct {
		name    string
		store   Store
		wantErr string
	}{
		{"aws no secrets", aws(&tidalv1alpha1.AwsSecretManagerCredentials{AccessKey: val("creds", "a"), AccessSecretKey: val("creds", "a")}, nil), "secrets: at least one"},
		{"aws no credentials", aws(nil, sec), "credentials: required"},
		{"aws no secret key", aws(&tidalv1alpha1.AwsSecretManagerCredentials{AccessKey: val("creds", "a")}, sec), "credentials.accessSecretKey: required"},
		{"aws missing Secret", aws(&tidalv1alpha1.AwsSecretManagerCredentials{AccessKey: val("absent", "a"), AccessSecretKey: val("creds", "a")}, sec),
			`credentials.accessKey.valueFrom.secretKeyRef: secret "absent"`},
		{"aws missing key", aws(&tidalv1alpha1.AwsSecretManagerCredentials{AccessKey: val("creds", "nope"), AccessSecretKey: val("creds", "a")}, sec),
			`credentials.accessKey.valueFrom.secretKeyRef: secret "creds" has no key "nope"`},
		{"aws pod identity", &AWSSecretManager{Spec: &tidalv1alpha1.AwsSecretManager{PodIdentity: &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS}, Secrets: sec}},
			"spec.awsSecretManager.podIdentity: provider aws: no identity provider configured"},
		{"aws secret without name", aws(&tidalv1alpha1.AwsSecretManagerCredentials{AccessKey: val("creds", "a"), AccessSecretKey: val("creds", "a")},
			[]tidalv1alpha1.AwsSecretManagerSecret{{Parameter: "p"}}), "secrets[0].name: required"},
		{"gcp bad key document", &GCPSecretManager{Spec: &tidalv1alpha1.GCPSecretManager{
			Credentials: &tidalv1alpha1.GCPCredentials{ClientSecret: tidalv1alpha1.GCPSecretmanagerClientSecret{ValueFrom: secretRef("creds", "json")}},
			Secrets:     []tidalv1alpha1.GCPSecretManagerSecret{{Parameter: "p", ID: "i"}}}}, "credentials.clientSecret: not a Google credentials JSON document"},
		{"gcp no credentials", &GCPSecretManager{Spec: &tidalv1alpha1.GCPSecretManager{Secrets: []tidalv1alpha1.GCPSecretManagerSecret{{Parameter: "p", ID: "i"}}}},
			"credentials: required"},
		{"azure no client secret", &AzureKeyVault{Spec: &tidalv1alpha1.AzureKeyVault{VaultURI: "https://v.vault.azure.net",
			Credentials: &tidalv1alpha1.AzureKeyVaultCredentials{ClientID: "c", TenantID: "t"},
			Secrets:     []tidalv1alpha1.AzureKeyVaultSecret{{Parameter: "p", Name: "n"}}}}, "credentials.clientSecret: required"},
		{"azure private cloud without endpoints", &AzureKeyVault{Spec: &tidalv1alpha1.AzureKeyVault{VaultURI: "https://v.vault.azure.net",
			Credentials: &tidalv1alpha1.AzureKeyVaultCredentials{ClientID: "c", TenantID: "t", ClientSecret: &tidalv1alpha1.AzureKeyVaultClientSecret{ValueFrom: secretRef("creds", "a")}},
			Cloud:       &tidalv1alpha1.AzureKeyVaultCloudInfo{Type: "Private"},
			Secrets:     []tidalv1alpha1.AzureKeyVaultSecret{{Parameter: "p", Name: "n"}}}}, "cloud: keyVaultResourceURL and activeDirectoryEndpoint are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.store.Read(ctx, d)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "not json at all") {
				t.Errorf("error quotes a credential: %v", err)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
