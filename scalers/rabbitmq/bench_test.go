package rabbitmq

import (
	"context"
	"sort"
	"testing"
	"time"
)

// BenchmarkSample measures one Sample against the local broker: a passive queue.declare over AMQP, and a GET
// of one queue from the management API over HTTP. p50/p99 are per-call latencies.
func BenchmarkSample(b *testing.B) {
	br := newBroker(b)
	q := uniqueQueue(b)
	br.declare(b, q)
	br.publish(b, q, 10)
	for _, bc := range []struct {
		name string
		host string
	}{
		{name: "amqp", host: amqpURL},
		{name: "http", host: httpURL},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newScaler(b, scalerOpts{metadata: map[string]string{"host": bc.host, "queueName": q}})
			ctx := context.Background()
			if _, _, err := s.Sample(ctx); err != nil { // connect outside the timed loop
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
