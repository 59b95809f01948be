package scalers

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// OneMetric is the External metric of a trigger that reports one value: its name, its target per replica and the
// activation threshold. A scaler embeds it for MetricSpecs and builds its Sample's result with Report (or Value).
type OneMetric struct {
	cfg                *TriggerConfig
	name               string
	target, activation float64
}

// NewOneMetric returns the metric name of cfg's trigger (built with cfg.MetricName), with target as its target
// and activation as the threshold above which the trigger is active.
func NewOneMetric(cfg *TriggerConfig, name string, target, activation float64) OneMetric {
	return OneMetric{cfg: cfg, name: name, target: target, activation: activation}
}

// MetricName is the External metric's name.
func (m OneMetric) MetricName() string { return m.name }

// MetricSpecs returns the one External metric, of the trigger's metricType, with the target.
func (m OneMetric) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{ExternalMetric(m.cfg, m.name, m.target)}
}

// Value is what Sample returns for a value read: v as the metric's one sample, active when above the activation
// threshold.
func (m OneMetric) Value(v float64) ([]Sample, bool, error) {
	return []Sample{{MetricName: m.name, Value: v}}, v > m.activation, nil
}

// Report is what Sample returns for a read of v that failed with err (nil: Value(v)): err naming the trigger
// (TriggerConfig.Errorf), after what the trigger read, given as a fmt format and its args ("query %q", query),
// when format is not empty.
func (m OneMetric) Report(v float64, err error, format string, args ...any) ([]Sample, bool, error) {
	switch {
	case err == nil:
		return m.Value(v)
	case format == "":
		return nil, false, m.cfg.Errorf("%w", err)
	default:
		return nil, false, m.cfg.Errorf(format+": %w", append(args, err)...)
	}
}

// ParseExternal parses the metadata of a trigger whose metric is External into a new M (Parse), refusing
// metricType Utilization first.
func ParseExternal[M any](cfg *TriggerConfig) (M, error) {
	var m M
	if err := cfg.RefuseUtilization(); err != nil {
		return m, err
	}
	err := Parse(cfg, &m)
	return m, err
}
