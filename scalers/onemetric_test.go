package scalers

import (
	"errors"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

func TestOneMetric(t *testing.T) {
	t.Parallel()
	cfg := &TriggerConfig{Type: "fake", Name: "jobs", MetricType: autoscalingv2.ValueMetricType, AuthParams: map[string]string{"password": "hunter22"}}
	m := NewOneMetric(cfg, "s0-fake", 2.5, 3)
	specs := m.MetricSpecs()
	if m.MetricName() != "s0-fake" || len(specs) != 1 || specs[0].External.Metric.Name != "s0-fake" || specs[0].External.Target.Value.MilliValue() != 2500 {
		t.Fatalf("MetricSpecs = %+v", specs)
	}
	for _, tc := range []struct {
		v          float64
		wantActive bool
	}{{3, false}, {3.5, true}} {
		vals, active, err := m.Value(tc.v)
		if err != nil || len(vals) != 1 || vals[0] != (Sample{MetricName: "s0-fake", Value: tc.v}) || active != tc.wantActive {
			t.Errorf("Value(%v) = (%+v, %v, %v), want active %v", tc.v, vals, active, err, tc.wantActive)
		}
	}
	boom := errors.New("dial hunter22: refused")
	for _, tc := range []struct {
		format string
		args   []any
		want   string
	}{
		{want: `fake trigger "jobs": dial [REDACTED]: refused`},
		{format: "query %q", args: []any{"q"}, want: `fake trigger "jobs": query "q": dial [REDACTED]: refused`},
	} {
		vals, active, err := m.Report(7, boom, tc.format, tc.args...)
		if vals != nil || active || err == nil || err.Error() != tc.want || !errors.Is(err, boom) {
			t.Errorf("Report(%q) = (%v, %v, %v), want the error %q wrapping the read's", tc.format, vals, active, err, tc.want)
		}
	}
	if vals, active, err := m.Report(7, nil, "query %q", "q"); err != nil || len(vals) != 1 || vals[0].Value != 7 || !active {
		t.Errorf("Report without error = (%+v, %v, %v)", vals, active, err)
	}
}

type externalMeta struct {
	Value float64 `tidal:"name=value,target"`
}

func TestParseExternal(t *testing.T) {
	t.Parallel()
	m, err := ParseExternal[externalMeta](&TriggerConfig{Type: "fake", Metadata: map[string]string{"value": "4"}})
	if err != nil || m.Value != 4 {
		t.Fatalf("ParseExternal = (%+v, %v)", m, err)
	}
	_, err = ParseExternal[externalMeta](&TriggerConfig{Type: "fake", Metadata: map[string]string{"value": "4"}, MetricType: autoscalingv2.UtilizationMetricType})
	if err == nil || !strings.Contains(err.Error(), "metricType: Utilization") {
		t.Fatalf("Utilization: %v, want it refused", err)
	}
	if _, err = ParseExternal[externalMeta](&TriggerConfig{Type: "fake"}); err == nil || !strings.Contains(err.Error(), "value") {
		t.Fatalf("missing value: %v", err)
	}
}
