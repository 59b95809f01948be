package scalertest

import (
	"testing"

	"github.com/tidalscale/tidal/scalers"
)

// ExpectMetric fails t unless s has exactly one External metric, named name, whose AverageValue target is
// targetMilli milli-units.
func ExpectMetric(t testing.TB, s scalers.Scaler, name string, targetMilli int64) {
	t.Helper()
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External == nil || specs[0].External.Metric.Name != name {
		t.Fatalf("specs = %+v, want one External metric %s", specs, name)
	}
	if target := specs[0].External.Target.AverageValue; target == nil || target.MilliValue() != targetMilli {
		t.Errorf("target = %v, want %dm", target, targetMilli)
	}
}

// Step is one stage of a Steps sequence: Do changes the source (nil: nothing), then a Sample must read Value
// and Active.
type Step struct {
	Name   string
	Do     func()
	Value  float64
	Active bool
}

// Steps runs steps in order on s (Sample, failing t on an error or on anything but one value) and reports every
// step whose value or activity is not the expected one.
func Steps(t testing.TB, s scalers.Scaler, steps []Step) {
	t.Helper()
	for _, st := range steps {
		if st.Do != nil {
			st.Do()
		}
		if v, active := Sample(t, s, ""); v != st.Value || active != st.Active {
			t.Errorf("%s: value %v active %v, want %v %v", st.Name, v, active, st.Value, st.Active)
		}
	}
}
