package triggers_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/awssmfake"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers/awsauth/awstest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// A TriggerAuthentication with an awsSecretManager section, created on the dev cluster, resolves through the
// Resolver: the access keys come from a Secret, the parameters from the Secrets Manager fake (the real SDK on
// its default endpoint), merged with a secretTargetRef parameter; a store that goes down keeps serving the last
// good values with a DegradedError naming the field, never a value, also when logged (what the operator puts in
// its log, events and status is that error's text).
func TestAWSSecretManagerAuthenticationResolves(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	f := awssmfake.New(t, "eu-west-1")
	f.Put("orders/rabbitmq", `{"host":"amqp://app:rabbit-pw@rabbit:5672/"}`)
	f.Put("orders/token", "token-from-aws")
	kube := e.Cluster.Client
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "aws-reader", Namespace: e.NS}, StringData: map[string]string{"id": f.AccessKeyID, "secret": f.SecretAccessKey}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: e.NS}, StringData: map[string]string{"user": "app"}},
	} {
		if _, err := kube.CoreV1().Secrets(e.NS).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ref := func(name, key string) *tidalv1alpha1.AwsSecretManagerValue {
		return &tidalv1alpha1.AwsSecretManagerValue{ValueFrom: tidalv1alpha1.ValueFromSecret{SecretKeyRef: tidalv1alpha1.SecretKeyRef{Name: name, Key: key}}}
	}
	ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "orders-aws", Namespace: e.NS},
		Spec: tidalv1alpha1.TriggerAuthenticationSpec{
			SecretTargetRef: []tidalv1alpha1.AuthSecretTargetRef{{Parameter: "username", Name: "plain", Key: "user"}},
			AwsSecretManager: &tidalv1alpha1.AwsSecretManager{Region: "eu-west-1",
				Credentials: &tidalv1alpha1.AwsSecretManagerCredentials{AccessKey: ref("aws-reader", "id"), AccessSecretKey: ref("aws-reader", "secret")},
				Secrets: []tidalv1alpha1.AwsSecretManagerSecret{
					{Parameter: "host", Name: "orders/rabbitmq", SecretKey: "host"},
					{Parameter: "token", Name: "orders/token"},
				}}}}
	if errs := append(ta.Validate(), tidalv1alpha1.UnsupportedFields(ta)...); len(errs) > 0 {
		t.Fatalf("admission refuses the authentication: %v", errs)
	}
	if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := &triggers.Resolver{Kube: kube, Tidal: e.Tidal, Stores: stores.NewCache(10*time.Minute, clock), StoreHTTPClient: f.HTTPClient()}
	authRef := &tidalv1alpha1.AuthenticationRef{Name: "orders-aws"}
	params, err := r.AuthParams(ctx, e.NS, authRef, noEnv)
	if err != nil || params["host"] != "amqp://app:rabbit-pw@rabbit:5672/" || params["token"] != "token-from-aws" || params["username"] != "app" {
		t.Fatalf("AuthParams = %d params, %v; want host, token from AWS and username from the Secret", len(params), err)
	}

	f.Close()
	now = now.Add(6 * time.Minute) // past the refresh point, within the TTL
	params, err = r.AuthParams(ctx, e.NS, authRef, noEnv)
	if !triggers.IsDegraded(err) || params["token"] != "token-from-aws" {
		t.Fatalf("store down: AuthParams = %d params, %v; want the last good values with a DegradedError", len(params), err)
	}
	if !strings.Contains(err.Error(), "spec.awsSecretManager") {
		t.Errorf("degraded error does not name spec.awsSecretManager: %v", err)
	}
	logger, logs := scalertest.ObservedLogger()
	logger.Warn("secret store degraded", zap.Error(err))
	for _, s := range []string{"rabbit-pw", "token-from-aws", f.SecretAccessKey} {
		scalertest.AssertNoSecret(t, s, err.Error(), logs.All())
	}
	now = now.Add(5 * time.Minute) // past the TTL
	if _, err := r.AuthParams(ctx, e.NS, authRef, noEnv); err == nil || triggers.IsDegraded(err) || !strings.Contains(err.Error(), "spec.awsSecretManager") {
		t.Fatalf("store down past the TTL: %v, want the store's error naming spec.awsSecretManager", err)
	}
}

// An awsSecretManager section with podIdentity aws (roleArn) resolves through the Resolver with its identity
// provider: Tidal's service account's TokenRequest token is exchanged at STS (awstest.STS, trusting the role to
// that account as the dev cluster's TokenReview reports it) and Secrets Manager serves the role's credentials.
func TestAWSSecretManagerPodIdentityResolves(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	kube := e.Cluster.Client
	if _, err := kube.CoreV1().ServiceAccounts(e.NS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tidal"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const role = "arn:aws:iam::000000000000:role/secrets-reader"
	self := "system:serviceaccount:" + e.NS + ":tidal"
	sts := &awstest.STS{Verify: func(roleArn, token string) (string, *awstest.QueryError) {
		user, err := testenv.ReviewToken(context.Background(), kube, token, identity.AWSAudience)
		if err != nil || user != self || roleArn != role {
			return "", &awstest.QueryError{Status: 403, Code: "AccessDenied", Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
		}
		return user, nil
	}}
	stsSrv := httptest.NewServer(sts)
	t.Cleanup(stsSrv.Close)
	f := awssmfake.New(t, "eu-west-1")
	f.TrustSTS(sts)
	f.Put("orders/token", "token-from-aws")
	roleArn := role
	ta := &tidalv1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "orders-aws-identity", Namespace: e.NS},
		Spec: tidalv1alpha1.TriggerAuthenticationSpec{AwsSecretManager: &tidalv1alpha1.AwsSecretManager{Region: "eu-west-1",
			PodIdentity: &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, RoleArn: &roleArn},
			Secrets:     []tidalv1alpha1.AwsSecretManagerSecret{{Parameter: "token", Name: "orders/token"}}}}}
	if errs := append(ta.Validate(), tidalv1alpha1.UnsupportedFields(ta)...); len(errs) > 0 {
		t.Fatalf("admission refuses the authentication: %v", errs)
	}
	if _, err := e.Tidal.TidalV1alpha1().TriggerAuthentications(e.NS).Create(ctx, ta, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := &triggers.Resolver{Kube: kube, Tidal: e.Tidal, StoreHTTPClient: f.HTTPClient(),
		Identity: &identity.Provider{Tokens: &identity.Tokens{Kube: kube}, SelfNamespace: e.NS, SelfServiceAccount: "tidal", AWSSTSEndpoint: stsSrv.URL}}
	params, err := r.AuthParams(ctx, e.NS, &tidalv1alpha1.AuthenticationRef{Name: "orders-aws-identity"}, noEnv)
	if err != nil || params["token"] != "token-from-aws" {
		t.Fatalf("AuthParams = %d params, %v; want token from AWS read as the role", len(params), err)
	}
	if got := f.Roles(); len(got) != 1 || got[0] != role {
		t.Errorf("Secrets Manager was read as %v, want %s", got, role)
	}
}
