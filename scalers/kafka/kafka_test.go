package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestSampleLagThenCommit(t *testing.T) {
	t.Parallel()
	topic, group := uniqueName(t, "t"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(3, topic))
	latest := newScaler(t, triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group}))
	earliest := newScaler(t, triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group, "offsetResetPolicy": "earliest"}))

	// An empty topic and no commits: KEDA reports lag 1 per partition under "latest" so one consumer starts.
	wantSample(t, latest, 3, true)
	wantSample(t, earliest, 0, false)

	for p := 0; p < 3; p++ {
		c.produce(t, topic, p, 5)
	}
	wantSample(t, latest, 3, true)
	wantSample(t, earliest, 15, true)

	c.commit(t, group, topic, map[int]int64{0: 2, 1: 2, 2: 2})
	wantSample(t, latest, 9, true)
	wantSample(t, earliest, 9, true)

	c.commit(t, group, topic, map[int]int64{0: 5, 1: 5, 2: 5})
	wantSample(t, latest, 0, false)
	wantSample(t, earliest, 0, false)
}

func TestScaleToZeroOnInvalidOffset(t *testing.T) {
	t.Parallel()
	topic, group := uniqueName(t, "t"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(2, topic))
	c.produce(t, topic, 0, 4)
	for _, policy := range []string{"latest", "earliest"} {
		t.Run(policy, func(t *testing.T) {
			s := newScaler(t, triggerConfig(c.Addr, map[string]string{
				"topic": topic, "consumerGroup": group, "offsetResetPolicy": policy, "scaleToZeroOnInvalidOffset": "true",
			}))
			wantSample(t, s, 0, false)
		})
	}
}

func TestActivationThreshold(t *testing.T) {
	t.Parallel()
	topic, group := uniqueName(t, "t"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(1, topic))
	c.produce(t, topic, 0, 20)
	s := newScaler(t, triggerConfig(c.Addr, map[string]string{
		"topic": topic, "consumerGroup": group, "activationLagThreshold": "10", "lagThreshold": "100",
	}))
	c.commit(t, group, topic, map[int]int64{0: 11})
	wantSample(t, s, 9, false) // lag 9 is not above 10: inactive, but the value is still reported
	c.commit(t, group, topic, map[int]int64{0: 8})
	wantSample(t, s, 12, true)
}

func TestPartitionCap(t *testing.T) {
	t.Parallel()
	topic, group := uniqueName(t, "t"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(2, topic))
	c.produce(t, topic, 0, 10)
	c.produce(t, topic, 1, 1)
	c.commit(t, group, topic, map[int]int64{0: 0, 1: 1}) // lag: partition 0 = 10, partition 1 = 0

	tests := []struct {
		name       string
		md         map[string]string
		want       float64
		wantActive bool
	}{
		{name: "capped at partitions times threshold", md: map[string]string{"lagThreshold": "1"}, want: 2, wantActive: true},
		{name: "allowIdleConsumers reports the full lag", md: map[string]string{"lagThreshold": "1", "allowIdleConsumers": "true"}, want: 10, wantActive: true},
		{name: "limitToPartitionsWithLag caps at partitions with lag", md: map[string]string{"lagThreshold": "1", "limitToPartitionsWithLag": "true"}, want: 1, wantActive: true},
		{name: "below the cap is untouched", md: map[string]string{"lagThreshold": "5"}, want: 10, wantActive: true},
		{name: "partitionLimitation on the lagging partition", md: map[string]string{"lagThreshold": "100", "partitionLimitation": "0"}, want: 10, wantActive: true},
		{name: "partitionLimitation on the caught-up partition", md: map[string]string{"lagThreshold": "100", "partitionLimitation": "1"}, want: 0, wantActive: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"topic": topic, "consumerGroup": group}
			for k, v := range tc.md {
				md[k] = v
			}
			s := newScaler(t, triggerConfig(c.Addr, md))
			wantSample(t, s, tc.want, tc.wantActive)
		})
	}
}

func TestExcludePersistentLag(t *testing.T) {
	t.Parallel()
	topic, group := uniqueName(t, "t"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(1, topic))
	c.produce(t, topic, 0, 5)
	c.commit(t, group, topic, map[int]int64{0: 2})
	s := newScaler(t, triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group, "excludePersistentLag": "true"}))

	wantSample(t, s, 3, true) // first sight of the offset: counted
	// The group did not move: the lag is persistent, left out of the metric but still active.
	wantSample(t, s, 0, true)
	wantSample(t, s, 0, true)
	c.commit(t, group, topic, map[int]int64{0: 3})
	wantSample(t, s, 2, true) // it moved: counted again
}

func TestTopicOmittedSumsCommittedTopics(t *testing.T) {
	t.Parallel()
	t1, t2, other, group := uniqueName(t, "a"), uniqueName(t, "b"), uniqueName(t, "c"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(1, t1, t2, other))
	c.produce(t, t1, 0, 7)
	c.produce(t, t2, 0, 4)
	c.produce(t, other, 0, 100) // the group never committed here: not counted
	s := newScaler(t, triggerConfig(c.Addr, map[string]string{"consumerGroup": group, "lagThreshold": "100"}))
	if !strings.HasSuffix(s.metricName, "-topics") || !strings.HasPrefix(s.metricName, "s0-kafka-") {
		t.Fatalf("metric name %q, want s0-kafka-<group>-topics", s.metricName)
	}
	wantSample(t, s, 0, false) // no committed topics yet
	c.commit(t, group, t1, map[int]int64{0: 2})
	c.commit(t, group, t2, map[int]int64{0: 1})
	wantSample(t, s, 5+3, true)
}

func TestSASL(t *testing.T) {
	t.Parallel()
	const user, pass = "tidal-user", "s3cret-Pa55word"
	topic, group := uniqueName(t, "t"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(1, topic), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", user, pass),
		kfake.Superuser("SCRAM-SHA-256", user, pass),
		kfake.Superuser("SCRAM-SHA-512", user, pass),
	)
	c.withAdminAuth(plain.Mechanism{Username: user, Password: pass}, nil)
	c.produce(t, topic, 0, 6)
	c.commit(t, group, topic, map[int]int64{0: 1})

	for _, mech := range []string{"plaintext", "scram_sha256", "scram_sha512"} {
		t.Run(mech, func(t *testing.T) {
			cfg := triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group, "sasl": mech})
			cfg.AuthParams = map[string]string{"username": user, "password": pass}
			wantSample(t, newScaler(t, cfg), 5, true)
		})
	}
	t.Run("wrong password never leaks", func(t *testing.T) {
		const wrong = "wr0ng-Pa55word-xyz"
		logger, logs := scalertest.ObservedLogger()
		cfg := triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group, "version": "2.8.0", "watchInterval": "20ms"})
		cfg.AuthParams = map[string]string{"sasl": "scram_sha256", "username": user, "password": wrong}
		cfg.Logger = logger
		s := newScaler(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _, err := s.Sample(ctx)
		if err == nil {
			t.Fatal("Sample with a wrong password succeeded")
		}
		t.Logf("wrong-password error: %v", err)
		if !strings.Contains(err.Error(), "kafka trigger") {
			t.Errorf("error %q does not name the trigger", err)
		}
		// Let Watch fail and log too.
		wctx, wcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer wcancel()
		_ = s.Watch(wctx, make(chan struct{}, 1))
		scalertest.AssertNoSecret(t, wrong, err.Error(), logs.All())
		if logs.FilterMessageSnippet("watch failed").Len() == 0 {
			t.Errorf("Watch logged no failure; logs: %v", logs.All())
		}
	})
}

func TestTLS(t *testing.T) {
	t.Parallel()
	pki := scalertest.NewPKI(t)
	topic, group := uniqueName(t, "t"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(1, topic), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.Server}, MinVersion: tls.VersionTLS12}))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(pki.CA))
	c.withAdminAuth(nil, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	c.produce(t, topic, 0, 3)
	c.commit(t, group, topic, map[int]int64{0: 1})

	t.Run("ca verifies the broker", func(t *testing.T) {
		cfg := triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group})
		cfg.AuthParams = map[string]string{"tls": "enable", "ca": pki.CA}
		wantSample(t, newScaler(t, cfg), 2, true)
	})
	t.Run("unsafeSsl skips verification", func(t *testing.T) {
		cfg := triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group, "unsafeSsl": "true", "tls": "enable"})
		wantSample(t, newScaler(t, cfg), 2, true)
	})
	t.Run("unknown CA is refused", func(t *testing.T) {
		cfg := triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group, "tls": "enable"})
		s := newScaler(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, _, err := s.Sample(ctx); err == nil {
			t.Fatal("Sample trusted a broker certificate from an unknown CA")
		}
	})
}

func TestWatchWakesBeforePollingInterval(t *testing.T) {
	t.Parallel()
	topic, group := uniqueName(t, "t"), uniqueName(t, "g")
	c := newTestCluster(t, kfake.SeedTopics(2, topic))
	c.commit(t, group, topic, map[int]int64{0: 0, 1: 0})
	cfg := triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group})
	cfg.PollingInterval = 60 * time.Second
	s := newScaler(t, cfg)
	wantSample(t, s, 0, false)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, changed) }()
	time.Sleep(3 * s.meta.WatchInterval) // let the watch take its first reading of the empty topic
	select {
	case <-changed:
		t.Fatal("Watch signalled before anything was produced")
	default:
	}

	start := time.Now()
	c.produce(t, topic, 1, 3)
	select {
	case <-changed:
		t.Logf("Watch wake-up %v after produce (polling interval %v)", time.Since(start), cfg.PollingInterval)
	case <-time.After(cfg.PollingInterval):
		t.Fatal("no Watch wake-up within the polling interval")
	}
	wantSample(t, s, 3, true)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch returned %v after cancel, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestUnreachableBrokerIsSampleError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	cfg := triggerConfig(addr, map[string]string{"topic": "t", "consumerGroup": "g"})
	cfg.Name = "orders"
	s := newScaler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err = s.Sample(ctx)
	if err == nil || !strings.Contains(err.Error(), `kafka trigger "orders"`) {
		t.Fatalf("Sample error = %v, want one naming kafka trigger \"orders\"", err)
	}
}

func TestMissingTopicIsSampleError(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, kfake.SeedTopics(1, uniqueName(t, "t")))
	missing := uniqueName(t, "missing")
	s := newScaler(t, triggerConfig(c.Addr, map[string]string{"topic": missing, "consumerGroup": "g"}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err := s.Sample(ctx)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "kafka trigger") {
		t.Fatalf("Sample error = %v, want one naming the trigger and the missing topic", err)
	}
}

func TestClientShared(t *testing.T) {
	t.Parallel()
	topic := uniqueName(t, "t")
	c := newTestCluster(t, kfake.SeedTopics(1, topic))
	shared := scalers.NewShared()
	var ss []*Scaler
	for i, g := range []string{"g1", "g2"} {
		cfg := triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": g})
		cfg.Shared, cfg.Index = shared, i
		ss = append(ss, newScaler(t, cfg))
	}
	if shared.Len() != 1 {
		t.Fatalf("shared clients = %d, want 1 for two triggers on the same brokers", shared.Len())
	}
	names := []string{ss[0].MetricSpecs()[0].External.Metric.Name, ss[1].MetricSpecs()[0].External.Metric.Name}
	sort.Strings(names)
	if names[0] == names[1] {
		t.Fatalf("metric names collide: %v", names)
	}
	for _, s := range ss {
		_ = s.Close(context.Background())
	}
	if shared.Len() != 0 {
		t.Fatalf("shared clients after Close = %d, want 0", shared.Len())
	}
}

func BenchmarkSample(b *testing.B) {
	topic, group := uniqueName(b, "t"), uniqueName(b, "g")
	c := newTestCluster(b, kfake.SeedTopics(8, topic))
	for p := 0; p < 8; p++ {
		c.produce(b, topic, p, 10)
	}
	c.commit(b, group, topic, map[int]int64{0: 1, 1: 2, 2: 3, 3: 4})
	s := newScaler(b, triggerConfig(c.Addr, map[string]string{"topic": topic, "consumerGroup": group}))
	scalertest.BenchmarkSample(b, s)
}
