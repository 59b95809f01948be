package azurequeue

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure/azurite"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const testConn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5a2V5a2V5;EndpointSuffix=core.windows.net"

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"queueName": "orders"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	auth := map[string]string{"connection": testConn}
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.QueueLength != 5 || m.ActivationQueueLength != 0 || m.QueueLengthStrategy != "all" || m.Connection != testConn {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: base("queueLength", "12", "activationQueueLength", "3", "queueLengthStrategy", "visibleonly"), Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if m.QueueLength != 12 || m.ActivationQueueLength != 3 || m.QueueLengthStrategy != "visibleonly" {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "connectionFromEnv", MD: base("connectionFromEnv", "STORAGE"), Env: map[string]string{"STORAGE": testConn},
			Check: func(t *testing.T, m Metadata) {
				if m.Connection != testConn {
					t.Errorf("connection = %q", m.Connection)
				}
			}},
		{Name: "accountName on the public cloud", MD: base("accountName", "acct"), Check: func(t *testing.T, m Metadata) {
			if m.ServiceURL != "https://acct.queue.core.windows.net" {
				t.Errorf("ServiceURL = %q", m.ServiceURL)
			}
		}},
		{Name: "accountName on a named cloud", MD: base("accountName", "acct", "cloud", "AzureChinaCloud"), Check: func(t *testing.T, m Metadata) {
			if m.ServiceURL != "https://acct.queue.core.chinacloudapi.cn" {
				t.Errorf("ServiceURL = %q", m.ServiceURL)
			}
		}},
		{Name: "accountName on a private cloud", MD: base("accountName", "acct", "cloud", "Private", "endpointSuffix", "queue.local.azurestack.external"),
			Check: func(t *testing.T, m Metadata) {
				if m.ServiceURL != "https://acct.queue.local.azurestack.external" {
					t.Errorf("ServiceURL = %q", m.ServiceURL)
				}
			}},
		{Name: "missing queueName", MD: base("queueName", scalertest.Delete), Auth: auth, WantErr: "queueName"},
		{Name: "blank queueName", MD: base("queueName", " "), Auth: auth, WantErr: "queueName"},
		{Name: "non-numeric queueLength", MD: base("queueLength", "AA"), Auth: auth, WantErr: "queueLength"},
		{Name: "fractional queueLength", MD: base("queueLength", "1.5"), Auth: auth, WantErr: "queueLength"},
		{Name: "zero queueLength", MD: base("queueLength", "0"), Auth: auth, WantErr: "queueLength"},
		{Name: "negative queueLength", MD: base("queueLength", "-4"), Auth: auth, WantErr: "queueLength"},
		{Name: "non-numeric activationQueueLength", MD: base("activationQueueLength", "x"), Auth: auth, WantErr: "activationQueueLength"},
		{Name: "negative activationQueueLength", MD: base("activationQueueLength", "-1"), Auth: auth, WantErr: "activationQueueLength"},
		{Name: "unknown queueLengthStrategy", MD: base("queueLengthStrategy", "visible"), Auth: auth, WantErr: "queueLengthStrategy"},
		{Name: "no connection nor accountName", MD: base(), WantErr: "connection"},
		{Name: "connectionFromEnv naming a missing variable", MD: base("connectionFromEnv", "NOPE"), WantErr: "connectionFromEnv"},
		{Name: "connection that is not a connection string", MD: base(), Auth: map[string]string{"connection": "justakey"}, WantErr: "connection"},
		{Name: "unknown cloud", MD: base("cloud", "Mars"), Auth: auth, WantErr: "cloud"},
		{Name: "private cloud without endpointSuffix", MD: base("cloud", "Private", "accountName", "acct"), WantErr: "endpointSuffix"},
		{Name: "accountName that is a URL", MD: base("accountName", "https://acct.queue.core.windows.net"), WantErr: "accountName"},
	}, "a2V5a2V5a2V5")
}

func TestWorkloadIdentityWithoutEnvironmentIsABuildError(t *testing.T) {
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{"queueName": "q", "accountName": "acct"}}
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "accountName: workload identity") {
		t.Fatalf("New error = %v, want one saying accountName needs workload identity", err)
	}
}

var queueSeq atomic.Int64

// newQueue creates a uniquely named queue on srv holding n messages.
func newQueue(tb testing.TB, srv azurite.Server, n int) (*azqueue.QueueClient, string) {
	tb.Helper()
	name := fmt.Sprintf("q%d-%d", time.Now().UnixNano()%1e6, queueSeq.Add(1))
	qc, err := azqueue.NewQueueClientFromConnectionString(srv.ConnectionString(azurite.Key), name, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if _, err := qc.Create(ctx, nil); err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := qc.EnqueueMessage(ctx, fmt.Sprintf("m%d", i), nil); err != nil {
			tb.Fatal(err)
		}
	}
	return qc, name
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "", md, auth))
}

func TestSampleAgainstAzurite(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t, "queue")
	auth := map[string]string{"connection": srv.ConnectionString(azurite.Key)}
	qc, name := newQueue(t, srv, 0)
	md := map[string]string{"queueName": name, "queueLength": "5", "activationQueueLength": "3"}
	s := newScaler(t, md, auth)
	if specs := s.MetricSpecs(); len(specs) != 1 || specs[0].External.Metric.Name != "s0-azure-queue-"+name ||
		specs[0].External.Target.AverageValue.Value() != 5 {
		t.Fatalf("MetricSpecs = %+v", specs)
	}
	ctx := context.Background()
	enqueue := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := qc.EnqueueMessage(ctx, "m", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps := []struct {
		name       string
		add        int
		want       float64
		wantActive bool
	}{
		{name: "empty", want: 0},
		{name: "below activation", add: 3, want: 3},
		{name: "above target", add: 9, want: 12, wantActive: true},
	}
	for _, st := range steps {
		enqueue(st.add)
		v, active := scalertest.Sample(t, s, s.MetricName())
		if v != st.want || active != st.wantActive {
			t.Fatalf("%s: Sample = (%v, %v), want (%v, %v)", st.name, v, active, st.want, st.wantActive)
		}
	}

	// Hide 10 of the 12 messages: "all" still counts them, "visibleonly" counts the 2 that can be seen.
	if _, err := qc.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: to(int32(10)), VisibilityTimeout: to(int32(3600))}); err != nil {
		t.Fatal(err)
	}
	if v, _ := scalertest.Sample(t, s, ""); v != 12 {
		t.Errorf("all strategy after hiding 10 = %v, want 12", v)
	}
	visible := newScaler(t, map[string]string{"queueName": name, "queueLengthStrategy": "visibleonly"}, auth)
	if v, active := scalertest.Sample(t, visible, ""); v != 2 || !active {
		t.Errorf("visibleonly after hiding 10 = (%v, %v), want (2, true)", v, active)
	}
	// 40 visible messages: the peek is capped at 32, so the approximate count is used.
	enqueue(38)
	if v, _ := scalertest.Sample(t, visible, ""); v != 50 {
		t.Errorf("visibleonly with 40 visible = %v, want the approximate count 50", v)
	}
}

func TestSampleErrors(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t, "queue")
	_, name := newQueue(t, srv, 1)
	azurite.SampleErrors(t, srv, New, name, "absent-queue", "QueueNotFound", func(queue, conn string) *scalers.TriggerConfig {
		return scalertest.Config(TriggerType, "orders", map[string]string{"queueName": queue}, map[string]string{"connection": conn})
	})
}

func TestRegistered(t *testing.T) {
	r := scalers.NewRegistry()
	Register(r)
	if !r.Has(TriggerType) {
		t.Fatal("azure-queue not registered")
	}
}

// BenchmarkSample measures one Sample (a queue GetProperties) against a local Azurite.
func BenchmarkSample(b *testing.B) {
	srv := azurite.Start(b, "queue")
	_, name := newQueue(b, srv, 10)
	s := newScaler(b, map[string]string{"queueName": name}, map[string]string{"connection": srv.ConnectionString(azurite.Key)})
	scalertest.BenchmarkSample(b, s)
}
