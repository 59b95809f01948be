package result

import (
	"fmt"
	"image/color"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Markdown is the human summary: parameters, machine, one table row per run and metric, and the ratios.
func (res *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (%s)%s\n\n", res.Scenario, res.Kind, map[bool]string{true: " — short form", false: ""}[res.Short])
	if res.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", res.Description)
	}
	fmt.Fprintf(&b, "- started %s, %.1fs wall time\n", res.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"), res.DurationSeconds)
	fmt.Fprintf(&b, "- Tidal %s\n", res.TidalVersion)
	m := res.Machine
	fmt.Fprintf(&b, "- machine: %d CPUs (%s), %.1f GiB, %s/%s, %s, load average %.2f at start, %.2f at end\n",
		m.CPUs, m.CPUModel, float64(m.MemoryBytes)/(1<<30), m.OS, m.Arch, m.GoVersion, m.LoadAvg1, m.LoadAvg1End)
	fmt.Fprintf(&b, "- warm-up: %s\n", res.Warmup.Note)
	fmt.Fprintf(&b, "- parameters: %s\n\n", paramsLine(res))
	b.WriteString(res.Table())
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "\n> %s\n", n)
	}
	return b.String()
}

// Table is the results table (Markdown), with the ratios under it.
func (res *Result) Table() string {
	var b strings.Builder
	b.WriteString("| autoscaler | metric | n | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, r := range res.Runs {
		for _, m := range r.Metrics {
			fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f |\n", r.Autoscaler, m.Name, m.Count, m.P50, m.P90, m.P99, m.Max)
		}
		for _, k := range sortedKeys(r.Counters) {
			fmt.Fprintf(&b, "| %s | %s | | %.4g | | | |\n", r.Autoscaler, k, r.Counters[k])
		}
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "| %s | error | | %s | | | |\n", r.Autoscaler, strings.ReplaceAll(e, "|", "/"))
		}
	}
	if len(res.Comparisons) > 0 {
		b.WriteString("\n| metric | other / baseline | p50 ratio | p99 ratio |\n|---|---|---:|---:|\n")
		for _, c := range res.Comparisons {
			fmt.Fprintf(&b, "| %s | %s / %s | %.2f | %.2f |\n", c.Metric, c.Other, c.Baseline, c.P50Ratio, c.P99Ratio)
		}
	}
	return b.String()
}

// Summary is one table over several results: every metric's p50/p99 per scenario and autoscaler, then every
// ratio, with the machine and version of the first.
func Summary(all []*Result) string {
	var b strings.Builder
	if len(all) == 0 {
		return ""
	}
	m := all[0].Machine
	fmt.Fprintf(&b, "Tidal %s on %d CPUs (%s), %.1f GiB; warm-up excluded; full parameters in each result's JSON.\n\n",
		all[0].TidalVersion, m.CPUs, m.CPUModel, float64(m.MemoryBytes)/(1<<30))
	b.WriteString("| scenario | autoscaler | metric | n | p50 ms | p90 ms | p99 ms | max ms | load start→end |\n|---|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, res := range all {
		load := fmt.Sprintf("%.1f→%.1f", res.Machine.LoadAvg1, res.Machine.LoadAvg1End)
		for _, r := range res.Runs {
			for _, mt := range r.Metrics {
				fmt.Fprintf(&b, "| %s | %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %s |\n", res.Scenario, r.Autoscaler, mt.Name, mt.Count, mt.P50, mt.P90, mt.P99, mt.Max, load)
			}
			for _, e := range r.Errors {
				fmt.Fprintf(&b, "| %s | %s | error: %s | | | | | | |\n", res.Scenario, r.Autoscaler, strings.ReplaceAll(e, "|", "/"))
			}
		}
	}
	var ratios strings.Builder
	for _, res := range all {
		for _, c := range res.Comparisons {
			fmt.Fprintf(&ratios, "| %s | %s | %s / %s | %.2f | %.2f |\n", res.Scenario, c.Metric, c.Other, c.Baseline, c.P50Ratio, c.P99Ratio)
		}
	}
	if ratios.Len() > 0 {
		b.WriteString("\n| scenario | metric | other / baseline | p50 ratio | p99 ratio |\n|---|---|---|---:|---:|\n")
		b.WriteString(ratios.String())
	}
	return b.String()
}

func paramsLine(res *Result) string {
	p := res.Params
	var parts []string
	add := func(k string, v any, ok bool) {
		if ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	add("source", p.Source, p.Source != "")
	add("mode", p.Mode, p.Mode != "")
	add("repeats", p.Repeats, p.Repeats > 0)
	add("warmup", p.Warmup, true)
	add("interval", p.Interval.D(), p.Interval > 0)
	add("pollingInterval", p.PollingInterval.D(), p.PollingInterval > 0)
	add("cooldown", p.Cooldown.D(), p.Cooldown > 0)
	add("targetPerReplica", p.TargetPerReplica, p.TargetPerReplica > 0)
	add("maxReplicas", p.MaxReplicas, p.MaxReplicas > 0)
	add("itemsPerPodSecond", p.ItemsPerPodSecond, p.ItemsPerPodSecond > 0)
	for i, st := range p.Load {
		parts = append(parts, fmt.Sprintf("load[%d]=%d/s for %s", i, st.Rate, st.For.D()))
	}
	add("scaledObjects", p.ScaledObjects, p.ScaledObjects > 0)
	add("requests", p.Requests, p.Requests > 0)
	add("concurrency", p.Concurrency, p.Concurrency > 0)
	add("nodes", p.Nodes, len(p.Nodes) > 0)
	add("pods", p.Pods, p.Pods > 0)
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// colour is the i-th line colour, cycling.
func colour(i int) color.RGBA {
	palette := [...]color.RGBA{
		{R: 30, G: 100, B: 200, A: 255}, {R: 220, G: 90, B: 30, A: 255}, {R: 40, G: 160, B: 60, A: 255},
		{R: 150, G: 60, B: 170, A: 255}, {R: 200, G: 170, B: 20, A: 255}, {R: 90, G: 90, B: 90, A: 255},
	}
	return palette[i%len(palette)]
}

// PlotTimeline draws replicas, running pods and queue length over time, one line set per run. Queue length is
// on the same axis, scaled so its peak meets the highest replica count.
func (res *Result) PlotTimeline(path string) error {
	p := plot.New()
	p.Title.Text = res.Scenario + ": replicas and queue over the last measured iteration"
	p.X.Label.Text = "seconds since the iteration started"
	var maxQ, maxR float64
	for _, r := range res.Runs {
		for _, pt := range r.Timeline {
			maxQ, maxR = max(maxQ, float64(pt.Queue)), max(maxR, float64(pt.Replicas), float64(pt.Running))
		}
	}
	scale := 1.0
	if maxQ > 0 && maxR > 0 {
		scale = maxR / maxQ
	}
	p.Y.Label.Text = fmt.Sprintf("replicas  (queue × %.3g)", scale)
	p.Add(plotter.NewGrid())
	i := 0
	for _, r := range res.Runs {
		if len(r.Timeline) == 0 {
			continue
		}
		rep, run, q := make(plotter.XYs, len(r.Timeline)), make(plotter.XYs, len(r.Timeline)), make(plotter.XYs, len(r.Timeline))
		for j, pt := range r.Timeline {
			rep[j] = plotter.XY{X: pt.T, Y: float64(pt.Replicas)}
			run[j] = plotter.XY{X: pt.T, Y: float64(pt.Running)}
			q[j] = plotter.XY{X: pt.T, Y: float64(pt.Queue) * scale}
		}
		// One colour per autoscaler; replicas solid, Running pods dashed, queue dotted.
		for _, l := range []struct {
			name  string
			xy    plotter.XYs
			style lineStyle
		}{{"replicas", rep, solid}, {"running", run, dashed}, {"queue", q, dotted}} {
			if err := addLine(p, r.Autoscaler+" "+l.name, l.xy, colour(i), l.style); err != nil {
				return err
			}
		}
		i++
	}
	if i == 0 {
		// No timeline (adapter load): an empty, labelled plot keeps the file set uniform.
		p.Title.Text = res.Scenario + ": no timeline for this scenario"
	}
	p.Legend.Top = true
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

// PlotCDF draws the cumulative distribution of every metric of every run.
func (res *Result) PlotCDF(path string) error {
	p := plot.New()
	p.Title.Text = res.Scenario + ": latency CDF (warm-up excluded)"
	p.X.Label.Text = "milliseconds"
	p.Y.Label.Text = "fraction of samples ≤ x"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	i := 0
	for _, r := range res.Runs {
		for _, m := range r.Metrics {
			if len(m.Samples) == 0 {
				continue
			}
			s := append([]float64(nil), m.Samples...)
			sort.Float64s(s)
			xy := make(plotter.XYs, 0, 2*len(s))
			for j, v := range s {
				xy = append(xy, plotter.XY{X: v, Y: float64(j) / float64(len(s))}, plotter.XY{X: v, Y: float64(j+1) / float64(len(s))})
			}
			if err := addLine(p, r.Autoscaler+" "+m.Name, xy, colour(i), solid); err != nil {
				return err
			}
			i++
		}
	}
	if i == 0 {
		p.Title.Text = res.Scenario + ": no latency samples"
	}
	p.Legend.Top, p.Legend.Left = false, false
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

// lineStyle is how a series is drawn.
type lineStyle int

const (
	solid lineStyle = iota
	dashed
	dotted
)

func addLine(p *plot.Plot, name string, xy plotter.XYs, c color.RGBA, style lineStyle) error {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color, l.Width = c, vg.Points(2)
	switch style {
	case dashed:
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	case dotted:
		l.Width = vg.Points(1.2)
		l.Dashes = []vg.Length{vg.Points(1.5), vg.Points(2.5)}
	}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}
