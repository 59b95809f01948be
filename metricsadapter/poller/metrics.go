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
}

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
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.samples, m.latency, m.lag, m.cacheAge, m.objects, m.triggers,
			m.pushWakeups, m.watchFailures, m.coalesced} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
