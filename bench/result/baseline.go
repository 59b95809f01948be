package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Baseline is the reference a later run is compared with: bench/baseline.json in the repository, written by
// `tidal-bench baseline` from results taken on a quiet machine and read by `tidal-bench compare`.
type Baseline struct {
	TidalVersion string `json:"tidalVersion"`
	// Machine is the first result's machine; each figure keeps the load it was measured under.
	Machine Machine          `json:"machine"`
	Figures []BaselineFigure `json:"figures"`
}

// BaselineFigure is one metric of one autoscaler in one scenario (short and full forms are different figures).
type BaselineFigure struct {
	Scenario   string  `json:"scenario"`
	Short      bool    `json:"short"`
	Autoscaler string  `json:"autoscaler"`
	Metric     string  `json:"metric"`
	Count      int     `json:"count"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
	// LoadAvg1 is the 1-minute load average when the scenario started, LoadAvg1End when it ended.
	LoadAvg1    float64 `json:"loadAvg1"`
	LoadAvg1End float64 `json:"loadAvg1End"`
}

func (f BaselineFigure) key() string {
	form := "full"
	if f.Short {
		form = "short"
	}
	return strings.Join([]string{f.Scenario, form, f.Autoscaler, f.Metric}, "/")
}

// figures lists every metric of every run of res, with the load it was measured under.
func figures(res *Result) []BaselineFigure {
	var out []BaselineFigure
	for _, r := range res.Runs {
		for _, m := range r.Metrics {
			if m.Count == 0 {
				continue
			}
			out = append(out, BaselineFigure{Scenario: res.Scenario, Short: res.Short, Autoscaler: r.Autoscaler, Metric: m.Name,
				Count: m.Count, P50: m.P50, P99: m.P99, LoadAvg1: res.Machine.LoadAvg1, LoadAvg1End: res.Machine.LoadAvg1End})
		}
	}
	return out
}

// NewBaseline collects the figures of results (a later result of the same scenario, form, autoscaler and
// metric replaces an earlier one), sorted for a stable file.
func NewBaseline(results []*Result) (*Baseline, error) {
	if len(results) == 0 {
		return nil, errors.New("baseline: no results")
	}
	byKey := map[string]BaselineFigure{}
	for _, res := range results {
		for _, f := range figures(res) {
			byKey[f.key()] = f
		}
	}
	b := &Baseline{TidalVersion: results[0].TidalVersion, Machine: results[0].Machine}
	for _, f := range byKey {
		b.Figures = append(b.Figures, f)
	}
	sort.Slice(b.Figures, func(i, j int) bool { return b.Figures[i].key() < b.Figures[j].key() })
	return b, nil
}

// ReadBaseline reads a baseline file.
func ReadBaseline(path string) (*Baseline, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Baseline
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

// Write writes the baseline as indented JSON.
func (b *Baseline) Write(path string) error {
	raw, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

// Verdict is one figure of a run set against the baseline.
type Verdict struct {
	Current  BaselineFigure
	Baseline BaselineFigure
	// P99Ratio is current p99 / baseline p99 (0 when the baseline's p99 is 0).
	P99Ratio  float64
	Regressed bool
}

// Comparison of results with a baseline: what was compared, and what the baseline has that no result measured
// (and results with no baseline figure, which cannot regress).
type BaselineComparison struct {
	Verdicts   []Verdict
	Unmatched  []BaselineFigure // measured now, not in the baseline
	MaxP99Rise float64          // the threshold used: 0.2 = 20 %
}

// Compare sets every figure of results against the baseline: a figure regresses when its p99 exceeds the
// baseline's p99 by more than maxRise (0.2 = 20 %). A baseline p99 of 0 never regresses (nothing to scale).
func (b *Baseline) Compare(results []*Result, maxRise float64) BaselineComparison {
	base := map[string]BaselineFigure{}
	for _, f := range b.Figures {
		base[f.key()] = f
	}
	out := BaselineComparison{MaxP99Rise: maxRise}
	for _, res := range results {
		for _, f := range figures(res) {
			bf, ok := base[f.key()]
			if !ok {
				out.Unmatched = append(out.Unmatched, f)
				continue
			}
			v := Verdict{Current: f, Baseline: bf}
			if bf.P99 > 0 {
				v.P99Ratio = round(f.P99 / bf.P99)
				v.Regressed = f.P99 > bf.P99*(1+maxRise)
			}
			out.Verdicts = append(out.Verdicts, v)
		}
	}
	return out
}

// Regressions are the verdicts that regressed.
func (c BaselineComparison) Regressions() []Verdict {
	var out []Verdict
	for _, v := range c.Verdicts {
		if v.Regressed {
			out = append(out, v)
		}
	}
	return out
}

// Markdown is the comparison as a table, the load of both sides next to each figure.
func (c BaselineComparison) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "p99 may rise at most %.0f %% over the baseline.\n\n", c.MaxP99Rise*100)
	b.WriteString("| scenario | autoscaler | metric | p99 ms (load) | baseline p99 ms (load) | ratio | |\n|---|---|---|---:|---:|---:|---|\n")
	for _, v := range c.Verdicts {
		mark := "ok"
		if v.Regressed {
			mark = "REGRESSED"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f (%s) | %.1f (%s) | %.2f | %s |\n", formName(v.Current), v.Current.Autoscaler, v.Current.Metric,
			v.Current.P99, loadRange(v.Current), v.Baseline.P99, loadRange(v.Baseline), v.P99Ratio, mark)
	}
	for _, f := range c.Unmatched {
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f (%s) | — | | not in the baseline |\n", formName(f), f.Autoscaler, f.Metric, f.P99, loadRange(f))
	}
	return b.String()
}

func formName(f BaselineFigure) string {
	if f.Short {
		return f.Scenario + " (short)"
	}
	return f.Scenario
}

func loadRange(f BaselineFigure) string {
	return fmt.Sprintf("load %.1f→%.1f", f.LoadAvg1, f.LoadAvg1End)
}
