package poller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"
)

// llenScaler is a minimal Redis list scaler (LLEN) for the integration test; the real one is scalers/redis.
type llenScaler struct {
	cfg        *scalers.TriggerConfig
	client     *redis.Client
	list       string
	activation float64
}

func newLLENScaler(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	list := cfg.Metadata["listName"]
	if list == "" {
		return nil, cfg.Errorf("listName: missing required parameter")
	}
	return &llenScaler{
		cfg:    cfg,
		client: redis.NewClient(&redis.Options{Addr: cfg.Metadata["address"], MaxRetries: -1}),
		list:   list,
	}, nil
}

func (s *llenScaler) metricName() string { return s.cfg.MetricName("redis", s.list) }

func (s *llenScaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName(), 5)}
}

func (s *llenScaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	n, err := s.client.LLen(ctx, s.list).Result()
	if err != nil {
		return nil, false, s.cfg.Errorf("LLEN %s: %w", s.list, err)
	}
	v := float64(n)
	return []scalers.Sample{{MetricName: s.metricName(), Value: v}}, v > s.activation, nil
}

func (s *llenScaler) Close(context.Context) error { return s.client.Close() }

func TestRedisListIntegration(t *testing.T) {
	const addr = "127.0.0.1:6379"
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s: %v (start it as described in the helper guide)", addr, err)
	}
	list := fmt.Sprintf("tidal-poller-%s-%d", t.Name(), rand.Uint64())
	defer rdb.Del(ctx, list)

	reg := scalers.NewRegistry()
	reg.Register(newLLENScaler, "llen")
	h := start(t, nil, Options{Registry: reg})
	updates, cancel := h.p.Subscribe(256)
	defer cancel()
	key := samples.Key{Kind: samples.KindScaledObject, Namespace: "ns", Name: "orders"}
	mustUpsert(t, h.p, samples.ObjectSpec{
		Key:             key,
		PollingInterval: 100 * time.Millisecond,
		Triggers: []scalers.TriggerConfig{{Type: "llen", Index: 0, Metadata: map[string]string{
			"address": addr, "listName": list,
		}}},
		Generation: 1,
	})
	metric := "s0-redis-" + scalers.SanitizeMetricName(list)
	if specs := h.p.MetricSpecs(key); len(specs) != 1 || specs[0].External.Metric.Name != metric {
		t.Fatalf("MetricSpecs = %+v", specs)
	}

	for i := range 12 {
		if err := rdb.RPush(ctx, list, "job-"+strconv.Itoa(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	u := receive(t, updates, "LLEN 12", func(u samples.Update) bool { return value(u) == 12 })
	if !u.Trigger.Active || u.Trigger.Err != nil {
		t.Errorf("update with 12 items = %+v", u.Trigger)
	}
	sample, _, err := h.p.Lookup(key, metric)
	if err != nil || sample.Value != 12 {
		t.Errorf("Lookup = %v, %v; want 12", sample, err)
	}
	if q := sample.Quantity(); q.MilliValue() != 12000 {
		t.Errorf("quantity = %s", q.String())
	}

	if err := rdb.Del(ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	u = receive(t, updates, "LLEN 0", func(u samples.Update) bool { return value(u) == 0 })
	if u.Trigger.Active || !u.ActivityChanged {
		t.Errorf("update after delete = %+v, want inactive and ActivityChanged", u)
	}

	obj := h.p.object(key)
	client := obj.triggers[0].scaler.(*llenScaler).client
	h.p.Delete(ctx, key)
	if err := client.Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("client after Delete: ping err=%v, want redis.ErrClosed", err)
	}
}
