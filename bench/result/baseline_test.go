package result_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/scenario"
)

// resultWith is a scenario result whose one run has the metric "latency" with these samples (ms).
func resultWith(name string, short bool, load float64, samples ...time.Duration) *result.Result {
	return &result.Result{
		SchemaVersion: result.SchemaVersion, Scenario: name, Kind: scenario.KindScaleFromZero, Short: short,
		TidalVersion: "test", Machine: result.Machine{CPUs: 2, LoadAvg1: load, LoadAvg1End: load + 0.5},
		Runs: []*result.Run{{Autoscaler: "tidal-direct", Metrics: []*result.Metric{result.NewMetric("latency", "a", "b", samples)}}},
	}
}

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// A p99 more than the allowed rise over the baseline's regresses; at or under it does not; figures are matched by
// scenario, form, autoscaler and metric, and the baseline survives a write and read.
func TestBaselineCompareFlagsP99Regressions(t *testing.T) {
	base, err := result.NewBaseline([]*result.Result{
		resultWith("a", false, 0.3, ms(10, 20, 100)...),
		resultWith("b", false, 0.4, ms(5, 5, 50)...),
		resultWith("a", true, 0.2, ms(1, 1, 10)...), // the short form is a figure of its own
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Figures) != 3 {
		t.Fatalf("figures %+v, want 3", base.Figures)
	}
	path := filepath.Join(t.TempDir(), "baseline.json")
	if err := base.Write(path); err != nil {
		t.Fatal(err)
	}
	read, err := result.ReadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if read.Figures[0].LoadAvg1 == 0 || read.Figures[0].LoadAvg1End == 0 {
		t.Fatalf("the load was not kept with the figure: %+v", read.Figures[0])
	}

	c := read.Compare([]*result.Result{
		resultWith("a", false, 1, ms(10, 20, 120)...), // p99 100 → 120: exactly +20 %, allowed
		resultWith("b", false, 1, ms(5, 5, 61)...),    // p99 50 → 61: +22 %, regressed
		resultWith("c", false, 1, ms(1)...),           // not in the baseline
	}, 0.2)
	if len(c.Verdicts) != 2 || len(c.Unmatched) != 1 || c.Unmatched[0].Scenario != "c" {
		t.Fatalf("verdicts %+v unmatched %+v", c.Verdicts, c.Unmatched)
	}
	reg := c.Regressions()
	if len(reg) != 1 || reg[0].Current.Scenario != "b" || reg[0].P99Ratio != 1.22 {
		t.Fatalf("regressions %+v, want only b at 1.22", reg)
	}
	md := c.Markdown()
	for _, want := range []string{"REGRESSED", "load 1.0→1.5", "load 0.4→0.9", "not in the baseline"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// The short form is compared with the short baseline figure, not the full one.
	c = read.Compare([]*result.Result{resultWith("a", true, 1, ms(1, 1, 13)...)}, 0.2)
	if len(c.Verdicts) != 1 || c.Verdicts[0].Baseline.P99 != 10 || !c.Verdicts[0].Regressed {
		t.Fatalf("short form: %+v", c.Verdicts)
	}
}

func TestNewBaselineNeedsResults(t *testing.T) {
	if _, err := result.NewBaseline(nil); err == nil {
		t.Fatal("no error for no results")
	}
}
