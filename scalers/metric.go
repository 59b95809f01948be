package scalers

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// ExternalMetric builds the External metric spec of a trigger: its name, and a target of the trigger's
// metricType (AverageValue unless the trigger says Value) set to target.
func ExternalMetric(cfg *TriggerConfig, metricName string, target float64) autoscalingv2.MetricSpec {
	q := FloatQuantity(target)
	mt := autoscalingv2.MetricTarget{Type: cfg.MetricType}
	switch cfg.MetricType {
	case autoscalingv2.ValueMetricType:
		mt.Value = &q
	default:
		mt.Type = autoscalingv2.AverageValueMetricType
		mt.AverageValue = &q
	}
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: metricName},
			Target: mt,
		},
	}
}
