package stores

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity/googlefake"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/awssmfake"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/gcpsmfake"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/keyvaultfake"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth/awstest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// identityEnv is Tidal's identity in e's namespace: the service account "tidal" it runs as, and an
// identity.Provider requesting that account's tokens from the dev cluster's TokenRequest API (its log observed).
type identityEnv struct {
	e      *testenv.Env
	p      *identity.Provider
	logs   *observer.ObservedLogs
	user   string // the service account's user name, as TokenReview reports it
	mu     sync.Mutex
	tokens []string // every token a fake identity service was shown
}

func newIdentityEnv(t *testing.T, e *testenv.Env) *identityEnv {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tidal"}}
	if _, err := e.Cluster.Client.CoreV1().ServiceAccounts(e.NS).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	log, logs := scalertest.ObservedLogger()
	return &identityEnv{e: e, logs: logs, user: "system:serviceaccount:" + e.NS + ":tidal",
		p: &identity.Provider{Tokens: &identity.Tokens{Kube: e.Cluster.Client, Logger: log}, SelfNamespace: e.NS, SelfServiceAccount: "tidal"}}
}

// review checks a token the way a cloud identity service does (the dev cluster's TokenReview for audience),
// remembering it so tests can look for it in errors and logs.
func (ie *identityEnv) review(token, audience string) (string, error) {
	ie.mu.Lock()
	ie.tokens = append(ie.tokens, token)
	ie.mu.Unlock()
	return testenv.ReviewToken(context.Background(), ie.e.Cluster.Client, token, audience)
}

// deps are the store dependencies with the provider resolving podIdentity as Tidal's own.
func (ie *identityEnv) deps(hcDeps Deps) Deps {
	hcDeps.Kube, hcDeps.Namespace = ie.e.Cluster.Client, ie.e.NS
	hcDeps.PodIdentity = func(ctx context.Context, pi *tidalv1alpha1.AuthPodIdentity) (*scalers.PodIdentity, error) {
		return ie.p.Resolve(ctx, pi, ie.e.NS, "")
	}
	return hcDeps
}

// noToken fails when a token shown to an identity service is in errText or the provider's log.
func (ie *identityEnv) noToken(t *testing.T, errText string) {
	t.Helper()
	ie.mu.Lock()
	tokens := slices.Clone(ie.tokens)
	ie.mu.Unlock()
	for _, tok := range tokens {
		scalertest.AssertNoSecret(t, tok, errText, ie.logs.All())
	}
}

// awsSecretManager.podIdentity aws with roleArn: Tidal assumes the role at STS (a fake speaking the query
// protocol, checking the token with the dev cluster's TokenReview for audience sts.amazonaws.com and the role's
// trust) with its own service account's TokenRequest token, and Secrets Manager (awssmfake, the real SDK as
// client) serves the secret to the temporary credentials STS issued. A role that does not trust Tidal's account
// gives an error naming the section and AccessDenied; identityOwner workload and aws-eks are refused naming
// podIdentity; no token reaches an error or a log.
func TestAWSSecretManagerPodIdentity(t *testing.T) {
	e := testenv.New(t)
	ie := newIdentityEnv(t, e)
	const role, untrusted = "arn:aws:iam::000000000000:role/secrets-reader", "arn:aws:iam::000000000000:role/other"
	sts := &awstest.STS{Verify: func(roleArn, token string) (string, *awstest.QueryError) {
		user, err := ie.review(token, identity.AWSAudience)
		if err != nil || user == "" {
			return "", &awstest.QueryError{Status: 400, Code: "InvalidIdentityToken", Message: "Incorrect token audience"}
		}
		if roleArn != role || user != ie.user {
			return "", &awstest.QueryError{Status: 403, Code: "AccessDenied", Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
		}
		return user, nil
	}}
	stsSrv := httptest.NewServer(sts)
	t.Cleanup(stsSrv.Close)
	ie.p.AWSSTSEndpoint = stsSrv.URL
	f := awssmfake.New(t, "eu-west-1")
	f.TrustSTS(sts)
	f.Put("password", "v1")
	d := ie.deps(Deps{HTTPClient: f.HTTPClient()})
	ctx := context.Background()
	store := func(pi tidalv1alpha1.AuthPodIdentity) Store {
		return &AWSSecretManager{Spec: &tidalv1alpha1.AwsSecretManager{Region: "eu-west-1", PodIdentity: &pi,
			Secrets: []tidalv1alpha1.AwsSecretManagerSecret{{Parameter: "password", Name: "password"}}}}
	}
	r, u := role, untrusted

	v, err := store(tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, RoleArn: &r}).Read(ctx, d)
	if err != nil || v["password"] != "v1" {
		t.Fatalf("roleArn: got %v, %v; want password v1", keys(v), err)
	}
	// Without region, the operator's AWS_REGION is the region of both STS and Secrets Manager.
	t.Setenv("AWS_REGION", "eu-west-1")
	noRegion := store(tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, RoleArn: &r}).(*AWSSecretManager)
	noRegion.Spec.Region = ""
	if v, err := noRegion.Read(ctx, d); err != nil || v["password"] != "v1" {
		t.Fatalf("roleArn, region from AWS_REGION: got %v, %v; want password v1", keys(v), err)
	}
	if got := f.Roles(); !slices.Equal(got, []string{role, role}) {
		t.Errorf("Secrets Manager was read as %v, want %s twice with STS's credentials", got, role)
	}
	if sts.Calls() != 2 {
		t.Errorf("STS answered %d AssumeRoleWithWebIdentity calls, want 2", sts.Calls())
	}

	_, err = store(tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, RoleArn: &u}).Read(ctx, d)
	for _, want := range []string{"spec.awsSecretManager.secrets[0]", "AccessDenied", "sts:AssumeRoleWithWebIdentity"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("untrusted role: error = %v, want it to say %q", err, want)
		}
	}
	if err != nil {
		ie.noToken(t, err.Error())
	}

	workload := "workload"
	for _, pi := range []tidalv1alpha1.AuthPodIdentity{
		{Provider: tidalv1alpha1.PodIdentityProviderAWS, IdentityOwner: &workload},
		{Provider: tidalv1alpha1.PodIdentityProviderAWSEKS},
	} {
		_, err := store(pi).Read(ctx, d)
		if err == nil || !strings.Contains(err.Error(), "spec.awsSecretManager.podIdentity: identityOwner workload") {
			t.Errorf("%+v: error = %v, want it refused naming spec.awsSecretManager.podIdentity", pi, err)
		}
	}
	_, err = store(tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderGCP}).Read(ctx, d)
	if err == nil || !strings.Contains(err.Error(), "spec.awsSecretManager.podIdentity.provider") {
		t.Errorf("provider gcp: error = %v, want it refused naming spec.awsSecretManager.podIdentity.provider", err)
	}
	ie.noToken(t, "")
}

// azureKeyVault.podIdentity azure-workload: Tidal presents its own service account's TokenRequest token
// (audience api://AzureADTokenExchange) as the federated client assertion of identityId at Entra ID
// (keyvaultfake, checking the assertion with the dev cluster's TokenReview), and reads the vault with the access
// token issued, through the real azidentity and azsecrets clients. An application not federated with Tidal's
// account gives an error naming the section and AADSTS700213; another provider is refused naming
// podIdentity.provider; no token reaches an error or a log.
func TestAzureKeyVaultPodIdentity(t *testing.T) {
	e := testenv.New(t)
	ie := newIdentityEnv(t, e)
	const app, stranger = "6f1c2a9e-0d4b-4e53-9a51-2b7d3c9e8f10", "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
	f := keyvaultfake.New(t, keyvaultfake.Config{})
	f.Set("password", "v1")
	f.Federate(app, func(assertion string) bool {
		user, err := ie.review(assertion, identity.AzureAudience)
		return err == nil && user == ie.user
	})
	f.Federate(stranger, func(assertion string) bool {
		user, err := ie.review(assertion, identity.AzureAudience)
		return err == nil && user == "system:serviceaccount:elsewhere:someone"
	})
	ie.p.HTTPClient = f.HTTPClient()
	d := ie.deps(Deps{HTTPClient: f.HTTPClient()})
	ctx := context.Background()
	tenant := f.TenantID
	store := func(pi tidalv1alpha1.AuthPodIdentity) Store {
		return &AzureKeyVault{Spec: &tidalv1alpha1.AzureKeyVault{VaultURI: f.VaultURI, PodIdentity: &pi,
			Secrets: []tidalv1alpha1.AzureKeyVaultSecret{{Parameter: "password", Name: "password"}}}}
	}
	workload := func(client string) tidalv1alpha1.AuthPodIdentity {
		return tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAzureWorkload, IdentityID: &client, IdentityTenantID: &tenant}
	}

	v, err := store(workload(app)).Read(ctx, d)
	if err != nil || v["password"] != "v1" {
		t.Fatalf("azure-workload: got %v, %v; want password v1", keys(v), err)
	}
	if f.TokenCalls.Load() != 1 {
		t.Errorf("Entra ID answered %d token requests, want 1", f.TokenCalls.Load())
	}

	_, err = store(workload(stranger)).Read(ctx, d)
	for _, want := range []string{"spec.azureKeyVault.secrets[0]", "AADSTS700213"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("application not federated with Tidal: error = %v, want it to say %q", err, want)
		}
	}
	if err != nil {
		ie.noToken(t, err.Error())
	}

	_, err = store(tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS}).Read(ctx, d)
	if err == nil || !strings.Contains(err.Error(), "spec.azureKeyVault.podIdentity.provider") {
		t.Errorf("provider aws: error = %v, want it refused naming spec.azureKeyVault.podIdentity.provider", err)
	}
	ie.noToken(t, "")
}

// gcpSecretManager.podIdentity gcp: Tidal exchanges its own service account's TokenRequest token at Google's STS
// (googlefake, checking it with the dev cluster's TokenReview for the pool provider's audience), impersonates
// the Google service account, and reads Secret Manager (gcpsmfake, the real gRPC client) with the access token
// issued, in the project Tidal was given. A pool provider Tidal's account is not a member of gives an error
// naming the section and spec.podIdentity; without a project the error names it; no token reaches an error or
// a log.
func TestGCPSecretManagerPodIdentity(t *testing.T) {
	e := testenv.New(t)
	ie := newIdentityEnv(t, e)
	const pool = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/tidal/providers/k8s"
	const gsa = "secrets-reader@tidal-proj.iam.gserviceaccount.com"
	g := googlefake.New(t, e.Cluster.Client, pool, map[string]bool{ie.user: true}, gsa)
	f := gcpsmfake.New(t, "tidal-proj")
	f.Add("password", "v1")
	f.AccessToken = g.Impersonated
	ie.p.GCP = identity.GCPFederation{Audience: pool, ServiceAccount: gsa, TokenURL: g.TokenURL(), ImpersonationURL: g.URL}
	d := ie.deps(Deps{HTTPClient: f.HTTPClient(), GCPProject: "tidal-proj"})
	ctx := context.Background()
	store := &GCPSecretManager{Spec: &tidalv1alpha1.GCPSecretManager{
		PodIdentity: &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderGCP},
		Secrets:     []tidalv1alpha1.GCPSecretManagerSecret{{Parameter: "password", ID: "password"}}}}

	v, err := store.Read(ctx, d)
	if err != nil || v["password"] != "v1" {
		t.Fatalf("gcp: got %v, %v; want password v1", keys(v), err)
	}

	noProject := d
	noProject.GCPProject = ""
	_, err = store.Read(ctx, noProject)
	if err == nil || !strings.Contains(err.Error(), "spec.gcpSecretManager.podIdentity: Tidal was given no Google Cloud project") {
		t.Errorf("no project: error = %v, want it to name spec.gcpSecretManager.podIdentity and the project", err)
	}

	ie.p.GCP.Audience = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/tidal/providers/other"
	_, err = store.Read(ctx, d)
	for _, want := range []string{"spec.gcpSecretManager.secrets[0]", "spec.podIdentity (provider gcp"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pool provider without Tidal's account: error = %v, want it to say %q", err, want)
		}
	}
	if len(g.Presented()) == 0 {
		t.Fatal("STS saw no token")
	}
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	for _, tok := range g.Presented() {
		scalertest.AssertNoSecret(t, tok, errText, ie.logs.All())
	}

	_, err = store.Read(ctx, Deps{Kube: e.Cluster.Client, Namespace: e.NS})
	if err == nil || !strings.Contains(err.Error(), "spec.gcpSecretManager.podIdentity: provider gcp: no identity provider configured") {
		t.Errorf("no identity provider: error = %v", err)
	}
}
