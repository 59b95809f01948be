package result_test

import (
	"encoding/json"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/results"
	"github.com/tidalscale/tidal/bench/scenario"
)

func TestPercentile(t *testing.T) {
	sorted := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		name string
		p    float64
		want float64
	}{
		{name: "p50 nearest rank", p: 50, want: 5},
		{name: "p90", p: 90, want: 9},
		{name: "p99 is the max of ten", p: 99, want: 10},
		{name: "p100", p: 100, want: 10},
		{name: "tiny p is the min", p: 0.1, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := result.Percentile(sorted, tc.p); got != tc.want {
				t.Fatalf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
	if got := result.Percentile(nil, 50); got != 0 {
		t.Fatalf("empty: %v", got)
	}
}

func TestNewMetric(t *testing.T) {
	m := result.NewMetric("x", "a", "b", []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond})
	if m.Count != 3 || m.Min != 10 || m.Max != 30 || m.P50 != 20 || m.Mean != 20 || m.Unit != "ms" {
		t.Fatalf("metric = %+v", m)
	}
	// Samples keep the order they were taken in.
	if m.Samples[0] != 30 {
		t.Fatalf("samples reordered: %v", m.Samples)
	}
}

func sampleResult() *result.Result {
	res := &result.Result{
		SchemaVersion: result.SchemaVersion, Scenario: "unit", Kind: scenario.KindScaleFromZero, StartedAt: time.Now().UTC(),
		TidalVersion: "test", Machine: result.ReadMachine(), Params: scenario.Params{Source: "redis", Repeats: 3},
		Warmup: result.Warmup{Iterations: 1, Excluded: true, Note: "1 iteration"},
	}
	for i, name := range []string{"tidal-direct", "tidal-hpa"} {
		scale := time.Duration(i*9 + 1)
		res.Runs = append(res.Runs, &result.Run{
			Autoscaler: name,
			Metrics:    []*result.Metric{result.NewMetric("event-to-replica", "push", "watch", []time.Duration{scale * 10 * time.Millisecond, scale * 20 * time.Millisecond})},
			Counters:   map[string]float64{"activations": 2},
			Timeline:   []result.Point{{T: 0, Queue: 5}, {T: 1, Queue: 3, Replicas: 1, Running: 1}, {T: 2}},
		})
	}
	res.Compare()
	return res
}

func TestCompareRatios(t *testing.T) {
	res := sampleResult()
	if len(res.Comparisons) != 1 {
		t.Fatalf("comparisons = %+v", res.Comparisons)
	}
	c := res.Comparisons[0]
	if c.Baseline != "tidal-direct" || c.Other != "tidal-hpa" || c.P50Ratio != 10 || c.P99Ratio != 10 {
		t.Fatalf("comparison = %+v", c)
	}
}

func TestMachine(t *testing.T) {
	m := result.ReadMachine()
	if m.CPUs < 1 || m.OS == "" || m.GoVersion == "" {
		t.Fatalf("machine = %+v", m)
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil && m.MemoryBytes <= 0 {
		t.Fatalf("memory not read from /proc/meminfo: %+v", m)
	}
}

// A written result validates against the schema; its plots are PNGs; the summary carries the table and ratios.
func TestWriteValidatesAndPlots(t *testing.T) {
	res := sampleResult()
	files, err := res.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(files.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := results.Validate(raw); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{files.Timeline, files.CDF} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		f.Close()
	}
	md, err := os.ReadFile(files.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| tidal-hpa | event-to-replica | 2 |", "| event-to-replica | tidal-hpa / tidal-direct | 10.00 | 10.00 |", "warm-up: 1 iteration"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("summary lacks %q:\n%s", want, md)
		}
	}
}

// The schema rejects documents that lack or mistype what it requires.
func TestSchemaRejects(t *testing.T) {
	raw, err := json.Marshal(sampleResult())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(map[string]any)
	}{
		{name: "missing machine", mutate: func(m map[string]any) { delete(m, "machine") }},
		{name: "wrong schema version", mutate: func(m map[string]any) { m["schemaVersion"] = 2 }},
		{name: "unknown kind", mutate: func(m map[string]any) { m["kind"] = "warp" }},
		{name: "no runs", mutate: func(m map[string]any) { m["runs"] = []any{} }},
		{name: "p99 as string", mutate: func(m map[string]any) {
			m["runs"].([]any)[0].(map[string]any)["metrics"].([]any)[0].(map[string]any)["p99"] = "fast"
		}},
		{name: "warm-up not stated", mutate: func(m map[string]any) { delete(m["warmup"].(map[string]any), "excluded") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			tc.mutate(doc)
			bad, _ := json.Marshal(doc)
			if err := results.Validate(bad); err == nil {
				t.Fatal("schema accepted it")
			}
		})
	}
}
