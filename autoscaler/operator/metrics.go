package operator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidalscale/tidal/internal/controller"
)

// Metrics are the operator's Prometheus collectors. A nil *Metrics records nothing, so tests may omit it.
type Metrics struct {
	reg           prometheus.Registerer
	runtime       *controller.Metrics
	scales        *prometheus.CounterVec
	sampleToScale prometheus.Histogram
	triggerErrors *prometheus.CounterVec
}

// NewMetrics registers the operator's collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg:     reg,
		runtime: controller.NewMetrics(reg, "operator"),
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
	}
	reg.MustRegister(m.scales, m.sampleToScale, m.triggerErrors)
	return m
}

// Runtime is what the controller runtime records: reconciles by kind and result, reconcile duration and queue
// depth (tidal_operator_reconciles_total, _reconcile_duration_seconds, _workqueue_depth).
func (m *Metrics) Runtime() *controller.Metrics {
	if m == nil {
		return nil
	}
	return m.runtime
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

// RegisterShard registers tidal_shard_members (the live members this replica sees) and
// tidal_shard_owned_objects{kind} (the cached objects of each kind it owns), read at scrape time. The returned
// function unregisters them.
func (m *Metrics) RegisterShard(members func() []string, owned map[string]func() int) (unregister func()) {
	if m == nil {
		return func() {}
	}
	cs := []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "tidal", Subsystem: "shard", Name: "members",
		Help: "Live members of this replica's shard group, as this replica sees them.",
	}, func() float64 { return float64(len(members())) })}
	for kind, f := range owned {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "tidal", Subsystem: "shard", Name: "owned_objects",
			Help:        "Objects this replica owns (and alone writes), by kind.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(f()) }))
	}
	for _, c := range cs {
		m.reg.MustRegister(c)
	}
	return func() {
		for _, c := range cs {
			m.reg.Unregister(c)
		}
	}
}
