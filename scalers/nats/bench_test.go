package nats

import (
	"strings"
	"testing"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

// BenchmarkSample measures one Sample: a $JS.API.CONSUMER.INFO request to the local server, and a /jsz read
// of the captured monitoring answer from an httptest server. p50/p99 are per-call latencies.
func BenchmarkSample(b *testing.B) {
	f := newFixture(b, natsURL, "")
	f.publish(b, f.subject, 10)
	srv, _ := jszServer(b)
	for _, bc := range []struct {
		name     string
		metadata map[string]string
	}{
		{name: "jetstream-api", metadata: map[string]string{"natsServer": natsURL, "stream": f.stream, "consumer": f.consumer}},
		{name: "monitoring-jsz", metadata: map[string]string{"natsServerMonitoringEndpoint": strings.TrimPrefix(srv.URL, "http://"), "account": "$G", "stream": "ORDERS", "consumer": "worker"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newScaler(b, scalertest.Trigger{MD: bc.metadata})
			scalertest.BenchmarkSample(b, s)
		})
	}
}
