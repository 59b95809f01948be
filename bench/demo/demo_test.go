package demo_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/tidalscale/tidal/bench/demo"
	"github.com/tidalscale/tidal/internal/devcluster"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// The demo's short form: a burst on a Redis list scales the worker from zero, the queue drains, and the
// worker goes back to zero; the plot is a valid PNG.
func TestShortDemo(t *testing.T) {
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	o := demo.ShortOptions()
	o.Config, o.Namespace, o.Logger = c.Config, c.Namespace(t), zaptest.NewLogger(t)
	var out bytes.Buffer
	o.Out = &out
	res, err := demo.Run(context.Background(), o)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstReplica < 0 || res.FirstRunning < 0 || res.Drained < 0 || res.BackToZero < 0 {
		t.Fatalf("the demo did not scale up and back: %+v", res)
	}
	if res.PeakReplicas < 2 {
		t.Fatalf("peak replicas %d: the HPA math should have gone past one replica for %d items", res.PeakReplicas, o.Items)
	}
	if o.NodeAutoscaler && res.PeakNodes < 1 {
		t.Fatalf("the node autoscaler added no node for %d one-CPU workers", res.PeakReplicas)
	}
	if res.Processed != int64(o.Items) {
		t.Fatalf("processed %d of %d items", res.Processed, o.Items)
	}
	path := filepath.Join(t.TempDir(), "demo.png")
	if err := demo.WritePlot(res, path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
}
