package azureblob

import (
	"context"
	"fmt"
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
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.BlobCount != 5 || m.ActivationBlobCount != 0 || m.BlobDelimiter != "/" || m.prefix != "" || m.Recursive || m.glob != nil {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "prefix gets the delimiter", MD: base("blobPrefix", "in", "blobDelimiter", "|", "blobCount", "7", "activationBlobCount", "2"), Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if m.prefix != "in|" || m.BlobCount != 7 || m.ActivationBlobCount != 2 {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "recursive drops the delimiter", MD: base("blobPrefix", "in", "recursive", "true"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.prefix != "in" || m.BlobDelimiter != "" {
				t.Errorf("recursive: prefix %q delimiter %q", m.prefix, m.BlobDelimiter)
			}
		}},
		{Name: "glob pattern", MD: base("globPattern", "/in/*.json"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.glob == nil || !m.glob.Match("in/a.json") || m.glob.Match("in/a.txt") {
				t.Errorf("glob does not match as expected")
			}
		}},
		{Name: "accountName on the US government cloud", MD: base("accountName", "acct", "cloud", "AzureUSGovernmentCloud"), Check: func(t *testing.T, m Metadata) {
			if m.ServiceURL != "https://acct.blob.core.usgovcloudapi.net" {
				t.Errorf("ServiceURL = %q", m.ServiceURL)
			}
		}},
		{Name: "missing blobContainerName", MD: base("blobContainerName", scalertest.Delete), Auth: auth, WantErr: "blobContainerName"},
		{Name: "non-numeric blobCount", MD: base("blobCount", "five"), Auth: auth, WantErr: "blobCount"},
		{Name: "zero blobCount", MD: base("blobCount", "0"), Auth: auth, WantErr: "blobCount"},
		{Name: "fractional activationBlobCount", MD: base("activationBlobCount", "0.5"), Auth: auth, WantErr: "activationBlobCount"},
		{Name: "negative activationBlobCount", MD: base("activationBlobCount", "-2"), Auth: auth, WantErr: "activationBlobCount"},
		{Name: "bad recursive", MD: base("recursive", "yes please"), Auth: auth, WantErr: "recursive"},
		{Name: "bad globPattern", MD: base("globPattern", "in/[a-"), Auth: auth, WantErr: "globPattern"},
		{Name: "no connection", MD: base(), WantErr: "connection"},
		{Name: "unknown cloud", MD: base("cloud", "AzureMoonCloud"), Auth: auth, WantErr: "cloud"},
		{Name: "private cloud without endpointSuffix", MD: base("cloud", "private", "accountName", "a"), WantErr: "endpointSuffix"},
	})
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
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "", md, auth))
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
			if v, _ := scalertest.Sample(t, s, s.MetricName()); v != tc.want {
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
		v, active := scalertest.Sample(t, s, s.MetricName())
		if v != st.want || active != st.wantActive {
			t.Fatalf("%s: Sample = (%v, %v), want (%v, %v)", st.name, v, active, st.want, st.wantActive)
		}
	}
}

func TestSampleErrors(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t, "blob")
	_, name := newContainer(t, srv, "a")
	azurite.SampleErrors(t, srv, New, name, "absent", "ContainerNotFound", func(container, conn string) *scalers.TriggerConfig {
		return scalertest.Config(TriggerType, "uploads", map[string]string{"blobContainerName": container}, map[string]string{"connection": conn})
	})
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
