package identity_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity/googlefake"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/gcp"
	"github.com/tidalscale/tidal/scalers/gcp/monitoringfake"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

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
	f := googlefake.New(t, kube, pool, map[string]bool{tidalUser: true}, gsa)
	mon := monitoringfake.New(t, "my-project", func(context.Context, *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
		return &monitoringpb.ListTimeSeriesResponse{TimeSeries: []*monitoringpb.TimeSeries{{Points: []*monitoringpb.Point{{
			Interval: &monitoringpb.TimeInterval{EndTime: timestamppb.Now()},
			Value:    &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: 7}}}}}}}, nil
	})
	// Monitoring accepts the kind of access token the running case must end with.
	var (
		mu       sync.Mutex
		accepted func(string) bool
	)
	mon.AccessToken = func(tok string) bool {
		mu.Lock()
		defer mu.Unlock()
		return accepted != nil && accepted(tok)
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
		tokens func(string) bool
	}{
		{"impersonating a service account", identity.GCPFederation{Audience: pool, ServiceAccount: gsa, TokenURL: f.TokenURL(), ImpersonationURL: f.URL},
			f.Impersonated},
		{"the federated token itself", identity.GCPFederation{Audience: pool, TokenURL: f.TokenURL()}, f.Federated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			accepted = tc.tokens
			mu.Unlock()
			if err := read(t, tc.fed); err != nil {
				t.Fatalf("Monitoring read with the federated identity: %v", err)
			}
		})
	}

	err := read(t, identity.GCPFederation{Audience: "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/tidal/providers/other",
		TokenURL: f.TokenURL()})
	if err == nil || !strings.Contains(err.Error(), "spec.podIdentity (provider gcp") {
		t.Fatalf("error %v, want one naming spec.podIdentity (provider gcp", err)
	}
	presented := f.Presented()
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
