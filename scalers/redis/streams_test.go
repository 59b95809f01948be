package redis

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tidalscale/tidal/scalers"
)

func xadd(t testing.TB, c goredis.Cmdable, stream string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := c.XAdd(context.Background(), &goredis.XAddArgs{Stream: stream, Values: []any{"n", i}}).Err(); err != nil {
			t.Fatalf("XADD: %v", err)
		}
	}
}

// readGroup delivers up to n entries to a consumer of group, leaving them pending.
func readGroup(t testing.TB, c goredis.Cmdable, stream, group string, n int64) []goredis.XMessage {
	t.Helper()
	res, err := c.XReadGroup(context.Background(), &goredis.XReadGroupArgs{Group: group, Consumer: "worker-1", Streams: []string{stream, ">"}, Count: n, Block: -1}).Result()
	if err != nil {
		t.Fatalf("XREADGROUP: %v", err)
	}
	return res[0].Messages
}

// streamsOn runs the stream measures against one deployment: c writes, typ and md build the trigger.
func streamsOn(t *testing.T, c goredis.Cmdable, typ string, conn map[string]string) {
	ctx := context.Background()
	md := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range conn {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	t.Run("streamLength", func(t *testing.T) {
		stream := uniqueKey(t, "stream")
		cleanupKeys(t, c, stream)
		s := build(t, triggerConfig(t, typ, md(map[string]string{"stream": stream, "activationLagCount": "1"})), Options{})
		if v, active := sample(t, s); v != 0 || active {
			t.Fatalf("missing stream: %v %v, want 0 false", v, active)
		}
		xadd(t, c, stream, 6)
		if v, active := sample(t, s); v != 6 || !active {
			t.Fatalf("6 entries: %v %v, want 6 true", v, active)
		}
		c.XTrimMaxLen(ctx, stream, 0)
		if v, active := sample(t, s); v != 0 || active {
			t.Fatalf("trimmed: %v %v, want 0 false", v, active)
		}
	})

	t.Run("pendingEntriesCount", func(t *testing.T) {
		stream := uniqueKey(t, "stream")
		cleanupKeys(t, c, stream)
		s := build(t, triggerConfig(t, typ, md(map[string]string{"stream": stream, "consumerGroup": "workers", "pendingEntriesCount": "2"})), Options{})
		if v, active := sample(t, s); v != 0 || active {
			t.Fatalf("no stream, no group: %v %v, want 0 false", v, active)
		}
		if err := c.XGroupCreateMkStream(ctx, stream, "workers", "$").Err(); err != nil {
			t.Fatal(err)
		}
		xadd(t, c, stream, 5)
		if v, _ := sample(t, s); v != 0 {
			t.Fatalf("undelivered entries are not pending: %v, want 0", v)
		}
		msgs := readGroup(t, c, stream, "workers", 3)
		if v, active := sample(t, s); v != 3 || !active {
			t.Fatalf("3 delivered: %v %v, want 3 true", v, active)
		}
		for _, m := range msgs {
			c.XAck(ctx, stream, "workers", m.ID)
		}
		if v, active := sample(t, s); v != 0 || active {
			t.Fatalf("acked: %v %v, want 0 false", v, active)
		}
	})

	t.Run("lagCount", func(t *testing.T) {
		stream := uniqueKey(t, "stream")
		cleanupKeys(t, c, stream)
		s := build(t, triggerConfig(t, typ, md(map[string]string{"stream": stream, "consumerGroup": "workers", "lagCount": "10", "activationLagCount": "2"})), Options{})
		if v, active := sample(t, s); v != 0 || active {
			t.Fatalf("no stream: %v %v, want 0 false", v, active)
		}
		xadd(t, c, stream, 4)
		if v, active := sample(t, s); v != 4 || !active {
			t.Fatalf("no group yet: lag %v %v, want the stream length 4 true", v, active)
		}
		if err := c.XGroupCreate(ctx, stream, "workers", "0").Err(); err != nil {
			t.Fatal(err)
		}
		readGroup(t, c, stream, "workers", 2)
		if v, active := sample(t, s); v != 2 || active {
			t.Fatalf("2 of 4 delivered: lag %v %v, want 2 false", v, active)
		}
		readGroup(t, c, stream, "workers", 2)
		if v, active := sample(t, s); v != 0 || active {
			t.Fatalf("all delivered: lag %v %v, want 0 false", v, active)
		}
	})
}

func TestStreams(t *testing.T) {
	streamsOn(t, localClient(t), TypeStreams, map[string]string{"address": localAddr})
}

// TestStreamMetadata checks KEDA's choice of measure and target, and bad values.
func TestStreamMetadata(t *testing.T) {
	cases := []struct {
		name        string
		md          map[string]string
		wantMeasure streamMode
		wantTarget  int64
		wantField   string
	}{
		{name: "no group: stream length, default 5", md: map[string]string{"stream": "s"}, wantMeasure: streamLength, wantTarget: 5},
		{name: "no group: streamLength 8", md: map[string]string{"stream": "s", "streamLength": "8"}, wantMeasure: streamLength, wantTarget: 8},
		{name: "group: pending entries, default 5", md: map[string]string{"stream": "s", "consumerGroup": "g"}, wantMeasure: streamPending, wantTarget: 5},
		{name: "group: pendingEntriesCount 3", md: map[string]string{"stream": "s", "consumerGroup": "g", "pendingEntriesCount": "3"}, wantMeasure: streamPending, wantTarget: 3},
		{name: "group and lagCount: lag", md: map[string]string{"stream": "s", "consumerGroup": "g", "lagCount": "7", "pendingEntriesCount": "3"}, wantMeasure: streamLag, wantTarget: 7},
		{name: "group and lagCount 0: pending, as in KEDA", md: map[string]string{"stream": "s", "consumerGroup": "g", "lagCount": "0"}, wantMeasure: streamPending, wantTarget: 5},
		{name: "lagCount without group is ignored, as in KEDA", md: map[string]string{"stream": "s", "lagCount": "7"}, wantMeasure: streamLength, wantTarget: 5},

		{name: "stream missing", md: map[string]string{}, wantField: "stream"},
		{name: "stream empty", md: map[string]string{"stream": " "}, wantField: "stream"},
		{name: "pendingEntriesCount not a number", md: map[string]string{"stream": "s", "consumerGroup": "g", "pendingEntriesCount": "AA"}, wantField: "pendingEntriesCount"},
		{name: "streamLength zero", md: map[string]string{"stream": "s", "streamLength": "0"}, wantField: "streamLength"},
		{name: "lagCount negative", md: map[string]string{"stream": "s", "consumerGroup": "g", "lagCount": "-4"}, wantField: "lagCount"},
		{name: "activationLagCount negative", md: map[string]string{"stream": "s", "activationLagCount": "-1"}, wantField: "activationLagCount"},
		{name: "activationLagCount fraction", md: map[string]string{"stream": "s", "activationLagCount": "1.5"}, wantField: "activationLagCount"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.md["address"] = "redis:6379"
			s, err := NewWithOptions(context.Background(), &scalers.TriggerConfig{Type: TypeStreams, Metadata: tc.md}, Options{})
			if tc.wantField != "" {
				if err == nil {
					_ = s.Close(context.Background())
					t.Fatalf("want an error naming %q", tc.wantField)
				}
				if msg := err.Error(); !strings.Contains(msg, "redis-streams trigger") || !strings.Contains(msg, tc.wantField) {
					t.Fatalf("error %q does not name the trigger type and field %q", msg, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			m := s.(*streamScaler).meta
			if m.measure != tc.wantMeasure {
				t.Errorf("measure %s, want %s", m.measure, tc.wantMeasure)
			}
			spec := s.MetricSpecs()[0].External
			if spec.Target.AverageValue.Value() != tc.wantTarget {
				t.Errorf("target %v, want %d", spec.Target.AverageValue, tc.wantTarget)
			}
			if spec.Metric.Name != "s0-redis-streams-s" {
				t.Errorf("metric name %q", spec.Metric.Name)
			}
		})
	}
}

func TestInfoField(t *testing.T) {
	info := "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n"
	cases := []struct {
		name, field, want string
		ok                bool
	}{
		{"version", "redis_version", "7.0.15", true},
		{"absent", "valkey_version", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := infoField(info, tc.field); got != tc.want || ok != tc.ok {
				t.Fatalf("infoField(%q) = %q, %v", tc.field, got, ok)
			}
		})
	}
}
