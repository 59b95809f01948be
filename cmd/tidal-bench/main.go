// Command tidal-bench runs Tidal's demo and benchmark scenarios on the embedded dev cluster.
//
//	tidal-bench demo [--short] [--containers [--images bin/images]] [--tidal-dev bin/tidal-dev | --kubeconfig PATH] [--out bench/results]
//	tidal-bench run [--short] [--compare-cmd '...'] [--node-autoscaler PATH] [--virtual-node PATH] [--tidal-dev bin/tidal-dev | --kubeconfig PATH] [--out bench/results] SCENARIO.yaml...
//	tidal-bench list [--dir bench/scenarios]
//	tidal-bench baseline [--out bench/baseline.json] RESULT.json...
//	tidal-bench compare [--baseline bench/baseline.json] [--max-p99-rise 20] RESULT.json...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/bench/demo"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/imagebuild"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tidal-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: tidal-bench demo|run|list|baseline|compare [flags]")
	}
	switch args[0] {
	case "demo":
		return runDemo(args[1:])
	case "run":
		return runScenarios(args[1:])
	case "list":
		return listScenarios(args[1:])
	case "baseline":
		return writeBaseline(args[1:])
	case "compare":
		return compareBaseline(args[1:], os.Stdout)
	default:
		return fmt.Errorf("unknown command %q (known: demo, run, list, baseline, compare)", args[0])
	}
}

func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	short := fs.Bool("short", os.Getenv("DEMO_SHORT") != "", "run the quick form (also DEMO_SHORT=1)")
	devBin := fs.String("tidal-dev", "bin/tidal-dev", "tidal-dev binary that starts the embedded cluster")
	kubeconfig := fs.String("kubeconfig", "", "use this running cluster instead of starting one")
	outDir := fs.String("out", "bench/results", "where the plot goes")
	containers := fs.Bool("containers", os.Getenv("DEMO_CONTAINERS") != "", "run the workers as real containers of the demo worker image on a container node "+
		"(tidal-dev up --container-node: root, containerd and runc; also DEMO_CONTAINERS=1)")
	imagesDir := fs.String("images", "bin/images", "with --containers: the output of make images, whose tidal-demo-worker archive is imported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *containers && *kubeconfig != "" {
		return errors.New("--containers starts its own dev cluster with a container node: drop --kubeconfig")
	}
	var worker imagebuild.Result
	if *containers {
		var err error
		if worker, err = demoWorkerImage(*imagesDir); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	var cluster *devcluster.Cluster
	if *kubeconfig != "" {
		c, err := devcluster.Connect(*kubeconfig)
		if err != nil {
			return err
		}
		cluster = c
	} else {
		fmt.Println("== starting the embedded dev cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok nodes")
		dataDir, err := os.MkdirTemp("", "tidal-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dataDir)
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		up := []string{"up", "--nodes", "3", "--data-dir", filepath.Join(dataDir, "data"),
			"--kubeconfig", filepath.Join(dataDir, "kubeconfig"), "--exit-with-parent", "--log-level", "warn"}
		if *containers {
			up = append(up, "--container-node")
		}
		proc, err := devcluster.StartProcess(startCtx, *devBin, up...)
		cancel()
		if err != nil {
			return err
		}
		defer func() {
			fmt.Println("== stopping the dev cluster")
			_ = proc.Stop(30 * time.Second)
		}()
		fmt.Printf("   ready in %s, kubeconfig %s\n", proc.Ready.Startup, proc.Ready.Kubeconfig)
		if *containers {
			fmt.Printf("== importing %s into the container node %s\n", worker.Ref, proc.Ready.ContainerNode)
			if _, err := devcluster.ImportImages(ctx, proc.Ready.Containerd, proc.Ready.ContainerdNamespace,
				filepath.Join(*imagesDir, worker.Archive)); err != nil {
				return err
			}
		}
		c, err := devcluster.Connect(proc.Ready.Kubeconfig)
		if err != nil {
			return err
		}
		cluster = c
	}
	if err := devcluster.ApplyCRDDir(ctx, cluster, "charts/tidal/crds"); err != nil {
		return fmt.Errorf("install CRDs (run from the repository root): %w", err)
	}
	ns := "tidal-demo"
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	o := demo.FullOptions()
	if *short {
		o = demo.ShortOptions()
	}
	o.Config, o.Namespace, o.Out = cluster.Config, ns, os.Stdout
	if *containers {
		o.Containers, o.NodeAutoscaler = &demo.Containers{Image: worker.Ref}, false
		fmt.Println("== workers: real containers of " + worker.Ref + " on the container node, draining the list themselves")
	}
	fmt.Println("== Tidal operator (all-in-one, in this process) + a Redis work queue + a Deployment at 0 replicas")
	res, err := demo.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("\nfirst replica %.2fs after the burst, first Running pod %.2fs, peak %d replicas on %d added nodes, queue drained at %.1fs, back to zero at %.1fs\n",
		res.FirstReplica.Seconds(), res.FirstRunning.Seconds(), res.PeakReplicas, res.PeakNodes, res.Drained.Seconds(), res.BackToZero.Seconds())
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	plot := filepath.Join(*outDir, "demo-"+time.Now().Format("20060102-150405")+".png")
	if err := demo.WritePlot(res, plot); err != nil {
		return err
	}
	abs, _ := filepath.Abs(plot)
	fmt.Printf("plot: %s\ndemo finished in %.1fs\n", abs, time.Since(start).Seconds())
	return nil
}

// demoWorkerImage finds the demo worker's image in the output of make images.
func demoWorkerImage(dir string) (imagebuild.Result, error) {
	images, err := imagebuild.ReadResults(dir)
	if err != nil {
		return imagebuild.Result{}, err
	}
	for _, im := range images {
		if im.Name == "tidal-demo-worker" {
			return im, nil
		}
	}
	return imagebuild.Result{}, fmt.Errorf("%s has no tidal-demo-worker image (run make images)", filepath.Join(dir, imagebuild.ManifestFile))
}
