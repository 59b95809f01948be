package demo_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tidalscale/tidal/bench/demo"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/ociarchive"
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

// With Containers the workers are real containers of the demo worker (built here, imported into the container
// node's containerd) that drain the list themselves: the operator scales them from zero and back.
func TestShortDemoWithContainers(t *testing.T) {
	devcluster.NeedContainers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	proc, err := devcluster.StartProcess(ctx, devcluster.TestBinary(ctx, t), "up", "--nodes=0", "--container-node", "--exit-with-parent", "--log-level=warn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Stop(time.Minute) })
	root, err := devcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	const ref = "tidal.test/demo-worker:test"
	archive, err := ociarchive.GoProgram(ctx, root, "./cmd/tidal-demo-worker", ociarchive.Image{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "worker.tar")
	if err := os.WriteFile(path, archive, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := devcluster.ImportImages(ctx, proc.Ready.Containerd, proc.Ready.ContainerdNamespace, path); err != nil {
		t.Fatal(err)
	}
	c, err := devcluster.Connect(proc.Ready.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	devcluster.InstallCRDs(t, c)

	o := demo.ShortOptions()
	o.NodeAutoscaler, o.Containers = false, &demo.Containers{Image: ref}
	o.Config, o.Namespace, o.Logger = c.Config, c.Namespace(t), zaptest.NewLogger(t)
	var out bytes.Buffer
	o.Out = &out
	res, err := demo.Run(ctx, o)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstRunning < 0 || res.Drained < 0 || res.BackToZero < 0 || res.PeakReplicas < 2 {
		t.Fatalf("the demo did not scale the worker containers up and back: %+v", res)
	}
	// In this mode the demo pops nothing: the worker containers drained the list.
	if res.Processed != int64(o.Items) {
		t.Fatalf("the containers took %d of %d items", res.Processed, o.Items)
	}
}

// Containers and the node autoscaler exclude each other; an image is required.
func TestDemoRefusesContainersWithoutImageOrWithNodeAutoscaler(t *testing.T) {
	c := devcluster.Get(t)
	noImage := demo.ShortOptions()
	noImage.NodeAutoscaler, noImage.Containers = false, &demo.Containers{}
	withNodes := demo.ShortOptions()
	withNodes.Containers = &demo.Containers{Image: "x"}
	for _, o := range []demo.Options{noImage, withNodes} {
		o.Config, o.Namespace = c.Config, "default"
		if _, err := demo.Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "Containers") {
			t.Errorf("Run(%+v): %v, want an error naming Containers", o.Containers, err)
		}
	}
}
