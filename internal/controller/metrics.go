package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runners' collectors of one process. A nil *Metrics records nothing.
type Metrics struct {
	reconciles    *prometheus.CounterVec
	reconcileTime *prometheus.HistogramVec
	queueDepth    *prometheus.GaugeVec
}

// NewMetrics registers tidal_<subsystem>_reconciles_total{kind,result},
// tidal_<subsystem>_reconcile_duration_seconds{kind} and tidal_<subsystem>_workqueue_depth{queue} on reg.
func NewMetrics(reg prometheus.Registerer, subsystem string) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidal", Subsystem: subsystem, Name: "reconciles_total",
			Help: "Reconciles by kind and result.",
		}, []string{"kind", "result"}),
		reconcileTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tidal", Subsystem: subsystem, Name: "reconcile_duration_seconds",
			Help: "Time spent in one reconcile.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"kind"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tidal", Subsystem: subsystem, Name: "workqueue_depth",
			Help: "Keys waiting in a controller's queue.",
		}, []string{"queue"}),
	}
	reg.MustRegister(m.reconciles, m.reconcileTime, m.queueDepth)
	return m
}

func (m *Metrics) observe(kind, queue string, d time.Duration, err error, depth int) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(kind, result).Inc()
	m.reconcileTime.WithLabelValues(kind).Observe(d.Seconds())
	m.queueDepth.WithLabelValues(queue).Set(float64(depth))
}
