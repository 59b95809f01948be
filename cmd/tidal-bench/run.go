package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"

	"github.com/tidalscale/tidal/bench/harness"
	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/results"
	"github.com/tidalscale/tidal/bench/scenario"
	"github.com/tidalscale/tidal/internal/devcluster"
)

// version is set with -ldflags "-X main.version=..."; empty means `git describe`.
var version string

func runScenarios(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	short := fs.Bool("short", false, "run each scenario's short form (tiny sizes)")
	compare := fs.String("compare-cmd", "", "also run this shell command as a second autoscaler (KUBECONFIG and TIDAL_BENCH_NAMESPACE in its env) and report both")
	devBin := fs.String("tidal-dev", "bin/tidal-dev", "tidal-dev binary that starts the embedded cluster")
	kubeconfig := fs.String("kubeconfig", os.Getenv("TIDAL_KUBECONFIG"), "use this running cluster instead of starting one")
	nodes := fs.Int("nodes", 3, "simulated nodes of a started cluster")
	outDir := fs.String("out", "bench/results", "where results go")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis server for redis scenarios")
	nodeAutoscaler := fs.String("node-autoscaler", "", "tidal-node-autoscaler binary for node-scale-up (default $TIDAL_NODE_AUTOSCALER_BIN, else bin/tidal-node-autoscaler)")
	virtualNode := fs.String("virtual-node", "", "tidal-virtual-node binary for virtual-burst (default $TIDAL_VIRTUAL_NODE_BIN, else bin/tidal-virtual-node)")
	logLevel := fs.String("log-level", "error", "log level of the in-process autoscalers (to stderr)")
	quietLoad := fs.Float64("quiet-load", 0, "before each scenario wait until the 1-minute load average is at most this (0: do not wait); "+
		"a scenario that starts above it says so in its notes")
	quietWait := fs.Duration("quiet-wait", 3*time.Minute, "how long --quiet-load waits at most")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *quietLoad < 0 || *quietWait < 0 {
		return errors.New("--quiet-load and --quiet-wait must not be negative")
	}
	if fs.NArg() == 0 {
		return errors.New("run: name at least one scenario file (see tidal-bench list)")
	}
	specs := make([]*scenario.Spec, 0, fs.NArg())
	for _, path := range fs.Args() {
		s, err := scenario.Load(path)
		if err != nil {
			return err
		}
		specs = append(specs, s)
	}
	lvl, err := zapcore.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	zcfg := zap.NewDevelopmentConfig()
	zcfg.Level = zap.NewAtomicLevelAt(lvl)
	zcfg.DisableStacktrace = true
	if lvl > zapcore.InfoLevel {
		// The adapter's API server libraries log through klog; below info they would drown the tables.
		klog.LogToStderr(false)
		klog.SetOutput(io.Discard)
	}
	log, err := zcfg.Build()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cluster, stopCluster, err := connectOrStart(ctx, *kubeconfig, *devBin, *nodes)
	if err != nil {
		return err
	}
	defer stopCluster()
	if err := devcluster.ApplyCRDDir(ctx, cluster, "charts/tidal/crds"); err != nil {
		return fmt.Errorf("install CRDs (run from the repository root): %w", err)
	}
	progress := harness.NewProgress(os.Stderr)
	var failed []string
	var done []*result.Result
	for _, s := range specs {
		fmt.Printf("== %s (%s)%s\n", s.Name, s.Kind, map[bool]string{true: ", short form", false: ""}[*short])
		quiet := waitQuiet(ctx, *quietLoad, *quietWait)
		res, err := harness.Run(ctx, s, harness.Options{
			Cluster: cluster, Short: *short, CompareCmd: *compare, RedisAddress: *redisAddr,
			TidalVersion: result.Version(ctx, version), Progress: progress, Logger: log, NodeAutoscalerBin: *nodeAutoscaler, VirtualNodeBin: *virtualNode,
		})
		progress.Done()
		if err != nil {
			fmt.Printf("   %v\n", err)
			failed = append(failed, s.Name)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if !quiet {
			res.Notes = append(res.Notes, fmt.Sprintf("the machine was not quiet: the load average stayed above --quiet-load %.2f for %s "+
				"(%.2f at the start); read these figures as taken under load", *quietLoad, *quietWait, res.Machine.LoadAvg1))
		}
		files, err := write(res, *outDir)
		if err != nil {
			return err
		}
		done = append(done, res)
		fmt.Println(res.Table())
		fmt.Printf("   %s\n   %s\n   %s\n   %s\n", files.JSON, files.Markdown, files.Timeline, files.CDF)
		for _, r := range res.Runs {
			if len(r.Errors) > 0 {
				failed = append(failed, s.Name+"/"+r.Autoscaler)
			}
		}
	}
	if len(specs) > 1 && len(done) > 0 {
		summary := result.Summary(done)
		fmt.Printf("\n== summary\n%s", summary)
		path := filepath.Join(*outDir, "summary-"+time.Now().UTC().Format("20060102-150405")+".md")
		if err := os.WriteFile(path, []byte(summary), 0o644); err != nil {
			return err
		}
		fmt.Printf("   %s\n", path)
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// waitQuiet waits until the 1-minute load average is at most limit, for at most wait; it reports whether the
// machine got there (always true when limit is 0).
func waitQuiet(ctx context.Context, limit float64, wait time.Duration) bool {
	if limit <= 0 {
		return true
	}
	deadline := time.Now().Add(wait)
	for said := false; ; said = true {
		load := result.LoadAvg1()
		if load <= limit {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			fmt.Printf("   load average %.2f is still above %.2f: running anyway\n", load, limit)
			return false
		}
		if !said {
			fmt.Printf("   waiting up to %s for the load average (%.2f) to fall to %.2f\n", wait, load, limit)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// write validates the result against the schema and writes it.
func write(res *result.Result, dir string) (result.Files, error) {
	files, err := res.Write(dir)
	if err != nil {
		return files, err
	}
	raw, err := os.ReadFile(files.JSON)
	if err != nil {
		return files, err
	}
	if err := results.Validate(raw); err != nil {
		return files, fmt.Errorf("%s: %w", files.JSON, err)
	}
	return files, nil
}

// connectOrStart connects to kubeconfig, or starts tidal-dev and returns how to stop it.
func connectOrStart(ctx context.Context, kubeconfig, devBin string, nodes int) (*devcluster.Cluster, func(), error) {
	if kubeconfig != "" {
		c, err := devcluster.Connect(kubeconfig)
		return c, func() {}, err
	}
	dataDir, err := os.MkdirTemp("", "tidal-bench-cluster-")
	if err != nil {
		return nil, nil, err
	}
	fmt.Println("== starting the embedded dev cluster")
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	proc, err := devcluster.StartProcess(startCtx, devBin, "up", "--nodes", fmt.Sprint(nodes),
		"--data-dir", filepath.Join(dataDir, "data"), "--kubeconfig", filepath.Join(dataDir, "kubeconfig"),
		"--exit-with-parent", "--log-level", "warn")
	if err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, nil, err
	}
	stop := func() { _ = proc.Stop(30 * time.Second); _ = os.RemoveAll(dataDir) }
	c, err := devcluster.Connect(proc.Ready.Kubeconfig)
	if err != nil {
		stop()
		return nil, nil, err
	}
	fmt.Printf("   ready in %s\n", proc.Ready.Startup)
	return c, stop, nil
}

func listScenarios(args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	dir := fs.String("dir", "bench/scenarios", "scenario directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := scenario.List(*dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			fmt.Printf("%-40s INVALID: %v\n", f, err)
			continue
		}
		fmt.Printf("%-40s %-16s %s\n", f, s.Kind, s.Description)
	}
	return nil
}
