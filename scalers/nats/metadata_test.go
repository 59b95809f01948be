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
	scalertest.NewTable(t, TriggerType, "", New, func(s scalers.Scaler) want {
		m := s.(*Scaler).meta
		return want{lag: m.LagThreshold, activation: m.ActivationLagThreshold, monitoring: m.monitoringURL, servers: strings.Join(m.servers, ","), timeout: m.Timeout}
	}, []scalertest.NewCase[want]{
		{Name: "KEDA defaults", MD: base(), WantMeta: want{lag: 10, monitoring: "http://nats.nats.svc:8222" + jsz, timeout: defaultTimeout}},
		{Name: "thresholds and https", MD: base("lagThreshold", "50", "activationLagThreshold", "5", "useHttps", "true"), WantMeta: want{lag: 50, activation: 5, monitoring: "https://nats.nats.svc:8222" + jsz, timeout: defaultTimeout}},
		{Name: "account and endpoint from authParams", MD: base("account", "<delete>", "natsServerMonitoringEndpoint", "<delete>"), Auth: map[string]string{"account": "ACME", "natsServerMonitoringEndpoint": "10.0.0.1:8222"}, WantMeta: want{lag: 10, monitoring: "http://10.0.0.1:8222/jsz?acc=ACME&config=true&consumers=true", timeout: defaultTimeout}},
		{Name: "natsServer only, no account", MD: base("natsServerMonitoringEndpoint", "<delete>", "account", "<delete>", "natsServer", "nats://a:4222, tls://b:4222", "timeout", "2s"), WantMeta: want{lag: 10, servers: "nats://a:4222,tls://b:4222", timeout: 2 * time.Second}},
		{Name: "natsServerFromEnv", MD: base("natsServerMonitoringEndpoint", "<delete>", "natsServerFromEnv", "NATS_URL"), Env: map[string]string{"NATS_URL": "nats://u:p@h:4222"}, WantMeta: want{lag: 10, servers: "nats://u:p@h:4222", timeout: defaultTimeout}},
		{Name: "both sources", MD: base("natsServer", "nats://h:4222"), WantMeta: want{lag: 10, monitoring: "http://nats.nats.svc:8222" + jsz, servers: "nats://h:4222", timeout: defaultTimeout}},

		{Name: "no source", MD: base("natsServerMonitoringEndpoint", "<delete>"), WantErr: "natsServerMonitoringEndpoint"},
		{Name: "missing stream", MD: base("stream", "<delete>"), WantErr: "stream"},
		{Name: "missing consumer", MD: base("consumer", "<delete>"), WantErr: "consumer"},
		{Name: "stream with dot", MD: base("stream", "a.b"), WantErr: "stream"},
		{Name: "consumer with wildcard", MD: base("consumer", "c>"), WantErr: "consumer"},
		{Name: "missing account for monitoring", MD: base("account", "<delete>"), WantErr: "account"},
		{Name: "non-numeric lagThreshold", MD: base("lagThreshold", "AA"), WantErr: "lagThreshold"},
		{Name: "zero lagThreshold", MD: base("lagThreshold", "0"), WantErr: "lagThreshold"},
		{Name: "negative lagThreshold", MD: base("lagThreshold", "-3"), WantErr: "lagThreshold"},
		{Name: "fractional lagThreshold", MD: base("lagThreshold", "1.5"), WantErr: "lagThreshold"},
		{Name: "negative activationLagThreshold", MD: base("activationLagThreshold", "-1"), WantErr: "activationLagThreshold"},
		{Name: "non-numeric activationLagThreshold", MD: base("activationLagThreshold", "x"), WantErr: "activationLagThreshold"},
		{Name: "bad useHttps", MD: base("useHttps", "yes please"), WantErr: "useHttps"},
		{Name: "endpoint with path", MD: base("natsServerMonitoringEndpoint", "h:8222/jsz"), WantErr: "natsServerMonitoringEndpoint"},
		{Name: "endpoint with bad scheme", MD: base("natsServerMonitoringEndpoint", "ftp://h:8222"), WantErr: "natsServerMonitoringEndpoint"},
		{Name: "bad natsServer URL", MD: base("natsServer", "::nope"), WantErr: "natsServer"},
		{Name: "bad natsServer scheme", MD: base("natsServer", "http://h:4222"), WantErr: "natsServer"},
		{Name: "zero timeout", MD: base("timeout", "0"), WantErr: "timeout"},
		{Name: "bad timeout", MD: base("timeout", "soon"), WantErr: "timeout"},
		{Name: "bad jsDomain", MD: base("jsDomain", "a.b"), WantErr: "jsDomain"},
		{Name: "password without username", MD: base(), Auth: map[string]string{"password": "pw"}, WantErr: "username"},
		{Name: "token and username", MD: base(), Auth: map[string]string{"username": "u", "password": "p", "token": "t"}, WantErr: "token"},
		{Name: "password in plain metadata", MD: base("username", "u", "password", "hunter22"), WantErr: "password"},
		{Name: "bad tls", MD: base(), Auth: map[string]string{"tls": "on"}, WantErr: "tls"},
		{Name: "cert without key", MD: base(), Auth: map[string]string{"tls": "enable", "cert": "x"}, WantErr: "cert"},
		{Name: "bad ca", MD: base(), Auth: map[string]string{"tls": "enable", "ca": "x"}, WantErr: "ca"},
	})
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
