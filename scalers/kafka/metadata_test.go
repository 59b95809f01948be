package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"bootstrapServers": "b1:9092,b2:9092", "consumerGroup": "grp", "topic": "orders"}
	base := func(changes map[string]string) map[string]string { return scalertest.With(defaults, changes) }
	tests := []struct {
		name    string
		md      map[string]string
		auth    map[string]string
		env     map[string]string
		wantErr string // substring; "" means success
		check   func(t *testing.T, m Metadata)
	}{
		{name: "defaults", md: base(nil), check: func(t *testing.T, m Metadata) {
			if m.LagThreshold != 10 || m.ActivationLagThreshold != 0 || m.OffsetResetPolicy != "latest" ||
				m.AllowIdleConsumers || m.ExcludePersistentLag || m.ScaleToZeroOnInvalidOffset || m.LimitToPartitionsWithLag ||
				m.SASL != "none" || m.TLS != "disable" || m.WatchInterval != 250*time.Millisecond {
				t.Errorf("defaults wrong: %+v", m)
			}
			if len(m.BootstrapServers) != 2 || m.BootstrapServers[1] != "b2:9092" {
				t.Errorf("bootstrapServers = %v", m.BootstrapServers)
			}
		}},
		{name: "every field", md: base(map[string]string{
			"lagThreshold": "50", "activationLagThreshold": "5", "offsetResetPolicy": "earliest", "allowIdleConsumers": "true",
			"excludePersistentLag": "true", "scaleToZeroOnInvalidOffset": "true", "partitionLimitation": "0,2,4-6",
			"version": "1.0.0", "watchInterval": "1s",
		}), auth: map[string]string{"sasl": "scram_sha512", "username": "u", "password": "p", "tls": "enable", "ca": "x"},
			check: func(t *testing.T, m Metadata) {
				if m.LagThreshold != 50 || m.ActivationLagThreshold != 5 || m.OffsetResetPolicy != "earliest" ||
					!m.AllowIdleConsumers || !m.ExcludePersistentLag || !m.ScaleToZeroOnInvalidOffset ||
					m.SASL != "scram_sha512" || m.TLS != "enable" || m.WatchInterval != time.Second {
					t.Errorf("fields wrong: %+v", m)
				}
				for _, p := range []int32{0, 2, 4, 5, 6} {
					if _, ok := m.partitions[p]; !ok {
						t.Errorf("partition %d missing from %v", p, m.partitions)
					}
				}
				if len(m.partitions) != 5 {
					t.Errorf("partitions = %v, want 5", m.partitions)
				}
			}},
		{name: "bootstrapServers from env", md: map[string]string{"bootstrapServersFromEnv": "BROKERS", "consumerGroup": "g"},
			env: map[string]string{"BROKERS": "k:9092"}, check: func(t *testing.T, m Metadata) {
				if m.BootstrapServers[0] != "k:9092" {
					t.Errorf("bootstrapServers = %v", m.BootstrapServers)
				}
			}},
		{name: "partitionLimitation ignored without topic", md: base(map[string]string{"topic": "<delete>", "partitionLimitation": "1"}),
			check: func(t *testing.T, m Metadata) {
				if m.partitions != nil {
					t.Errorf("partitions = %v, want nil", m.partitions)
				}
			}},
		{name: "missing bootstrapServers", md: base(map[string]string{"bootstrapServers": "<delete>"}), wantErr: "bootstrapServers"},
		{name: "bootstrapServer without port", md: base(map[string]string{"bootstrapServers": "broker"}), wantErr: "bootstrapServers"},
		{name: "empty bootstrapServers", md: base(map[string]string{"bootstrapServers": " , "}), wantErr: "bootstrapServers"},
		{name: "missing consumerGroup", md: base(map[string]string{"consumerGroup": "<delete>"}), wantErr: "consumerGroup"},
		{name: "non-numeric lagThreshold", md: base(map[string]string{"lagThreshold": "AA"}), wantErr: "lagThreshold"},
		{name: "zero lagThreshold", md: base(map[string]string{"lagThreshold": "0"}), wantErr: "lagThreshold"},
		{name: "negative lagThreshold", md: base(map[string]string{"lagThreshold": "-3"}), wantErr: "lagThreshold"},
		{name: "negative activationLagThreshold", md: base(map[string]string{"activationLagThreshold": "-1"}), wantErr: "activationLagThreshold"},
		{name: "bad offsetResetPolicy", md: base(map[string]string{"offsetResetPolicy": "middle"}), wantErr: "offsetResetPolicy"},
		{name: "bad allowIdleConsumers", md: base(map[string]string{"allowIdleConsumers": "maybe"}), wantErr: "allowIdleConsumers"},
		{name: "bad partitionLimitation", md: base(map[string]string{"partitionLimitation": "1,x"}), wantErr: "partitionLimitation"},
		{name: "reversed partition range", md: base(map[string]string{"partitionLimitation": "5-1"}), wantErr: "partitionLimitation"},
		{name: "idle and limit together", md: base(map[string]string{"allowIdleConsumers": "true", "limitToPartitionsWithLag": "true"}), wantErr: "limitToPartitionsWithLag"},
		{name: "limitToPartitionsWithLag needs topic", md: base(map[string]string{"topic": "<delete>", "limitToPartitionsWithLag": "true"}), wantErr: "limitToPartitionsWithLag"},
		{name: "bad tls", md: base(map[string]string{"tls": "on"}), wantErr: "tls"},
		{name: "cert without key", md: base(nil), auth: map[string]string{"tls": "enable", "cert": "c"}, wantErr: "key"},
		{name: "bad sasl", md: base(nil), auth: map[string]string{"sasl": "kerberos"}, wantErr: "sasl"},
		{name: "sasl without username", md: base(nil), auth: map[string]string{"sasl": "plaintext", "password": "p"}, wantErr: "username"},
		{name: "sasl without password", md: base(nil), auth: map[string]string{"sasl": "plaintext", "username": "u"}, wantErr: "password"},
		{name: "unsupported oauthbearer", md: base(map[string]string{"sasl": "oauthbearer"}), wantErr: "not supported"},
		{name: "tiny watchInterval", md: base(map[string]string{"watchInterval": "1ms"}), wantErr: "watchInterval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: tc.md, AuthParams: tc.auth, ResolvedEnv: tc.env}
			var m Metadata
			err := scalers.Parse(cfg, &m)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), "kafka trigger") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q, want it to name the kafka trigger and %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func TestMetricSpecs(t *testing.T) {
	t.Parallel()
	cfg := &scalers.TriggerConfig{Type: TriggerType, Index: 2, MetricType: autoscalingv2.ValueMetricType,
		Metadata: map[string]string{"bootstrapServers": "127.0.0.1:1", "consumerGroup": "g", "topic": "My_Topic.v1", "lagThreshold": "42"}}
	cfg.Normalize()
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External == nil {
		t.Fatalf("specs = %+v", specs)
	}
	if got := specs[0].External.Metric.Name; got != "s2-kafka-my-topic-v1" {
		t.Errorf("metric name = %q, want s2-kafka-my-topic", got)
	}
	if v := specs[0].External.Target.Value; v == nil || v.Value() != 42 {
		t.Errorf("target = %+v, want Value 42", specs[0].External.Target)
	}
}

func TestPartitionLag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		committed, latest  int64
		pol                lagPolicy
		wantLag, wantTotal int64
	}{
		{name: "normal", committed: 3, latest: 10, wantLag: 7, wantTotal: 7},
		{name: "invalid latest", committed: -1, latest: 10, wantLag: 1, wantTotal: 1},
		{name: "invalid latest scale to zero", committed: -1, latest: 10, pol: lagPolicy{ScaleToZeroOnInvalid: true}},
		{name: "invalid earliest", committed: -1, latest: 10, pol: lagPolicy{Earliest: true}, wantLag: 10, wantTotal: 10},
		{name: "invalid earliest scale to zero", committed: -1, latest: 10, pol: lagPolicy{Earliest: true, ScaleToZeroOnInvalid: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lag, total := partitionLag("t", 0, tc.committed, tc.latest, tc.pol, map[string]map[int32]int64{})
			if lag != tc.wantLag || total != tc.wantTotal {
				t.Errorf("partitionLag = (%d, %d), want (%d, %d)", lag, total, tc.wantLag, tc.wantTotal)
			}
		})
	}
}

func TestCapLag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		t    lagTotals
		o    capOptions
		want int64
	}{
		{name: "under cap", t: lagTotals{Lag: 30, Partitions: 4}, o: capOptions{LagThreshold: 10}, want: 30},
		{name: "over cap", t: lagTotals{Lag: 1000, Partitions: 4}, o: capOptions{LagThreshold: 10}, want: 40},
		{name: "idle allowed", t: lagTotals{Lag: 1000, Partitions: 4}, o: capOptions{LagThreshold: 10, AllowIdleConsumers: true}, want: 1000},
		{name: "limit to partitions with lag", t: lagTotals{Lag: 1000, Partitions: 4, PartitionsWithLag: 1}, o: capOptions{LagThreshold: 10, LimitToWithLag: true}, want: 10},
		{name: "even distribution rounds up to a factor", t: lagTotals{Lag: 25, Partitions: 12}, o: capOptions{LagThreshold: 10, EvenDistribution: true}, want: 30},
		{name: "even distribution 5 of 12 goes to 6", t: lagTotals{Lag: 45, Partitions: 12}, o: capOptions{LagThreshold: 10, EvenDistribution: true}, want: 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := capLag(tc.t, tc.o); got != tc.want {
				t.Errorf("capLag = %d, want %d", got, tc.want)
			}
		})
	}
}

func FuzzParseKafkaMetadata(f *testing.F) {
	f.Add("b:9092", "g", "t", "10", "0", "latest", "0,1-3", "plaintext", "enable", "250ms")
	f.Add("", "", "", "x", "-1", "mid", "3-1", "gssapi", "yes", "0")
	f.Add("a:1,,b", "g", "", "9223372036854775807", "1", "earliest", "-", "scram_sha256", "disable", "1h")
	f.Add("[::1]:9092", " ", "t", "1", "0", "latest", "0-2147483647", "none", "enable", "-5s")
	f.Fuzz(func(t *testing.T, servers, group, topic, lag, act, policy, parts, sasl, tlsMode, watch string) {
		cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{
			"bootstrapServers": servers, "consumerGroup": group, "topic": topic, "lagThreshold": lag,
			"activationLagThreshold": act, "offsetResetPolicy": policy, "partitionLimitation": parts,
			"sasl": sasl, "tls": tlsMode, "watchInterval": watch,
		}, AuthParams: map[string]string{"username": "u", "password": "p", "ca": "not pem"}}
		cfg.Normalize()
		s, err := New(context.Background(), cfg)
		if err != nil {
			if !strings.Contains(err.Error(), "kafka trigger") {
				t.Fatalf("error does not name the trigger: %v", err)
			}
			return
		}
		_ = s.MetricSpecs()
		_ = s.Close(context.Background())
	})
}
