package demo

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WritePlot draws queue length and replicas over time into a PNG (or SVG, by the file's extension).
func WritePlot(res *Result, path string) error {
	if len(res.Timeline) == 0 {
		return fmt.Errorf("demo plot: empty timeline")
	}
	queue := make(plotter.XYs, len(res.Timeline))
	desired := make(plotter.XYs, len(res.Timeline))
	running := make(plotter.XYs, len(res.Timeline))
	nodes := make(plotter.XYs, len(res.Timeline))
	var maxQueue float64
	for _, s := range res.Timeline {
		maxQueue = max(maxQueue, float64(s.Queue))
	}
	// Replicas share the axis with the queue, scaled so the peak queue and the peak replicas line up.
	scale := 1.0
	if res.PeakReplicas > 0 && maxQueue > 0 {
		scale = maxQueue / float64(res.PeakReplicas)
	}
	for i, s := range res.Timeline {
		x := s.At.Seconds()
		queue[i] = plotter.XY{X: x, Y: float64(s.Queue)}
		desired[i] = plotter.XY{X: x, Y: float64(s.Desired) * scale}
		running[i] = plotter.XY{X: x, Y: float64(s.Running) * scale}
		nodes[i] = plotter.XY{X: x, Y: float64(s.Nodes) * scale}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Tidal demo: Redis queue → replicas (peak %d, back to zero at %.1fs)", res.PeakReplicas, res.BackToZero.Seconds())
	p.X.Label.Text = "seconds since the burst"
	p.Y.Label.Text = fmt.Sprintf("queue length  (replicas and nodes × %.0f)", scale)
	p.Add(plotter.NewGrid())
	for _, l := range []struct {
		name string
		xy   plotter.XYs
		c    color.RGBA
	}{
		{"queue length", queue, color.RGBA{R: 30, G: 100, B: 200, A: 255}},
		{"desired replicas", desired, color.RGBA{R: 220, G: 90, B: 30, A: 255}},
		{"running pods", running, color.RGBA{R: 40, G: 160, B: 60, A: 255}},
		{"nodes (added by the node autoscaler)", nodes, color.RGBA{R: 120, G: 60, B: 160, A: 255}},
	} {
		line, err := plotter.NewLine(l.xy)
		if err != nil {
			return err
		}
		line.Color = l.c
		line.Width = vg.Points(2)
		p.Add(line)
		p.Legend.Add(l.name, line)
	}
	p.Legend.Top = true
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}
