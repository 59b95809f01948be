package poller

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one Poller's Prometheus collectors; each Poller has its own, registered on Options.Metrics.
type metrics struct {
	samples       *prometheus.CounterVec   // type, result
	latency       *prometheus.HistogramVec // type
	lag           prometheus.Histogram
	cacheAge      prometheus.Histogram
	objects       prometheus.Gauge
	triggers      prometheus.Gauge
	pushWakeups   *prometheus.CounterVec // type
	watchFailures *prometheus.CounterVec // type
	coalesced     prometheus.Counter

	// Per trigger, like KEDA's keda_scaler_*: labelled with triggerLabels (and metric for the value).
	scalerValue  *prometheus.GaugeVec
	scalerActive *prometheus.GaugeVec
	scalerErrors *prometheus.CounterVec
}

// triggerLabels name one trigger in the per-trigger series: the object's namespace, kind and name (label
// scaledObject, as KEDA calls it, for ScaledJobs too), the trigger's name in status (spec.triggers[].name or
// s<index>-<type>) and its type.
var triggerLabels = []string{"namespace", "kind", "scaledObject", "trigger", "type"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "tidal", "poller"
	m := &metrics{
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "samples_total",
			Help: "Samples taken, by trigger type and result (success, error).",
		}, []string{"type", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "sample_duration_seconds",
			Help:    "Time one Sample call took, by trigger type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "scheduler_lag_seconds",
			Help:    "How late a sample started compared with its due time.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		cacheAge: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_age_seconds",
			Help:    "Age of the cached sample at each Lookup.",
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600},
		}),
		objects: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "objects",
			Help: "ScaledObjects and ScaledJobs held.",
		}),
		triggers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "triggers",
			Help: "Triggers held, including those whose scaler failed to build.",
		}),
		pushWakeups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "push_wakeups_total",
			Help: "Change signals received from push scalers, by trigger type.",
		}, []string{"type"}),
		watchFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "watch_failures_total",
			Help: "Push watches that ended with an error (the trigger falls back to polling), by trigger type.",
		}, []string{"type"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "subscriber_coalesced_total",
			Help: "Updates replaced by a newer one for the same trigger before a slow subscriber read them.",
		}),
		scalerValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: "scaler", Name: "metrics_value",
			Help: "The last successfully sampled value of each trigger's metric (KEDA's keda_scaler_metrics_value).",
		}, append(append([]string(nil), triggerLabels...), "metric")),
		scalerActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: "scaler", Name: "active",
			Help: "1 when the trigger's last successful sample was active, else 0 (KEDA's keda_scaler_active).",
		}, triggerLabels),
		scalerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: "scaler", Name: "errors_total",
			Help: "Failed samples of each trigger (KEDA's keda_scaler_errors_total).",
		}, triggerLabels),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.samples, m.latency, m.lag, m.cacheAge, m.objects, m.triggers,
			m.pushWakeups, m.watchFailures, m.coalesced, m.scalerValue, m.scalerActive, m.scalerErrors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// forgetTriggers deletes the per-trigger series of old's triggers that keep (the object replacing it, or nil)
// does not have, so a deleted object or trigger leaves no stale value behind.
func (m *metrics) forgetTriggers(old, keep *object) {
	kept := map[string]bool{}
	if keep != nil {
		for _, t := range keep.triggers {
			kept[t.labels["trigger"]] = true
		}
	}
	for _, t := range old.triggers {
		if kept[t.labels["trigger"]] {
			continue
		}
		m.scalerValue.DeletePartialMatch(t.labels)
		m.scalerActive.DeletePartialMatch(t.labels)
		m.scalerErrors.DeletePartialMatch(t.labels)
	}
}
