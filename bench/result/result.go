// Package result is a benchmark run's record: latency distributions with percentiles, counters, timelines, the
// machine and the Tidal version, written as JSON (bench/results/result.schema.json), a Markdown summary and PNG
// plots.
package result

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tidalscale/tidal/bench/scenario"
)

// SchemaVersion is the version of the JSON layout (result.schema.json's schemaVersion const).
const SchemaVersion = 1

// Result is one scenario run: one Run per autoscaler measured, and their ratios.
type Result struct {
	SchemaVersion int       `json:"schemaVersion"`
	Scenario      string    `json:"scenario"`
	Kind          string    `json:"kind"`
	Description   string    `json:"description,omitempty"`
	Short         bool      `json:"short"`
	StartedAt     time.Time `json:"startedAt"`
	// DurationSeconds is the wall time of the whole run, set-up included.
	DurationSeconds float64         `json:"durationSeconds"`
	TidalVersion    string          `json:"tidalVersion"`
	Machine         Machine         `json:"machine"`
	Params          scenario.Params `json:"params"`
	Warmup          Warmup          `json:"warmup"`
	Runs            []*Run          `json:"runs"`
	Comparisons     []Comparison    `json:"comparisons"`
	Notes           []string        `json:"notes,omitempty"`
}

// Warmup states what was excluded.
type Warmup struct {
	// Iterations is how many iterations ran before measuring, per autoscaler; none of them is in any metric.
	Iterations int    `json:"iterations"`
	Excluded   bool   `json:"excluded"`
	Note       string `json:"note"`
}

// Run is what one autoscaler did in the scenario.
type Run struct {
	// Autoscaler names it: "tidal-direct", "tidal-hpa", or "command" for --compare-cmd.
	Autoscaler string `json:"autoscaler"`
	// Command is the --compare-cmd command line, when that is what ran.
	Command  string             `json:"command,omitempty"`
	Metrics  []*Metric          `json:"metrics"`
	Counters map[string]float64 `json:"counters"`
	// Timeline samples the workload over the last measured iteration (for the plot).
	Timeline []Point  `json:"timeline"`
	Errors   []string `json:"errors,omitempty"`
}

// Metric is a latency distribution in milliseconds.
type Metric struct {
	Name string `json:"name"`
	// From and To say which timestamps each sample subtracts ("redis RPUSH returned" → "Deployment watch: spec.replicas=1").
	From  string  `json:"from"`
	To    string  `json:"to"`
	Unit  string  `json:"unit"`
	Count int     `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	// Samples are the measured values in the order taken.
	Samples []float64 `json:"samples"`
}

// Point is one timeline sample; T is seconds since the iteration started.
type Point struct {
	T        float64 `json:"t"`
	Queue    int64   `json:"queue"`
	Replicas int32   `json:"replicas"`
	Running  int     `json:"running"`
	Nodes    int     `json:"nodes,omitempty"`
}

// Comparison is Other's statistic divided by Baseline's for one metric (>1: Other is slower).
type Comparison struct {
	Metric   string  `json:"metric"`
	Baseline string  `json:"baseline"`
	Other    string  `json:"other"`
	P50Ratio float64 `json:"p50Ratio"`
	P99Ratio float64 `json:"p99Ratio"`
}

// NewMetric summarises samples (durations) as milliseconds.
func NewMetric(name, from, to string, samples []time.Duration) *Metric {
	m := &Metric{Name: name, From: from, To: to, Unit: "ms", Count: len(samples), Samples: make([]float64, len(samples))}
	for i, d := range samples {
		m.Samples[i] = float64(d.Microseconds()) / 1000
	}
	m.summarise()
	return m
}

func (m *Metric) summarise() {
	if len(m.Samples) == 0 {
		return
	}
	s := append([]float64(nil), m.Samples...)
	sort.Float64s(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	m.Min, m.Max, m.Mean = s[0], s[len(s)-1], round(sum/float64(len(s)))
	m.P50, m.P90, m.P99 = Percentile(s, 50), Percentile(s, 90), Percentile(s, 99)
}

// Percentile is the nearest-rank percentile p (0 < p ≤ 100) of sorted values.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

// Metric returns the run's metric called name, or nil.
func (r *Run) Metric(name string) *Metric {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Compare fills Comparisons: every metric the first run (the baseline) shares with each later run.
func (res *Result) Compare() {
	res.Comparisons = nil
	if len(res.Runs) < 2 {
		return
	}
	base := res.Runs[0]
	for _, other := range res.Runs[1:] {
		for _, bm := range base.Metrics {
			om := other.Metric(bm.Name)
			if om == nil || bm.Count == 0 || om.Count == 0 {
				continue
			}
			res.Comparisons = append(res.Comparisons, Comparison{
				Metric: bm.Name, Baseline: base.Autoscaler, Other: other.Autoscaler,
				P50Ratio: ratio(om.P50, bm.P50), P99Ratio: ratio(om.P99, bm.P99),
			})
		}
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a / b)
}

// Files are where Write put a result.
type Files struct {
	JSON, Markdown, Timeline, CDF string
}

// Write stores the result in dir as <scenario>-<date>.json, .md, -timeline.png and -cdf.png.
func (res *Result) Write(dir string) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("results dir %s: %w", dir, err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s", res.Scenario, res.StartedAt.UTC().Format("20060102-150405")))
	f := Files{JSON: base + ".json", Markdown: base + ".md", Timeline: base + "-timeline.png", CDF: base + "-cdf.png"}
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return Files{}, fmt.Errorf("result %s: %w", res.Scenario, err)
	}
	if err := os.WriteFile(f.JSON, append(raw, '\n'), 0o644); err != nil {
		return Files{}, err
	}
	if err := os.WriteFile(f.Markdown, []byte(res.Markdown()), 0o644); err != nil {
		return Files{}, err
	}
	if err := res.PlotTimeline(f.Timeline); err != nil {
		return Files{}, err
	}
	if err := res.PlotCDF(f.CDF); err != nil {
		return Files{}, err
	}
	return f, nil
}

// ReadFile reads a result Write wrote (its .json file).
func ReadFile(path string) (*Result, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if res.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%s: schemaVersion %d, this tidal-bench reads %d", path, res.SchemaVersion, SchemaVersion)
	}
	return &res, nil
}
