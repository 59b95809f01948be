package rabbitmq

import (
	"testing"

	"github.com/tidalscale/tidal/scalers/scalertest"
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
			s := newScaler(b, scalertest.Trigger{MD: map[string]string{"host": bc.host, "queueName": q}})
			scalertest.BenchmarkSample(b, s)
		})
	}
}
