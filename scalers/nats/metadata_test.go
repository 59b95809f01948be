package nats

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestParseMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"natsServerMonitoringEndpoint": "nats.nats.svc:8222", "account": "$G", "stream": "ORDERS", "consumer": "worker"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	type want struct {
		lag        int64
		activation int64
		monitoring string
		servers    string
		timeout    time.Duration
	}
	const jsz = "/jsz?acc=%24G&config=true&consumers=true"
	for _, tc := range []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		env      map[string]string
		want     *want
		errField string
	}{
		{name: "KEDA defaults", metadata: base(), want: &want{lag: 10, monitoring: "http://nats.nats.svc:8222" + jsz, timeout: defaultTimeout}},
		{name: "thresholds and https", metadata: base("lagThreshold", "50", "activationLagThreshold", "5", "useHttps", "true"), want: &want{lag: 50, activation: 5, monitoring: "https://nats.nats.svc:8222" + jsz, timeout: defaultTimeout}},
		{name: "account and endpoint from authParams", metadata: base("account", "<delete>", "natsServerMonitoringEndpoint", "<delete>"), auth: map[string]string{"account": "ACME", "natsServerMonitoringEndpoint": "10.0.0.1:8222"}, want: &want{lag: 10, monitoring: "http://10.0.0.1:8222/jsz?acc=ACME&config=true&consumers=true", timeout: defaultTimeout}},
		{name: "natsServer only, no account", metadata: base("natsServerMonitoringEndpoint", "<delete>", "account", "<delete>", "natsServer", "nats://a:4222, tls://b:4222", "timeout", "2s"), want: &want{lag: 10, servers: "nats://a:4222,tls://b:4222", timeout: 2 * time.Second}},
		{name: "natsServerFromEnv", metadata: base("natsServerMonitoringEndpoint", "<delete>", "natsServerFromEnv", "NATS_URL"), env: map[string]string{"NATS_URL": "nats://u:p@h:4222"}, want: &want{lag: 10, servers: "nats://u:p@h:4222", timeout: defaultTimeout}},
		{name: "both sources", metadata: base("natsServer", "nats://h:4222"), want: &want{lag: 10, monitoring: "http://nats.nats.svc:8222" + jsz, servers: "nats://h:4222", timeout: defaultTimeout}},

		{name: "no source", metadata: base("natsServerMonitoringEndpoint", "<delete>"), errField: "natsServerMonitoringEndpoint"},
		{name: "missing stream", metadata: base("stream", "<delete>"), errField: "stream"},
		{name: "missing consumer", metadata: base("consumer", "<delete>"), errField: "consumer"},
		{name: "stream with dot", metadata: base("stream", "a.b"), errField: "stream"},
		{name: "consumer with wildcard", metadata: base("consumer", "c>"), errField: "consumer"},
		{name: "missing account for monitoring", metadata: base("account", "<delete>"), errField: "account"},
		{name: "non-numeric lagThreshold", metadata: base("lagThreshold", "AA"), errField: "lagThreshold"},
		{name: "zero lagThreshold", metadata: base("lagThreshold", "0"), errField: "lagThreshold"},
		{name: "negative lagThreshold", metadata: base("lagThreshold", "-3"), errField: "lagThreshold"},
		{name: "fractional lagThreshold", metadata: base("lagThreshold", "1.5"), errField: "lagThreshold"},
		{name: "negative activationLagThreshold", metadata: base("activationLagThreshold", "-1"), errField: "activationLagThreshold"},
		{name: "non-numeric activationLagThreshold", metadata: base("activationLagThreshold", "x"), errField: "activationLagThreshold"},
		{name: "bad useHttps", metadata: base("useHttps", "yes please"), errField: "useHttps"},
		{name: "endpoint with path", metadata: base("natsServerMonitoringEndpoint", "h:8222/jsz"), errField: "natsServerMonitoringEndpoint"},
		{name: "endpoint with bad scheme", metadata: base("natsServerMonitoringEndpoint", "ftp://h:8222"), errField: "natsServerMonitoringEndpoint"},
		{name: "bad natsServer URL", metadata: base("natsServer", "::nope"), errField: "natsServer"},
		{name: "bad natsServer scheme", metadata: base("natsServer", "http://h:4222"), errField: "natsServer"},
		{name: "zero timeout", metadata: base("timeout", "0"), errField: "timeout"},
		{name: "bad timeout", metadata: base("timeout", "soon"), errField: "timeout"},
		{name: "bad jsDomain", metadata: base("jsDomain", "a.b"), errField: "jsDomain"},
		{name: "password without username", metadata: base(), auth: map[string]string{"password": "pw"}, errField: "username"},
		{name: "token and username", metadata: base(), auth: map[string]string{"username": "u", "password": "p", "token": "t"}, errField: "token"},
		{name: "password in plain metadata", metadata: base("username", "u", "password", "hunter22"), errField: "password"},
		{name: "bad tls", metadata: base(), auth: map[string]string{"tls": "on"}, errField: "tls"},
		{name: "cert without key", metadata: base(), auth: map[string]string{"tls": "enable", "cert": "x"}, errField: "cert"},
		{name: "bad ca", metadata: base(), auth: map[string]string{"tls": "enable", "ca": "x"}, errField: "ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: tc.metadata, AuthParams: tc.auth, ResolvedEnv: tc.env}
			s, err := New(context.Background(), cfg)
			if tc.want == nil {
				if err == nil {
					_ = s.Close(context.Background())
					t.Fatalf("want an error naming %q, got none", tc.errField)
				}
				if !strings.Contains(err.Error(), "nats-jetstream trigger") || !strings.Contains(err.Error(), tc.errField) {
					t.Fatalf("error %q does not name the scaler type and field %q", err, tc.errField)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close(context.Background())
			m := s.(*Scaler).meta
			got := want{lag: m.LagThreshold, activation: m.ActivationLagThreshold, monitoring: m.monitoringURL, servers: strings.Join(m.servers, ","), timeout: m.Timeout}
			if got != *tc.want {
				t.Fatalf("parsed %+v, want %+v", got, *tc.want)
			}
		})
	}
}

func FuzzParseNATSJetStreamMetadata(f *testing.F) {
	f.Add("nats.svc:8222", "nats://u:p@h:4222", "$G", "ORDERS", "worker", "10", "0", "false")
	f.Add("", "tls://a:1,nats://b:2", "", "S", "C", "-1", "x", "true")
	f.Add("http://h:1/x?y", "::", "acc", "a.b", "c*", "1e30", "NaN", "maybe")
	f.Add("h", "nats://h", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, endpoint, server, account, stream, consumer, lag, activation, https string) {
		md := map[string]string{
			"natsServerMonitoringEndpoint": endpoint, "natsServer": server, "account": account, "stream": stream,
			"consumer": consumer, "lagThreshold": lag, "activationLagThreshold": activation, "useHttps": https,
		}
		for k, v := range md {
			if v == "" {
				delete(md, k)
			}
		}
		cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: md}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := New(ctx, cfg)
		if err != nil {
			if !strings.Contains(err.Error(), "nats-jetstream trigger") {
				t.Fatalf("error does not name the trigger: %v", err)
			}
			return
		}
		_ = s.MetricSpecs()
		_, _, _ = s.Sample(ctx) // cancelled: fails fast, never panics
		_ = s.(*Scaler).Watch(ctx, make(chan struct{}, 1))
		_ = s.Close(context.Background())
	})
}
