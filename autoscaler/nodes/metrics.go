package nodes

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the node autoscaler's Prometheus metrics, named like cluster-autoscaler's with the
// tidal_node_autoscaler_ prefix. Register them on the registry the /metrics handler serves.
type Metrics struct {
	UnschedulablePods prometheus.Gauge
	BurstPods         prometheus.Gauge       // pods running on virtual nodes
	ScaleUps          *prometheus.CounterVec // by node_group: scale-up decisions that grew the group
	ScaledUpNodes     *prometheus.CounterVec // by node_group
	ScaledDownNodes   *prometheus.CounterVec // by node_group
	FailedScaleUps    *prometheus.CounterVec // by node_group, reason
	FunctionDuration  *prometheus.HistogramVec
	NodeGroupBackoff  *prometheus.GaugeVec // 1 while a group is backed off
	Nodes             *prometheus.GaugeVec // by state: ready, unready, upcoming
	UnneededNodes     prometheus.Gauge
	LastActivity      *prometheus.GaugeVec   // by activity: main, scaleUp, scaleDown
	DemandPods        prometheus.Gauge       // simulated pods of CapacityRequests and headroom, last loop
	NodesAhead        *prometheus.CounterVec // by node_group: nodes requested by scale-ups that simulated demand
}

// NewMetrics creates the metrics and registers them on reg (nil skips registration).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	ns := "tidal_node_autoscaler"
	m := &Metrics{
		UnschedulablePods: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "unschedulable_pods_count",
			Help: "Pending pods the scheduler marked unschedulable."}),
		BurstPods: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "burst_pods_count",
			Help: "Pods running on virtual nodes (burst capacity)."}),
		ScaleUps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scale_ups_total",
			Help: "Scale-up decisions that grew a node group (one per group per loop, however many nodes)."}, []string{"node_group"}),
		ScaledUpNodes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scaled_up_nodes_total",
			Help: "Nodes requested by scale-up."}, []string{"node_group"}),
		ScaledDownNodes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scaled_down_nodes_total",
			Help: "Nodes removed by scale-down."}, []string{"node_group"}),
		FailedScaleUps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "failed_scale_ups_total",
			Help: "Failed scale-ups by reason."}, []string{"node_group", "reason"}),
		FunctionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "function_duration_seconds",
			Help:    "Time taken by parts of the autoscaler loop.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}, []string{"function"}),
		NodeGroupBackoff: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "node_group_backoff",
			Help: "1 while scale-up of the node group is backed off."}, []string{"node_group"}),
		Nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "nodes_count",
			Help: "Nodes of managed node groups by state."}, []string{"state"}),
		UnneededNodes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "unneeded_nodes_count",
			Help: "Nodes currently considered unneeded."}),
		LastActivity: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "last_activity",
			Help: "Unix time of the last activity of each kind."}, []string{"activity"}),
		DemandPods: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "demand_pods_count",
			Help: "Simulated pods of unexpired CapacityRequests (replicas not yet created) and NodeGroup headroom."}),
		NodesAhead: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "nodes_provisioned_ahead_total",
			Help: "Nodes requested by scale-ups whose pods were simulated demand (CapacityRequest or headroom), ahead of the real pods."}, []string{"node_group"}),
	}
	if reg != nil {
		reg.MustRegister(m.UnschedulablePods, m.BurstPods, m.ScaleUps, m.ScaledUpNodes, m.ScaledDownNodes, m.FailedScaleUps, m.FunctionDuration,
			m.NodeGroupBackoff, m.Nodes, m.UnneededNodes, m.LastActivity, m.DemandPods, m.NodesAhead)
	}
	return m
}
