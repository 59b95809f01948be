package identity_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth/awstest"
	"github.com/tidalscale/tidal/scalers/awssqs"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// awsFakes is STS (AssumeRoleWithWebIdentity, trusting each role to one service account, checking tokens with
// the dev cluster's TokenReview for audience) and an SQS JSON endpoint that accepts only credentials that STS
// issued, answering GetQueueAttributes with 7 messages.
type awsFakes struct {
	sts     *awstest.STS
	stsURL  string
	sqsURL  string
	mu      sync.Mutex
	tokens  []string // every web identity token presented
	readers []string // the role of each authenticated SQS call
}

func newAWSFakes(t *testing.T, e *testenv.Env, audience string, trust map[string]string) *awsFakes {
	f := &awsFakes{}
	f.sts = &awstest.STS{Verify: func(role, token string) (string, *awstest.QueryError) {
		f.mu.Lock()
		f.tokens = append(f.tokens, token)
		f.mu.Unlock()
		user, err := review(e.Cluster.Client, token, audience)
		if err != nil || user == "" {
			return "", &awstest.QueryError{Status: 400, Code: "InvalidIdentityToken", Message: "Incorrect token audience"}
		}
		if trust[role] != user {
			return "", &awstest.QueryError{Status: 403, Code: "AccessDenied", Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
		}
		return user, nil
	}}
	stsSrv := httptest.NewServer(f.sts)
	t.Cleanup(stsSrv.Close)
	sqs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, role, aerr := f.sts.Signed(r)
		if aerr != nil {
			aerr.Write(w)
			return
		}
		var in struct{ AttributeNames []string }
		_ = json.Unmarshal(body, &in)
		f.mu.Lock()
		f.readers = append(f.readers, role)
		f.mu.Unlock()
		out := map[string]string{}
		for _, a := range in.AttributeNames {
			out[a] = "0"
		}
		out["ApproximateNumberOfMessages"] = "7"
		awstest.WriteJSON(w, "application/x-amz-json-1.0", map[string]any{"Attributes": out})
	}))
	t.Cleanup(sqs.Close)
	f.stsURL, f.sqsURL = stsSrv.URL, sqs.URL
	return f
}

func (f *awsFakes) trigger(pi *scalers.PodIdentity) *scalers.TriggerConfig {
	cfg := scalertest.Config(awssqs.Type, "", map[string]string{
		"queueURL": f.sqsURL + "/000000000000/orders", "awsRegion": "eu-west-1", "awsEndpoint": f.sqsURL, "scaleOnInFlight": "false",
	}, nil)
	cfg.PodIdentity = pi
	return cfg
}

// podIdentity aws: identityOwner workload (and aws-eks) assumes the role the scale target's service account is
// annotated with, presenting that account's token; roleArn assumes that role with Tidal's own token. STS (a fake
// speaking the query protocol, the SDK as client) checks each token with the dev cluster's TokenReview for
// audience sts.amazonaws.com and the role's trust, and aws-sqs-queue reads the queue with the temporary
// credentials it issued. A role that does not trust the account, or a token for another audience, fails
// Sample with an error naming spec.podIdentity and the provider; no token reaches an error or a log.
func TestAWSWebIdentity(t *testing.T) {
	e := testenv.New(t)
	kube := e.Cluster.Client
	const workerRole, tidalRole, otherRole = "arn:aws:iam::000000000000:role/worker", "arn:aws:iam::000000000000:role/reader", "arn:aws:iam::000000000000:role/other"
	workerUser := serviceAccount(t, kube, e.NS, "worker", map[string]string{identity.EKSRoleAnnotation: workerRole})
	tidalUser := serviceAccount(t, kube, e.NS, "tidal", nil)
	serviceAccount(t, kube, e.NS, "plain", nil)
	f := newAWSFakes(t, e, identity.AWSAudience, map[string]string{workerRole: workerUser, tidalRole: tidalUser, otherRole: "system:serviceaccount:elsewhere:someone"})
	p, logs := provider(kube, e.NS, "tidal")
	p.AWSSTSEndpoint = f.stsURL
	ctx := context.Background()
	workload := "workload"

	for _, tc := range []struct {
		name     string
		pi       tidalv1alpha1.AuthPodIdentity
		wantRole string
	}{
		{"identityOwner workload", tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, IdentityOwner: &workload}, workerRole},
		{"aws-eks", tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWSEKS}, workerRole},
		{"roleArn", tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, RoleArn: ptr(tidalRole)}, tidalRole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pi, err := p.Resolve(ctx, &tc.pi, e.NS, "worker")
			if err != nil {
				t.Fatal(err)
			}
			s := scalertest.New[scalers.Scaler](t, awssqs.New, f.trigger(pi))
			if v, _ := scalertest.Sample(t, s, s.MetricSpecs()[0].External.Metric.Name); v != 7 {
				t.Fatalf("sample %v, want 7", v)
			}
			f.mu.Lock()
			last := f.readers[len(f.readers)-1]
			f.mu.Unlock()
			if last != tc.wantRole {
				t.Fatalf("SQS was read as %s, want %s", last, tc.wantRole)
			}
		})
	}

	for _, tc := range []struct {
		name, want string
		pi         tidalv1alpha1.AuthPodIdentity
		fakes      *awsFakes
	}{
		{"a role that does not trust the account", "AccessDenied",
			tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, RoleArn: ptr(otherRole)}, f},
		{"an STS expecting another audience", "InvalidIdentityToken",
			tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, RoleArn: ptr(tidalRole)},
			newAWSFakes(t, e, "sts.example.com", map[string]string{tidalRole: tidalUser})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := *p
			q.AWSSTSEndpoint = tc.fakes.stsURL
			pi, err := q.Resolve(ctx, &tc.pi, e.NS, "worker")
			if err != nil {
				t.Fatal(err)
			}
			s := scalertest.New[scalers.Scaler](t, awssqs.New, tc.fakes.trigger(pi))
			_, _, err = s.Sample(ctx)
			if err == nil || !strings.Contains(err.Error(), "spec.podIdentity (provider aws") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sample error %v, want one naming spec.podIdentity (provider aws and %s", err, tc.want)
			}
			tc.fakes.mu.Lock()
			tokens := append([]string(nil), tc.fakes.tokens...)
			tc.fakes.mu.Unlock()
			if len(tokens) == 0 {
				t.Fatal("STS saw no token")
			}
			for _, tok := range tokens {
				scalertest.AssertNoSecret(t, tok, err.Error(), logs.All())
			}
		})
	}

	for _, tc := range []struct {
		name, sa, want string
		pi             tidalv1alpha1.AuthPodIdentity
	}{
		{"workload account without the annotation", "plain", "has no eks.amazonaws.com/role-arn annotation",
			tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, IdentityOwner: &workload}},
		{"roleArn with identityOwner workload", "worker", "exclude each other",
			tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, IdentityOwner: &workload, RoleArn: ptr(tidalRole)}},
		{"not a role ARN", "worker", "want a role ARN",
			tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS, RoleArn: ptr("reader")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Resolve(ctx, &tc.pi, e.NS, tc.sa)
			if err == nil || !strings.Contains(err.Error(), "spec.podIdentity") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming spec.podIdentity and %q", err, tc.want)
			}
		})
	}

	// Without roleArn or identityOwner workload the trigger uses Tidal's own credential chain: no STS call.
	calls := f.sts.Calls()
	pi, err := p.Resolve(ctx, &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderAWS}, e.NS, "worker")
	if err != nil || pi == nil || pi.AWS != nil {
		t.Fatalf("identityOwner keda without roleArn: %+v, %v; want Tidal's own chain", pi, err)
	}
	if f.sts.Calls() != calls {
		t.Fatal("STS was called for Tidal's own chain")
	}
}

func ptr(s string) *string { return &s }
