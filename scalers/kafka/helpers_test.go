package kafka

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// uniqueName returns a topic or group name unique to this test run.
func uniqueName(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	n := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	if len(n) > 40 {
		n = n[:40]
	}
	return fmt.Sprintf("%s-%s-%s", prefix, n, hex.EncodeToString(b))
}

// testCluster is an in-process Kafka broker speaking the real protocol.
type testCluster struct {
	*kfake.Cluster
	Addr      string
	transport *kafkago.Transport
	client    *kafkago.Client
}

func newTestCluster(t testing.TB, opts ...kfake.Opt) *testCluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	tr := &kafkago.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &testCluster{Cluster: c, Addr: addr, transport: tr, client: &kafkago.Client{Addr: kafkago.TCP(addr), Timeout: 10 * time.Second, Transport: tr}}
}

// withAdminAuth makes the cluster's own test client authenticate (for SASL/TLS clusters).
func (c *testCluster) withAdminAuth(m sasl.Mechanism, tc *tls.Config) {
	c.transport.SASL = m
	c.transport.TLS = tc
}

// produce appends n records to one partition.
func (c *testCluster) produce(t testing.TB, topic string, partition, n int) {
	t.Helper()
	recs := make([]kafkago.Record, n)
	for i := range recs {
		recs[i] = kafkago.Record{Value: kafkago.NewBytes([]byte(fmt.Sprintf("m%d", i)))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.client.Produce(ctx, &kafkago.ProduceRequest{
		Topic: topic, Partition: partition, RequiredAcks: kafkago.RequireAll, Records: kafkago.NewRecordReader(recs...),
	})
	if err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, err)
	}
	if resp.Error != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, resp.Error)
	}
}

// commit commits offsets for a group, as a consumer outside any generation (an admin commit) would.
func (c *testCluster) commit(t testing.TB, group, topic string, offsets map[int]int64) {
	t.Helper()
	var oc []kafkago.OffsetCommit
	for p, o := range offsets {
		oc = append(oc, kafkago.OffsetCommit{Partition: p, Offset: o})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{
		GroupID: group, GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{topic: oc},
	})
	if err != nil {
		t.Fatalf("commit %s %s: %v", group, topic, err)
	}
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("commit %s %s/%d: %v", group, topic, p.Partition, p.Error)
			}
		}
	}
}

// triggerConfig builds a kafka trigger against the cluster.
func triggerConfig(addr string, md map[string]string) *scalers.TriggerConfig {
	m := map[string]string{"bootstrapServers": addr}
	for k, v := range md {
		m[k] = v
	}
	return &scalers.TriggerConfig{Type: TriggerType, Metadata: m, PollingInterval: 60 * time.Second, Shared: scalers.NewShared()}
}

func newScaler(t testing.TB, cfg *scalers.TriggerConfig) *Scaler {
	t.Helper()
	cfg.Normalize()
	return scalertest.New[*Scaler](t, New, cfg)
}

// sample returns the single metric value and activity, failing the test on error.
func sample(t testing.TB, s *Scaler) (float64, bool) {
	t.Helper()
	return scalertest.Sample(t, s, s.metricName)
}

// wantSample polls until the sample matches: the broker applies commits asynchronously to reads on a loaded machine.
func wantSample(t testing.TB, s *Scaler, value float64, active bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, a := sample(t, s)
		if v == value && a == active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sample = (%v, active=%v), want (%v, active=%v)", v, a, value, active)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
