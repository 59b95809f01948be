package external

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// metrics are one Provider's collectors.
type metrics struct {
	requests *prometheus.CounterVec // code
	latency  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidal", Subsystem: "metrics_adapter", Name: "external_requests_total",
			Help: "external.metrics.k8s.io metric requests answered, by HTTP status code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tidal", Subsystem: "metrics_adapter", Name: "external_request_duration_seconds",
			Help:    "Time the provider took to answer one external metric request (cache read only).",
			Buckets: []float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05},
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(start time.Time, err error) {
	m.latency.Observe(time.Since(start).Seconds())
	code := 200
	if err != nil {
		code = 500
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			code = int(status.Status().Code)
		}
	}
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}
