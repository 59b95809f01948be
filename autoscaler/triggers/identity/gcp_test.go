package identity_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/gcp"
	"github.com/tidalscale/tidal/scalers/gcp/monitoringfake"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// fakeGoogle is Google's Security Token Service (POST /v1/token, the RFC 8693 token exchange as
// sts.googleapis.com speaks it) for one workload identity pool provider whose members are the Kubernetes users
// in members, tokens checked with the dev cluster's TokenReview for the provider's default audience; and IAM
// credentials' generateAccessToken for one Google service account a federated identity may impersonate.
type fakeGoogle struct {
	srv       *httptest.Server
	mu        sync.Mutex
	federated map[string]bool // federated access tokens
	access    map[string]bool // service-account access tokens
	presented []string
}

func newFakeGoogle(t *testing.T, e *testenv.Env, provider string, members map[string]bool, serviceAccount string) *fakeGoogle {
	f := &fakeGoogle{federated: map[string]bool{}, access: map[string]bool{}}
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
		user, err := review(e.Cluster.Client, tok, "https:"+provider)
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
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// podIdentity gcp: Tidal exchanges a TokenRequest token of its own service account (audience: the pool
// provider's default, https://iam.googleapis.com/...) at Google's STS (a fake speaking the token exchange, the
// oauth2 externalaccount package as client), impersonates the Google service account with the federated token,
// and a Cloud Monitoring client built with gcp.Credentials reads with the access token issued. Without
// impersonation the federated token itself is used. A provider Tidal's account is not a member of fails naming
// spec.podIdentity and the provider, without the token in the error or the logs.
func TestGCPWorkloadIdentityFederation(t *testing.T) {
	e := testenv.New(t)
	kube := e.Cluster.Client
	tidalUser := serviceAccount(t, kube, e.NS, "tidal", nil)
	const pool = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/tidal/providers/k8s"
	const gsa = "reader@my-project.iam.gserviceaccount.com"
	f := newFakeGoogle(t, e, pool, map[string]bool{tidalUser: true}, gsa)
	mon := monitoringfake.New(t, "my-project", func(context.Context, *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
		return &monitoringpb.ListTimeSeriesResponse{TimeSeries: []*monitoringpb.TimeSeries{{Points: []*monitoringpb.Point{{
			Interval: &monitoringpb.TimeInterval{EndTime: timestamppb.Now()},
			Value:    &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: 7}}}}}}}, nil
	})
	// Monitoring accepts the kind of access token the running case must end with.
	var accepted func() map[string]bool
	mon.AccessToken = func(tok string) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return accepted != nil && accepted()[tok]
	}
	p, logs := provider(kube, e.NS, "tidal")
	ctx := context.Background()
	gcpPI := &tidalv1alpha1.AuthPodIdentity{Provider: tidalv1alpha1.PodIdentityProviderGCP}

	read := func(t *testing.T, fed identity.GCPFederation) error {
		q := *p
		q.GCP = fed
		pi, err := q.Resolve(ctx, gcpPI, e.NS, "")
		if err != nil {
			t.Fatal(err)
		}
		creds := gcp.Credentials{Identity: pi}
		if err := creds.Load(); err != nil {
			t.Fatal(err)
		}
		c, err := monitoring.NewMetricClient(ctx, append(mon.ClientOptions(), creds.ClientOption())...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		it := c.ListTimeSeries(ctx, &monitoringpb.ListTimeSeriesRequest{Name: "projects/my-project", Filter: `metric.type="x"`,
			Interval: &monitoringpb.TimeInterval{EndTime: timestamppb.Now()}})
		ts, err := it.Next()
		if err != nil {
			return err
		}
		if v := ts.GetPoints()[0].GetValue().GetInt64Value(); v != 7 {
			t.Fatalf("read %d, want 7", v)
		}
		return nil
	}

	for _, tc := range []struct {
		name   string
		fed    identity.GCPFederation
		tokens func() map[string]bool
	}{
		{"impersonating a service account", identity.GCPFederation{Audience: pool, ServiceAccount: gsa, TokenURL: f.srv.URL + "/v1/token", ImpersonationURL: f.srv.URL},
			func() map[string]bool { return f.access }},
		{"the federated token itself", identity.GCPFederation{Audience: pool, TokenURL: f.srv.URL + "/v1/token"},
			func() map[string]bool { return f.federated }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			accepted = tc.tokens
			f.mu.Unlock()
			if err := read(t, tc.fed); err != nil {
				t.Fatalf("Monitoring read with the federated identity: %v", err)
			}
		})
	}

	err := read(t, identity.GCPFederation{Audience: "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/tidal/providers/other",
		TokenURL: f.srv.URL + "/v1/token"})
	if err == nil || !strings.Contains(err.Error(), "spec.podIdentity (provider gcp") {
		t.Fatalf("error %v, want one naming spec.podIdentity (provider gcp", err)
	}
	f.mu.Lock()
	presented := append([]string(nil), f.presented...)
	f.mu.Unlock()
	if len(presented) == 0 {
		t.Fatal("STS saw no token")
	}
	for _, tok := range presented {
		scalertest.AssertNoSecret(t, tok, err.Error(), logs.All())
	}
	if _, err := p.Resolve(ctx, gcpPI, e.NS, ""); err == nil || !strings.Contains(err.Error(), "workload identity pool provider") {
		t.Fatalf("no pool provider configured: %v", err)
	}
	aws := gcp.Credentials{Identity: &scalers.PodIdentity{Provider: "aws"}}
	if err := aws.Load(); err == nil || !strings.Contains(err.Error(), "spec.podIdentity: provider aws does not apply") {
		t.Fatalf("aws identity on a GCP trigger: %v", err)
	}
}
