package azureblob

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure/azurite"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const testConn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5a2V5a2V5;EndpointSuffix=core.windows.net"

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"blobContainerName": "uploads"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	auth := map[string]string{"connection": testConn}
	tests := []struct {
		name    string
		md      map[string]string
		auth    map[string]string
		wantErr string
		check   func(t *testing.T, m Metadata)
	}{
		{name: "defaults", md: base(), auth: auth, check: func(t *testing.T, m Metadata) {
			if m.BlobCount != 5 || m.ActivationBlobCount != 0 || m.BlobDelimiter != "/" || m.prefix != "" || m.Recursive || m.glob != nil {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{name: "prefix gets the delimiter", md: base("blobPrefix", "in", "blobDelimiter", "|", "blobCount", "7", "activationBlobCount", "2"), auth: auth,
			check: func(t *testing.T, m Metadata) {
				if m.prefix != "in|" || m.BlobCount != 7 || m.ActivationBlobCount != 2 {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{name: "recursive drops the delimiter", md: base("blobPrefix", "in", "recursive", "true"), auth: auth, check: func(t *testing.T, m Metadata) {
			if m.prefix != "in" || m.BlobDelimiter != "" {
				t.Errorf("recursive: prefix %q delimiter %q", m.prefix, m.BlobDelimiter)
			}
		}},
		{name: "glob pattern", md: base("globPattern", "/in/*.json"), auth: auth, check: func(t *testing.T, m Metadata) {
			if m.glob == nil || !m.glob.Match("in/a.json") || m.glob.Match("in/a.txt") {
				t.Errorf("glob does not match as expected")
			}
		}},
		{name: "accountName on the US government cloud", md: base("accountName", "acct", "cloud", "AzureUSGovernmentCloud"), check: func(t *testing.T, m Metadata) {
			if m.ServiceURL != "https://acct.blob.core.usgovcloudapi.net" {
				t.Errorf("ServiceURL = %q", m.ServiceURL)
			}
		}},
		{name: "missing blobContainerName", md: base("blobContainerName", scalertest.Delete), auth: auth, wantErr: "blobContainerName"},
		{name: "non-numeric blobCount", md: base("blobCount", "five"), auth: auth, wantErr: "blobCount"},
		{name: "zero blobCount", md: base("blobCount", "0"), auth: auth, wantErr: "blobCount"},
		{name: "fractional activationBlobCount", md: base("activationBlobCount", "0.5"), auth: auth, wantErr: "activationBlobCount"},
		{name: "negative activationBlobCount", md: base("activationBlobCount", "-2"), auth: auth, wantErr: "activationBlobCount"},
		{name: "bad recursive", md: base("recursive", "yes please"), auth: auth, wantErr: "recursive"},
		{name: "bad globPattern", md: base("globPattern", "in/[a-"), auth: auth, wantErr: "globPattern"},
		{name: "no connection", md: base(), wantErr: "connection"},
		{name: "unknown cloud", md: base("cloud", "AzureMoonCloud"), auth: auth, wantErr: "cloud"},
		{name: "private cloud without endpointSuffix", md: base("cloud", "private", "accountName", "a"), wantErr: "endpointSuffix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: tc.md, AuthParams: tc.auth}
			var m Metadata
			err := scalers.Parse(cfg, &m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "azure-blob trigger") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to name the azure-blob trigger and %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, m)
		})
	}
}

var containerSeq atomic.Int64

// newContainer creates a uniquely named container on srv holding the named (empty) blobs.
func newContainer(tb testing.TB, srv azurite.Server, blobs ...string) (*container.Client, string) {
	tb.Helper()
	name := fmt.Sprintf("c%d-%d", time.Now().UnixNano()%1e6, containerSeq.Add(1))
	cc, err := container.NewClientFromConnectionString(srv.ConnectionString(azurite.Key), name, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := cc.Create(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	upload(tb, cc, blobs...)
	return cc, name
}

func upload(tb testing.TB, cc *container.Client, blobs ...string) {
	tb.Helper()
	for _, b := range blobs {
		if _, err := cc.NewBlockBlobClient(b).UploadBuffer(context.Background(), []byte("x"), nil); err != nil {
			tb.Fatal(err)
		}
	}
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: md, AuthParams: auth, Shared: scalers.NewShared()}
	s, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s.(*Scaler)
}

func TestCountingModes(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t, "blob")
	_, name := newContainer(t, srv, "root.json", "in/a.json", "in/b.json", "in/c.txt", "in/sub/d.json", "other/e.json")
	auth := map[string]string{"connection": srv.ConnectionString(azurite.Key)}
	tests := []struct {
		name string
		kv   []string
		want float64
	}{
		{name: "default counts the container root only", want: 1},
		{name: "prefix counts its folder, not sub-folders", kv: []string{"blobPrefix", "in"}, want: 3},
		{name: "recursive counts sub-folders", kv: []string{"blobPrefix", "in", "recursive", "true"}, want: 4},
		{name: "recursive without prefix counts everything", kv: []string{"recursive", "true"}, want: 6},
		{name: "glob over the whole container", kv: []string{"globPattern", "in/*.json"}, want: 3},
		{name: "glob with a leading slash", kv: []string{"globPattern", "/in/sub/*.json"}, want: 1},
		{name: "glob within a prefix", kv: []string{"blobPrefix", "in", "globPattern", "*.txt"}, want: 1},
		{name: "other delimiter", kv: []string{"blobDelimiter", "."}, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScaler(t, scalertest.WithPairs(map[string]string{"blobContainerName": name}, tc.kv...), auth)
			if v, _ := scalertest.Sample(t, s, s.metricName); v != tc.want {
				t.Fatalf("count = %v, want %v", v, tc.want)
			}
		})
	}
}

func TestSampleAgainstAzurite(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t, "blob")
	cc, name := newContainer(t, srv)
	s := newScaler(t, map[string]string{"blobContainerName": name, "blobPrefix": "jobs", "blobCount": "4", "activationBlobCount": "2"},
		map[string]string{"connection": srv.ConnectionString(azurite.Key)})
	if specs := s.MetricSpecs(); len(specs) != 1 || specs[0].External.Metric.Name != "s0-azure-blob-"+name ||
		specs[0].External.Target.AverageValue.Value() != 4 {
		t.Fatalf("MetricSpecs = %+v", specs)
	}
	steps := []struct {
		name       string
		add        []string
		want       float64
		wantActive bool
	}{
		{name: "empty", want: 0},
		{name: "below activation", add: []string{"jobs/1", "jobs/2", "elsewhere/3"}, want: 2},
		{name: "above target", add: []string{"jobs/3", "jobs/4", "jobs/5", "jobs/6", "jobs/7"}, want: 7, wantActive: true},
	}
	for _, st := range steps {
		upload(t, cc, st.add...)
		v, active := scalertest.Sample(t, s, s.metricName)
		if v != st.want || active != st.wantActive {
			t.Fatalf("%s: Sample = (%v, %v), want (%v, %v)", st.name, v, active, st.want, st.wantActive)
		}
	}
}

func TestSampleErrors(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t, "blob")
	_, name := newContainer(t, srv, "a")
	wrongKey := "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
	down := azurite.Server{Endpoint: "http://127.0.0.1:1/" + azurite.Account, Service: "blob"}
	tests := []struct {
		name, container, conn, wantErr string
	}{
		{name: "wrong account key", container: name, conn: srv.ConnectionString(wrongKey), wantErr: "403"},
		{name: "container does not exist", container: "absent", conn: srv.ConnectionString(azurite.Key), wantErr: "ContainerNotFound"},
		{name: "server down", container: name, conn: down.ConnectionString(azurite.Key), wantErr: "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logger, logs := scalertest.ObservedLogger()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Name: "uploads", Logger: logger,
				Metadata: map[string]string{"blobContainerName": tc.container}, AuthParams: map[string]string{"connection": tc.conn}}
			s, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, active, err := s.Sample(ctx)
			if err == nil || active || !strings.Contains(err.Error(), `azure-blob trigger "uploads"`) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Sample = (active %v, %v), want an error naming the trigger and containing %q", active, err, tc.wantErr)
			}
			scalertest.AssertNoSecret(t, wrongKey, err.Error(), logs.All())
			scalertest.AssertNoSecret(t, azurite.Key, err.Error(), logs.All())
		})
	}
}

// BenchmarkSample measures one Sample (a one-page blob listing of 20 blobs) against a local Azurite.
func BenchmarkSample(b *testing.B) {
	srv := azurite.Start(b, "blob")
	blobs := make([]string, 20)
	for i := range blobs {
		blobs[i] = fmt.Sprintf("in/%02d", i)
	}
	_, name := newContainer(b, srv, blobs...)
	s := newScaler(b, map[string]string{"blobContainerName": name, "blobPrefix": "in"}, map[string]string{"connection": srv.ConnectionString(azurite.Key)})
	scalertest.BenchmarkSample(b, s)
}
