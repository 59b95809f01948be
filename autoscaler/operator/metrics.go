package operator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the operator's Prometheus collectors. A nil *Metrics records nothing, so tests may omit it.
type Metrics struct {
	reconciles    *prometheus.CounterVec
	reconcileTime *prometheus.HistogramVec
	scales        *prometheus.CounterVec
	sampleToScale prometheus.Histogram
	triggerErrors *prometheus.CounterVec
	queueDepth    *prometheus.GaugeVec
}

// NewMetrics registers the operator's collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidal", Subsystem: "operator", Name: "reconciles_total",
			Help: "Reconciles by kind and result.",
		}, []string{"kind", "result"}),
		reconcileTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tidal", Subsystem: "operator", Name: "reconcile_duration_seconds",
			Help: "Time spent in one reconcile.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"kind"}),
		scales: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidal", Subsystem: "operator", Name: "scale_decisions_total",
			Help: "Replica changes written to /scale, by direction and reason.",
		}, []string{"direction", "reason"}),
		sampleToScale: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tidal", Subsystem: "operator", Name: "sample_to_scale_seconds",
			Help: "Latency from the sample that caused a scale to the /scale write.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		triggerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidal", Subsystem: "operator", Name: "trigger_errors_total",
			Help: "Failed trigger samples seen by the operator, by namespace, object and trigger.",
		}, []string{"namespace", "scaledObject", "trigger"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tidal", Subsystem: "operator", Name: "workqueue_depth",
			Help: "Keys waiting in a controller's queue.",
		}, []string{"queue"}),
	}
	reg.MustRegister(m.reconciles, m.reconcileTime, m.scales, m.sampleToScale, m.triggerErrors, m.queueDepth)
	return m
}

// ObserveReconcile counts one reconcile.
func (m *Metrics) ObserveReconcile(kind string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(kind, result).Inc()
	m.reconcileTime.WithLabelValues(kind).Observe(d.Seconds())
}

// ObserveScale counts one /scale write and how long after its sample it happened.
func (m *Metrics) ObserveScale(from, to int32, reason string, sinceSample time.Duration) {
	if m == nil {
		return
	}
	dir := "up"
	if to < from {
		dir = "down"
	}
	m.scales.WithLabelValues(dir, reason).Inc()
	if sinceSample > 0 {
		m.sampleToScale.Observe(sinceSample.Seconds())
	}
}

// ObserveTriggerError counts a failed sample.
func (m *Metrics) ObserveTriggerError(namespace, name, trigger string) {
	if m == nil {
		return
	}
	m.triggerErrors.WithLabelValues(namespace, name, trigger).Inc()
}

// SetQueueDepth records a queue's length.
func (m *Metrics) SetQueueDepth(queue string, n int) {
	if m == nil {
		return
	}
	m.queueDepth.WithLabelValues(queue).Set(float64(n))
}
