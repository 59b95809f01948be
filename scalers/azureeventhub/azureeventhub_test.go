package azureeventhub

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure/azurite"
	"github.com/tidalscale/tidal/scalers/azureeventhub/amqpfake"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// The Event Hubs service cannot run here: the SDK talks AMQP 1.0 to amqpfake, an in-process namespace (plain
// AMQP, as the SDK does for a UseDevelopmentEmulator connection string), which checks the SAS tokens put on
// $cbs against its key. Checkpoints are real blobs in Azurite.

const (
	key      = "ZXZlbnQtaHVicy1uYW1lc3BhY2Uta2V5LWZvci10ZXN0cw=="
	wrongKey = "bm90LXRoZS1uYW1lc3BhY2Uta2V5LW5vdC1hdC1hbGw="
	testConn = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=" + key
	storConn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5a2V5a2V5;EndpointSuffix=core.windows.net"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	auth := map[string]string{"connection": testConn + ";EntityPath=orders", "storageConnection": storConn}
	noPath := map[string]string{"connection": testConn, "storageConnection": storConn}
	md := func(kv ...string) map[string]string { return scalertest.WithPairs(map[string]string{}, kv...) }
	blob := func(m Metadata, partition string) string {
		c, b := m.checkpointBlob(partition)
		return c + "|" + b
	}
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: md(), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.UnprocessedEventThreshold != 64 || m.ActivationUnprocessedEventThreshold != 0 || m.StalePartitionInfoThreshold != 10000 ||
				m.ConsumerGroup != "$Default" || m.namespace != "ns.servicebus.windows.net" || m.hub != "orders" || !m.entityPath {
				t.Errorf("defaults wrong: %+v", m)
			}
			if got := blob(m, "3"); got != "azure-webjobs-eventhub|ns.servicebus.windows.net/orders/$Default/3" {
				t.Errorf("default checkpoint without blobContainer = %s, want the Azure Functions one", got)
			}
		}},
		{Name: "eventHubName when the connection has no EntityPath", MD: md("eventHubName", "clicks", "unprocessedEventThreshold", "10",
			"activationUnprocessedEventThreshold", "3", "consumerGroup", "Billing"), Auth: noPath, Check: func(t *testing.T, m Metadata) {
			if m.hub != "clicks" || m.entityPath || m.UnprocessedEventThreshold != 10 || m.ActivationUnprocessedEventThreshold != 3 {
				t.Errorf("fields wrong: %+v", m)
			}
		}},
		{Name: "EntityPath wins over eventHubName", MD: md("eventHubName", "other"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.hub != "orders" {
				t.Errorf("hub = %q, want the connection string's EntityPath", m.hub)
			}
		}},
		{Name: "everything from the environment", MD: md("connectionFromEnv", "EH", "storageConnectionFromEnv", "ST", "eventHubNameFromEnv", "HUB"),
			Env: map[string]string{"EH": testConn, "ST": storConn, "HUB": "envhub"}, Check: func(t *testing.T, m Metadata) {
				if m.Connection != testConn || m.StorageConnection != storConn || m.hub != "envhub" {
					t.Errorf("not read from the environment: hub %q", m.hub)
				}
			}},
		{Name: "blobMetadata location", MD: md("checkpointStrategy", "blobMetadata", "blobContainer", "cp", "consumerGroup", "Billing"), Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if got := blob(m, "0"); got != "cp|ns.servicebus.windows.net/orders/billing/checkpoint/0" {
					t.Errorf("blobMetadata checkpoint = %s", got)
				}
			}},
		{Name: "goSdk location", MD: md("checkpointStrategy", "goSdk", "blobContainer", "cp"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if got := blob(m, "1"); got != "cp|1" {
				t.Errorf("goSdk checkpoint = %s", got)
			}
		}},
		{Name: "dapr location", MD: md("checkpointStrategy", "dapr", "blobContainer", "cp", "consumerGroup", "g"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if got := blob(m, "2"); got != "cp|dapr-orders-g-2" {
				t.Errorf("dapr checkpoint = %s", got)
			}
		}},
		{Name: "azureFunction ignores blobContainer", MD: md("checkpointStrategy", "azureFunction", "blobContainer", "cp"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if got := blob(m, "0"); got != "azure-webjobs-eventhub|ns.servicebus.windows.net/orders/$Default/0" {
				t.Errorf("azureFunction checkpoint = %s", got)
			}
		}},
		{Name: "no strategy with blobContainer", MD: md("blobContainer", "cp"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if got := blob(m, "0"); got != "cp|$Default/0" {
				t.Errorf("default checkpoint = %s", got)
			}
		}},
		{Name: "workload identity on the US government cloud", MD: md("eventHubNamespace", "ns", "eventHubName", "h", "storageAccountName", "acct",
			"cloud", "AzureUSGovernmentCloud"), Check: func(t *testing.T, m Metadata) {
			if m.namespace != "ns.servicebus.usgovcloudapi.net" || m.blobURL != "https://acct.blob.core.usgovcloudapi.net" {
				t.Errorf("namespace %q blobURL %q", m.namespace, m.blobURL)
			}
		}},
		{Name: "workload identity on a private cloud", MD: md("eventHubNamespace", "ns", "eventHubName", "h", "storageAccountName", "acct",
			"cloud", "Private", "endpointSuffix", "sb.airgap.example", "storageEndpointSuffix", "blob.airgap.example"), Check: func(t *testing.T, m Metadata) {
			if m.namespace != "ns.sb.airgap.example" || m.blobURL != "https://acct.blob.airgap.example" {
				t.Errorf("namespace %q blobURL %q", m.namespace, m.blobURL)
			}
		}},
		{Name: "threshold not a number", MD: md("unprocessedEventThreshold", "many"), Auth: auth, WantErr: "unprocessedEventThreshold"},
		{Name: "zero threshold", MD: md("unprocessedEventThreshold", "0"), Auth: auth, WantErr: "unprocessedEventThreshold"},
		{Name: "negative threshold", MD: md("unprocessedEventThreshold", "-64"), Auth: auth, WantErr: "unprocessedEventThreshold"},
		{Name: "fractional threshold", MD: md("unprocessedEventThreshold", "6.4"), Auth: auth, WantErr: "unprocessedEventThreshold"},
		{Name: "empty threshold", MD: md("unprocessedEventThreshold", ""), Auth: auth, WantErr: "unprocessedEventThreshold"},
		{Name: "negative activation", MD: md("activationUnprocessedEventThreshold", "-1"), Auth: auth, WantErr: "activationUnprocessedEventThreshold"},
		{Name: "activation not a number", MD: md("activationUnprocessedEventThreshold", "ten"), Auth: auth, WantErr: "activationUnprocessedEventThreshold"},
		{Name: "negative stale threshold", MD: md("stalePartitionInfoThreshold", "-5"), Auth: auth, WantErr: "stalePartitionInfoThreshold"},
		{Name: "empty consumer group", MD: md("consumerGroup", " "), Auth: auth, WantErr: "consumerGroup"},
		{Name: "unknown checkpointStrategy", MD: md("checkpointStrategy", "python", "blobContainer", "cp"), Auth: auth, WantErr: "checkpointStrategy"},
		{Name: "goSdk without blobContainer", MD: md("checkpointStrategy", "goSdk"), Auth: auth, WantErr: "blobContainer: required with checkpointStrategy goSdk"},
		{Name: "dapr without blobContainer", MD: md("checkpointStrategy", "dapr"), Auth: auth, WantErr: "blobContainer"},
		{Name: "blobMetadata without blobContainer", MD: md("checkpointStrategy", "blobMetadata"), Auth: auth, WantErr: "blobContainer"},
		{Name: "no connection", MD: md(), Auth: map[string]string{"storageConnection": storConn}, WantErr: "connection: missing"},
		{Name: "connection is not a connection string", MD: md("eventHubName", "h"), Auth: map[string]string{"connection": key, "storageConnection": storConn},
			WantErr: "connection: want an Event Hubs connection string"},
		{Name: "bad UseDevelopmentEmulator", MD: md("eventHubName", "h"), Auth: map[string]string{"connection": testConn + ";UseDevelopmentEmulator=maybe", "storageConnection": storConn},
			WantErr: "connection: want"},
		{Name: "no hub name", MD: md(), Auth: noPath, WantErr: "eventHubName: required when the connection string has no EntityPath"},
		{Name: "connectionFromEnv names a missing variable", MD: md("connectionFromEnv", "NOPE"), Auth: map[string]string{"storageConnection": storConn}, WantErr: "connectionFromEnv"},
		{Name: "namespace without hub name", MD: md("eventHubNamespace", "ns", "storageAccountName", "acct"), WantErr: "eventHubName: required with eventHubNamespace"},
		{Name: "namespace that is a URL", MD: md("eventHubNamespace", "sb://ns.servicebus.windows.net", "eventHubName", "h", "storageAccountName", "acct"), WantErr: "eventHubNamespace"},
		{Name: "no storage", MD: md(), Auth: map[string]string{"connection": testConn + ";EntityPath=orders"}, WantErr: "storageConnection: missing"},
		{Name: "storage connection is not a connection string", MD: md(), Auth: map[string]string{"connection": testConn + ";EntityPath=orders", "storageConnection": "a2V5"},
			WantErr: "storageConnection: want a storage connection string"},
		{Name: "storage account that is a host name", MD: md("storageAccountName", "acct.blob.core.windows.net"), Auth: map[string]string{"connection": testConn + ";EntityPath=o"},
			WantErr: "storageAccountName"},
		{Name: "unknown cloud", MD: md("cloud", "AzureMoonCloud"), Auth: auth, WantErr: "cloud"},
		{Name: "private cloud without endpointSuffix", MD: md("cloud", "Private"), Auth: auth, WantErr: "endpointSuffix: required when cloud is Private"},
		{Name: "private cloud without storageEndpointSuffix", MD: md("cloud", "Private", "endpointSuffix", "sb.x", "storageAccountName", "acct"),
			Auth: map[string]string{"connection": testConn + ";EntityPath=o"}, WantErr: "storageEndpointSuffix: required when cloud is Private"},
	}, key, "a2V5a2V5a2V5")
}

func TestLagArithmetic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                    string
		last, checkpoint, stale int64
		want                    int64
	}{
		{name: "behind", last: 120, checkpoint: 100, stale: 10000, want: 20},
		{name: "caught up", last: 100, checkpoint: 100, stale: 10000, want: 0},
		{name: "wrapped around the buffer", last: 10, checkpoint: math.MaxInt64 - 15, stale: 10, want: 25},
		{name: "checkpoint just ahead: stale partition information", last: 100, checkpoint: 105, stale: 10000, want: 0},
		{name: "stale threshold 0 keeps the wrap", last: 100, checkpoint: 105, stale: 0, want: math.MaxInt64 - 5},
	} {
		if got := lag(tc.last, tc.checkpoint, tc.stale); got != tc.want {
			t.Errorf("%s: lag(%d, %d, %d) = %d, want %d", tc.name, tc.last, tc.checkpoint, tc.stale, got, tc.want)
		}
	}
	if got := capToPartitions(1000, 4, 64); got != 256 {
		t.Errorf("cap of 1000 over 4 partitions × 64 = %d, want 256", got)
	}
	if got := capToPartitions(300, 4, 64); got != 300 {
		t.Errorf("300 under the cap = %d, want 300", got)
	}
	if got := addSaturating(math.MaxInt64-5, 20); got != math.MaxInt64 {
		t.Errorf("overflowing sum = %d, want MaxInt64", got)
	}
}

var seq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

// env is a namespace and a storage account for one test.
type env struct {
	ns  *amqpfake.Server
	st  azurite.Server
	now time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return &env{ns: amqpfake.Start(t, amqpfake.Options{Key: key}), st: azurite.Start(t, "blob"), now: time.Now().UTC()}
}

// hub sets a hub whose partitions' last enqueued sequence numbers are last (beginning at 0).
func (e *env) hub(name string, last ...int64) {
	ps := make([]amqpfake.Partition, len(last))
	for i, l := range last {
		ps[i] = amqpfake.Partition{Begin: 0, Last: l, LastEnqueued: e.now}
	}
	e.ns.SetHub(name, ps...)
}

func (e *env) auth(hub string) map[string]string {
	return map[string]string{"connection": e.ns.ConnectionString(key, hub), "storageConnection": e.st.ConnectionString(azurite.Key)}
}

func (e *env) container(tb testing.TB, name string) *container.Client {
	tb.Helper()
	cc, err := container.NewClientFromConnectionString(e.st.ConnectionString(azurite.Key), name, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := cc.Create(context.Background(), nil); err != nil && !strings.Contains(err.Error(), "ContainerAlreadyExists") {
		tb.Fatal(err)
	}
	return cc
}

// put writes a checkpoint blob with the given body and metadata.
func put(tb testing.TB, cc *container.Client, name, body string, md map[string]*string) {
	tb.Helper()
	if _, err := cc.NewBlockBlobClient(name).UploadBuffer(context.Background(), []byte(body), &blockblob.UploadBufferOptions{Metadata: md}); err != nil {
		tb.Fatal(err)
	}
}

// strategies writes a partition's checkpoint the way each checkpointer stores it; ns is the namespace's FQDN.
var strategies = []struct {
	name, strategy, consumerGroup string
	write                         func(tb testing.TB, e *env, cc *container.Client, ns, hub, partition string, seq int64)
}{
	{name: "azureFunction", strategy: "azureFunction", consumerGroup: "$Default",
		write: func(tb testing.TB, e *env, _ *container.Client, ns, hub, p string, seq int64) {
			put(tb, e.container(tb, "azure-webjobs-eventhub"), fmt.Sprintf("%s/%s/$Default/%s", ns, hub, p),
				fmt.Sprintf(`{"Offset":"%d","SequenceNumber":%d,"PartitionId":"%s","Owner":"host-1","Token":"t","Epoch":3}`, seq*64, seq, p), nil)
		}},
	{name: "blobMetadata", strategy: "blobMetadata", consumerGroup: "Billing",
		write: func(tb testing.TB, _ *env, cc *container.Client, ns, hub, p string, seq int64) {
			s, o := strconv.FormatInt(seq, 10), strconv.FormatInt(seq*64, 10)
			put(tb, cc, fmt.Sprintf("%s/%s/billing/checkpoint/%s", ns, hub, p), "", map[string]*string{"sequencenumber": &s, "offset": &o})
		}},
	{name: "goSdk", strategy: "goSdk", consumerGroup: "$Default",
		write: func(tb testing.TB, _ *env, cc *container.Client, _, _, p string, seq int64) {
			put(tb, cc, p, fmt.Sprintf(`{"partitionID":"%s","epoch":1,"owner":"o","checkpoint":{"offset":"%d","sequenceNumber":%d,"enqueueTime":"2026-01-01T00:00:00Z"},"state":"available","token":"t"}`, p, seq*64, seq), nil)
		}},
	{name: "dapr", strategy: "dapr", consumerGroup: "workers",
		write: func(tb testing.TB, _ *env, cc *container.Client, _, hub, p string, seq int64) {
			put(tb, cc, fmt.Sprintf("dapr-%s-workers-%s", hub, p), fmt.Sprintf(`{"partitionID":"%s","epoch":0,"owner":"","checkpoint":{"offset":"%d","sequenceNumber":%d},"state":"available","token":""}`, p, seq*64, seq), nil)
		}},
	{name: "default (JSON)", strategy: "", consumerGroup: "$Default",
		write: func(tb testing.TB, _ *env, cc *container.Client, _, _, p string, seq int64) {
			put(tb, cc, "$Default/"+p, fmt.Sprintf(`{"PartitionId":"%s","Owner":"o","Token":"t","Epoch":1,"Offset":"%d","SequenceNumber":%d}`, p, seq*64, seq), nil)
		}},
	{name: "default (older Python SDK)", strategy: "", consumerGroup: "$Default",
		write: func(tb testing.TB, _ *env, cc *container.Client, _, _, p string, seq int64) {
			put(tb, cc, "$Default/"+p, fmt.Sprintf(`{"partition_id":"%s","owner":"o","token":"t","epoch":1,"offset":"%d","sequence_number":%d}`, p, seq*64, seq), nil)
		}},
}

// TestCheckpointStrategies samples a two-partition hub through the SDK for each checkpoint strategy: caught up
// (0), below activation, and above target (capped at 2 partitions × the threshold).
func TestCheckpointStrategies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			hub, cname := unique("hub"), unique("cp")
			cc := e.container(t, cname)
			md := map[string]string{"unprocessedEventThreshold": "10", "activationUnprocessedEventThreshold": "5",
				"consumerGroup": st.consumerGroup, "blobContainer": cname}
			if st.strategy != "" {
				md["checkpointStrategy"] = st.strategy
			}
			s := scalertest.New[*Scaler](t, New, scalertest.Config(TriggerType, "", md, e.auth(hub)))
			if specs := s.MetricSpecs(); len(specs) != 1 || specs[0].External.Target.AverageValue.Value() != 10 {
				t.Fatalf("MetricSpecs = %+v", specs)
			}
			checkpoint := func(seqs ...int64) {
				for i, n := range seqs {
					st.write(t, e, cc, e.ns.Addr(), hub, strconv.Itoa(i), n)
				}
			}
			for _, step := range []struct {
				name       string
				last, cp   []int64
				want       float64
				wantActive bool
			}{
				{name: "caught up", last: []int64{20, 30}, cp: []int64{20, 30}, want: 0},
				{name: "below activation", last: []int64{23, 31}, cp: []int64{20, 30}, want: 4},
				{name: "above target, capped at partitions × threshold", last: []int64{60, 45}, cp: []int64{20, 30}, want: 20, wantActive: true},
				{name: "under the cap", last: []int64{60, 45}, cp: []int64{50, 40}, want: 15, wantActive: true},
			} {
				e.hub(hub, step.last...)
				checkpoint(step.cp...)
				v, active := scalertest.Sample(t, s, s.metricName)
				if v != step.want || active != step.wantActive {
					t.Fatalf("%s: Sample = (%v, %v), want (%v, %v)", step.name, v, active, step.want, step.wantActive)
				}
			}
		})
	}
}

// TestNoCheckpointYet follows KEDA when a partition has no checkpoint: every retained event counts (one when
// both sequence numbers are 0), an empty partition none, and a missing container is the same as a missing blob.
func TestNoCheckpointYet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hub := unique("fresh")
	e.ns.SetHub(hub,
		amqpfake.Partition{Begin: 0, Last: 0},  // the first event: 1
		amqpfake.Partition{Begin: 5, Last: 9},  // 5 retained
		amqpfake.Partition{Begin: 0, Last: -1}, // empty: 0
		amqpfake.Partition{Begin: 7, Last: 7},  // equal and not 0: KEDA counts 0
	)
	for _, tc := range []struct {
		name string
		md   map[string]string
	}{
		{name: "azureFunction container absent", md: map[string]string{}},
		{name: "blobMetadata container absent", md: map[string]string{"checkpointStrategy": "blobMetadata", "blobContainer": unique("absent")}},
		{name: "goSdk blobs absent", md: map[string]string{"checkpointStrategy": "goSdk", "blobContainer": unique("empty")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := tc.md["blobContainer"]; strings.HasPrefix(c, "empty") {
				e.container(t, c)
			}
			md := scalertest.With(tc.md, map[string]string{"unprocessedEventThreshold": "2", "activationUnprocessedEventThreshold": "5"})
			s := scalertest.New[*Scaler](t, New, scalertest.Config(TriggerType, "", md, e.auth(hub)))
			if v, active := scalertest.Sample(t, s, s.metricName); v != 6 || !active {
				t.Fatalf("Sample = (%v, %v), want (6, true)", v, active)
			}
		})
	}
}

// TestHubNameFromMetadata reaches a 20-partition hub (more than one Sample reads at once) through eventHubName
// with a namespace-level connection string.
func TestHubNameFromMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hub := unique("named")
	last := make([]int64, 20)
	want := 0.0
	for i := range last {
		last[i] = int64(i)
		want += float64(i + 1) // no checkpoint: events 0..i
	}
	e.hub(hub, last...)
	md := map[string]string{"eventHubName": hub, "unprocessedEventThreshold": "1000"}
	cfg := scalertest.Config(TriggerType, "", md, e.auth(""))
	logger, logs := scalertest.ObservedLogger()
	cfg.Logger = logger
	s := scalertest.New[*Scaler](t, New, cfg)
	if v, _ := scalertest.Sample(t, s, "s0-azure-eventhub--default"); v != want {
		t.Fatalf("Sample = %v, want %v", v, want)
	}
	if n := logs.FilterMessage("azure-eventhub partition lag").Len(); n != 20 {
		t.Errorf("%d partition debug entries, want 20", n)
	}
	scalertest.AssertNoSecret(t, key, "", logs.All())
	scalertest.AssertNoSecret(t, azurite.Key, "", logs.All())
}

func TestSampleErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hub := unique("err")
	e.hub(hub, 10)
	cc := e.container(t, "cps")
	put(t, cc, "0", `not json`, nil)
	put(t, cc, "junk", "", nil)
	storageDown := azurite.Server{Endpoint: "http://" + testenv.FreeAddr(t) + "/" + azurite.Account, Service: "blob"}
	namespaceDown := strings.Replace(e.ns.ConnectionString(key, hub), e.ns.Addr(), testenv.FreeAddr(t), 1)
	tests := []struct {
		name          string
		md            map[string]string
		conn, storage string
		want          string
	}{
		{name: "wrong SAS key", md: map[string]string{}, conn: e.ns.ConnectionString(wrongKey, hub), storage: e.st.ConnectionString(azurite.Key), want: "401"},
		{name: "hub does not exist", md: map[string]string{}, conn: e.ns.ConnectionString(key, "absent"), storage: e.st.ConnectionString(azurite.Key), want: "404"},
		{name: "namespace down", md: map[string]string{}, conn: namespaceDown, storage: e.st.ConnectionString(azurite.Key), want: "connection refused"},
		{name: "storage down", md: map[string]string{}, conn: e.ns.ConnectionString(key, hub), storage: storageDown.ConnectionString(azurite.Key), want: "reading the checkpoint"},
		{name: "wrong storage key", md: map[string]string{}, conn: e.ns.ConnectionString(key, hub), storage: e.st.ConnectionString(wrongKey), want: "403"},
		{name: "checkpoint is not JSON", md: map[string]string{"checkpointStrategy": "goSdk", "blobContainer": "cps"}, conn: e.ns.ConnectionString(key, hub),
			storage: e.st.ConnectionString(azurite.Key), want: "decoding the checkpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := scalertest.Config(TriggerType, "clicks", tc.md, map[string]string{"connection": tc.conn, "storageConnection": tc.storage})
			t.Log(scalertest.SampleFails(t, New, cfg, tc.want, key, wrongKey, azurite.Key))
		})
	}
	t.Run("blobMetadata checkpoint without sequencenumber", func(t *testing.T) {
		t.Parallel()
		hub := unique("meta")
		e.hub(hub, 3)
		put(t, cc, fmt.Sprintf("%s/%s/$default/checkpoint/0", e.ns.Addr(), hub), "", map[string]*string{})
		cfg := scalertest.Config(TriggerType, "clicks", map[string]string{"checkpointStrategy": "blobMetadata", "blobContainer": "cps"}, e.auth(hub))
		t.Log(scalertest.SampleFails(t, New, cfg, "no sequencenumber metadata", key, azurite.Key))
	})
}

// TestUnansweredPartitionReadEndsWithTheContext: the SDK sends a partition read without the caller's context;
// when the namespace never answers, Sample still returns at its context's end, and the next Sample reconnects.
func TestUnansweredPartitionReadEndsWithTheContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hub := unique("held")
	e.hub(hub, 4)
	s := scalertest.New[*Scaler](t, New, scalertest.Config(TriggerType, "", map[string]string{}, e.auth(hub)))
	if v, _ := scalertest.Sample(t, s, s.metricName); v != 5 {
		t.Fatalf("Sample = %v, want 5", v)
	}
	e.ns.HoldPartitionReads(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, active, err := s.Sample(ctx); err == nil || active || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("Sample with the partition read unanswered = (active %v, %v), want the context's error", active, err)
	}
	e.ns.HoldPartitionReads(false)
	e.hub(hub, 9)
	if v, _ := scalertest.Sample(t, s, s.metricName); v != 10 {
		t.Fatalf("Sample after the namespace answers again = %v, want 10", v)
	}
}

func TestWorkloadIdentityWithoutEnvironmentIsABuildError(t *testing.T) {
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	for field, auth := range map[string]map[string]string{
		"storageAccountName": {"connection": testConn + ";EntityPath=h"},
		"eventHubNamespace":  {"storageConnection": storConn},
	} {
		cfg := &scalers.TriggerConfig{Type: TriggerType, AuthParams: auth,
			Metadata: map[string]string{"eventHubNamespace": "ns", "eventHubName": "h", "storageAccountName": "acct"}}
		if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), field+": ") || !strings.Contains(err.Error(), "workload identity") {
			t.Errorf("New error = %v, want one saying %s needs workload identity", err, field)
		}
	}
}

// BenchmarkSample measures one Sample of a four-partition hub with blobMetadata checkpoints: the hub's
// properties and four partitions' over AMQP from the in-process namespace, and four checkpoint blobs from a
// local Azurite.
func BenchmarkSample(b *testing.B) {
	e := newEnv(b)
	hub := unique("bench")
	e.hub(hub, 100, 200, 300, 400)
	cc := e.container(b, "bench")
	for i := 0; i < 4; i++ {
		s := strconv.Itoa(90 * (i + 1))
		put(b, cc, fmt.Sprintf("%s/%s/$default/checkpoint/%d", e.ns.Addr(), hub, i), "", map[string]*string{"sequencenumber": &s})
	}
	s := scalertest.New[*Scaler](b, New, scalertest.Config(TriggerType, "", map[string]string{"checkpointStrategy": "blobMetadata", "blobContainer": "bench"}, e.auth(hub)))
	scalertest.BenchmarkSample(b, s)
}
