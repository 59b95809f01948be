package nats

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"
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
			s := newScaler(b, scalerOpts{metadata: bc.metadata})
			ctx := context.Background()
			if _, _, err := s.Sample(ctx); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, _, err := s.Sample(ctx); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
