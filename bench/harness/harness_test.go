package harness_test

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/clientcmd"

	operatorapp "github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/bench/harness"
	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/results"
	"github.com/tidalscale/tidal/bench/scenario"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers/registry"
)

// envHelper makes this test binary, re-executed, act as a --compare-cmd autoscaler (see TestMain).
const envHelper = "TIDAL_BENCH_TEST_AUTOSCALER"

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) != "" {
		os.Exit(helperAutoscaler())
	}
	os.Exit(devcluster.Main(m))
}

// helperAutoscaler is the --compare-cmd of TestCompareCommand: Tidal's operator (direct mode) run as a separate
// process against $KUBECONFIG until SIGTERM, as any other autoscaler binary would be.
func helperAutoscaler() int {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// Only the bench's namespace: the dev cluster is shared with other tests' ScaledObjects, which an operator
	// watching every namespace would poll and scale too.
	ns := os.Getenv("TIDAL_BENCH_NAMESPACE")
	source, err := poller.Start(ctx, poller.Options{Registry: registry.New()})
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	op, err := operatorapp.New(operatorapp.Options{Config: cfg, Source: source, Logger: zap.NewNop(), Namespace: ns, WatchNamespace: ns})
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	if err := op.Run(ctx); err != nil && ctx.Err() == nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

func scenarioPath(t *testing.T, name string) string {
	t.Helper()
	root, err := devcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "bench", "scenarios", name+".yaml")
}

// runShort runs a scenario's short form on the dev cluster and checks what every result must satisfy: it
// validates against the schema, both plots are PNGs, every run measured something and reported no error.
func runShort(t *testing.T, name string, o harness.Options) *result.Result {
	t.Helper()
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	spec, err := scenario.Load(scenarioPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	o.Cluster, o.Short, o.Logger, o.TidalVersion = c, true, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), "test"
	if o.RedisAddress == "" {
		o.RedisAddress = pushRedis(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := harness.Run(ctx, spec, o)
	if err != nil {
		t.Fatal(err)
	}
	files, err := res.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(files.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := results.Validate(raw); err != nil {
		t.Fatalf("result does not validate: %v\n%s", err, raw)
	}
	for _, p := range []string{files.Timeline, files.CDF} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s is not a PNG: %v", p, err)
		}
	}
	t.Logf("\n%s", res.Table())
	for _, r := range res.Runs {
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %v", r.Autoscaler, r.Errors)
		}
	}
	if res.Warmup.Iterations != spec.Effective(true).Warmup || !res.Warmup.Excluded {
		t.Fatalf("warm-up = %+v, want %d iterations excluded", res.Warmup, spec.Effective(true).Warmup)
	}
	return res
}

// metric returns the named metric of the named run, failing the test if it has no samples.
func metric(t *testing.T, res *result.Result, run, name string, want int) *result.Metric {
	t.Helper()
	for _, r := range res.Runs {
		if r.Autoscaler != run {
			continue
		}
		m := r.Metric(name)
		if m == nil || m.Count != want || len(m.Samples) != want {
			t.Fatalf("%s %s: want %d samples, got %+v", run, name, want, m)
		}
		if m.P50 <= 0 || m.P50 > m.P99 || m.P99 > m.Max {
			t.Fatalf("%s %s: inconsistent percentiles %+v", run, name, m)
		}
		return m
	}
	t.Fatalf("no run %q in %d runs", run, len(res.Runs))
	return nil
}

// pushRedis is a Redis of the test's own that publishes keyspace events: the scenarios measure push-driven
// activation (their polling interval is long on purpose), and Tidal never turns the events on unasked. A private
// server keeps the setting away from the shared one, whose tests set and restore it.
func pushRedis(t *testing.T) string {
	t.Helper()
	r := testenv.StartRedis(t)
	rc := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	defer rc.Close()
	if err := rc.ConfigSet(context.Background(), "notify-keyspace-events", "KEA").Err(); err != nil {
		t.Fatal(err)
	}
	return r.Addr
}

func TestScaleFromZero(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario string
	}{
		{name: "redis list", scenario: "scale-from-zero-redis"},
		{name: "kafka topic", scenario: "scale-from-zero-kafka"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runShort(t, tc.scenario, harness.Options{})
			repeats := res.Params.Repeats
			rep := metric(t, res, "tidal-direct", "event-to-replica", repeats)
			run := metric(t, res, "tidal-direct", "event-to-running", repeats)
			// The pod can only be Running after the replica was asked for, in every activation.
			for i := range rep.Samples {
				if run.Samples[i] < rep.Samples[i] {
					t.Fatalf("activation %d: Running after %.1fms but replica after %.1fms", i, run.Samples[i], rep.Samples[i])
				}
			}
			if len(res.Runs[0].Timeline) == 0 {
				t.Fatal("no timeline")
			}
		})
	}
}

func TestBurst(t *testing.T) {
	res := runShort(t, "burst", harness.Options{})
	metric(t, res, "tidal-direct", "activation", res.Params.Repeats)
	metric(t, res, "tidal-direct", "burst-to-needed", res.Params.Repeats)
	r := res.Runs[0]
	if r.Counters["burstsNeverReachingNeeded"] != 0 {
		t.Fatalf("%v bursts never reached the replicas their queue needed", r.Counters["burstsNeverReachingNeeded"])
	}
	if r.Counters["peakReplicasMean"] < 2 {
		t.Fatalf("peak %v replicas: the burst should need more than one", r.Counters["peakReplicasMean"])
	}
	var sawPeak, backAtZero bool
	for _, p := range r.Timeline {
		sawPeak = sawPeak || p.Replicas >= 2
		backAtZero = sawPeak && p.Replicas == 0 && p.Running == 0
	}
	if !sawPeak || !backAtZero {
		t.Fatalf("timeline does not go up and back to zero: %+v", r.Timeline)
	}
}

// The built-in side-by-side: the same burst with Tidal direct and Tidal hpa (kube-controller-manager's HPA on
// the adapter's external metrics), and their ratios.
func TestHPAVersusDirect(t *testing.T) {
	// The adapter registers the cluster-wide metrics APIServices: one package at a time.
	devcluster.Get(t).Exclusive(t, devcluster.ExclusiveMetricsAPIs)
	res := runShort(t, "hpa-vs-direct", harness.Options{})
	if len(res.Runs) != 2 || res.Runs[0].Autoscaler != "tidal-direct" || res.Runs[1].Autoscaler != "tidal-hpa" {
		t.Fatalf("runs: %+v", res.Runs)
	}
	for _, run := range []string{"tidal-direct", "tidal-hpa"} {
		metric(t, res, run, "activation", res.Params.Repeats)
		metric(t, res, run, "burst-to-needed", res.Params.Repeats)
	}
	var ratio *result.Comparison
	for i := range res.Comparisons {
		if res.Comparisons[i].Metric == "burst-to-needed" {
			ratio = &res.Comparisons[i]
		}
	}
	if ratio == nil || ratio.Baseline != "tidal-direct" || ratio.Other != "tidal-hpa" || ratio.P50Ratio <= 0 {
		t.Fatalf("no burst-to-needed comparison: %+v", res.Comparisons)
	}
}

func TestAdapterLoad(t *testing.T) {
	devcluster.Get(t).Exclusive(t, devcluster.ExclusiveMetricsAPIs)
	res := runShort(t, "adapter-load", harness.Options{})
	metric(t, res, "tidal-hpa", "external-metric-get", res.Params.Requests)
	if f := res.Runs[0].Counters["failures"]; f != 0 {
		t.Fatalf("%v failed GETs", f)
	}
}

// --compare-cmd: a second autoscaler as a separate process (this test binary running Tidal's operator), on
// the same cluster and event source; both are reported with their ratios.
func TestCompareCommand(t *testing.T) {
	cmd := envHelper + "=1 " + os.Args[0]
	res := runShort(t, "scale-from-zero-redis", harness.Options{CompareCmd: cmd})
	if len(res.Runs) != 2 || res.Runs[1].Autoscaler != "command" || res.Runs[1].Command != cmd {
		t.Fatalf("runs: %+v", res.Runs)
	}
	metric(t, res, "command", "event-to-replica", res.Params.Repeats)
	if len(res.Comparisons) != 2 {
		t.Fatalf("comparisons: %+v", res.Comparisons)
	}
}

func TestCompareCommandThatFailsIsReported(t *testing.T) {
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	spec, err := scenario.Load(scenarioPath(t, "scale-from-zero-redis"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := harness.Run(context.Background(), spec, harness.Options{Cluster: c, Short: true, CompareCmd: "exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 2 || len(res.Runs[1].Errors) != 1 || !strings.Contains(res.Runs[1].Errors[0], "--compare-cmd: sh exited at start") {
		t.Fatalf("runs: %+v", res.Runs)
	}
}

// A scenario whose component binary is missing fails at once with ErrUnavailable saying how to build it.
func TestUnavailableComponents(t *testing.T) {
	c := devcluster.Get(t)
	for _, tc := range []struct {
		name, scenario, mention string
		opts                    harness.Options
	}{
		{name: "node scale-up", scenario: "node-scale-up", mention: "tidal-node-autoscaler binary /nonexistent/tidal-node-autoscaler not found",
			opts: harness.Options{NodeAutoscalerBin: "/nonexistent/tidal-node-autoscaler"}},
		{name: "virtual burst", scenario: "virtual-burst", mention: "tidal-virtual-node binary /nonexistent/tidal-virtual-node not found",
			opts: harness.Options{VirtualNodeBin: "/nonexistent/tidal-virtual-node"}},
		{name: "event to running, node autoscaler", scenario: "event-to-running", mention: "tidal-node-autoscaler binary /nonexistent/tidal-node-autoscaler not found",
			opts: harness.Options{NodeAutoscalerBin: "/nonexistent/tidal-node-autoscaler"}},
		{name: "event to running, virtual node", scenario: "event-to-running", mention: "tidal-virtual-node binary /nonexistent/tidal-virtual-node not found",
			opts: harness.Options{NodeAutoscalerBin: os.Args[0], VirtualNodeBin: "/nonexistent/tidal-virtual-node"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := scenario.Load(scenarioPath(t, tc.scenario))
			if err != nil {
				t.Fatal(err)
			}
			tc.opts.Cluster, tc.opts.Short = c, true
			_, err = harness.Run(context.Background(), spec, tc.opts)
			if !errors.Is(err, harness.ErrUnavailable) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("err = %v, want ErrUnavailable with %q", err, tc.mention)
			}
		})
	}
}

// componentBinary returns the binary named by env or bin/<name>; without one the scenario must report
// ErrUnavailable naming how to build it, which the test then checks instead.
func componentBinary(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	root, err := devcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

func expectUnavailable(t *testing.T, scenarioName, build string) {
	t.Helper()
	c := devcluster.Get(t)
	spec, err := scenario.Load(scenarioPath(t, scenarioName))
	if err != nil {
		t.Fatal(err)
	}
	_, err = harness.Run(context.Background(), spec, harness.Options{Cluster: c, Short: true})
	if !errors.Is(err, harness.ErrUnavailable) || !strings.Contains(err.Error(), build) {
		t.Fatalf("without the binary: err = %v, want ErrUnavailable naming %q", err, build)
	}
	t.Logf("binary not built, checked the ErrUnavailable path only: %v", err)
}

// Node scale-up with the node autoscaler binary ($TIDAL_NODE_AUTOSCALER_BIN or bin/tidal-node-autoscaler; it
// links the scheduler framework, so it is not built here).
func TestNodeScaleUp(t *testing.T) {
	bin := componentBinary(t, "TIDAL_NODE_AUTOSCALER_BIN", "tidal-node-autoscaler")
	if bin == "" {
		expectUnavailable(t, "node-scale-up", "go build -o bin/tidal-node-autoscaler ./cmd/tidal-node-autoscaler")
		return
	}
	res := runShort(t, "node-scale-up", harness.Options{NodeAutoscalerBin: bin})
	size := res.Params.Nodes[0]
	for _, name := range []string{"first-node", "all-pods-running"} {
		metric(t, res, "tidal-node-autoscaler", fmt.Sprintf("%s@%dnodes", name, size), res.Params.Repeats)
	}
	metric(t, res, "tidal-node-autoscaler", fmt.Sprintf("pod-pending-to-running@%dnodes", size), res.Params.Repeats*res.Params.Pods)
	want := float64((res.Params.Pods + 3) / 4)
	if got := res.Runs[0].Counters[fmt.Sprintf("nodesAddedMean@%dnodes", size)]; got != want {
		t.Fatalf("nodes added %v, want %v for %d one-CPU pods on four-CPU nodes", got, want, res.Params.Pods)
	}
}

// Virtual burst with the virtual node binary ($TIDAL_VIRTUAL_NODE_BIN or bin/tidal-virtual-node).
func TestVirtualBurst(t *testing.T) {
	bin := componentBinary(t, "TIDAL_VIRTUAL_NODE_BIN", "tidal-virtual-node")
	if bin == "" {
		expectUnavailable(t, "virtual-burst", "go build -o bin/tidal-virtual-node ./cmd/tidal-virtual-node")
		return
	}
	res := runShort(t, "virtual-burst", harness.Options{VirtualNodeBin: bin})
	metric(t, res, "tidal-virtual-node", "burst-all-running", res.Params.Repeats)
	metric(t, res, "tidal-virtual-node", "backfill-complete", res.Params.Repeats)
	// One real node holds four one-CPU pods; the rest of the burst ran on the virtual node.
	if got, want := res.Runs[0].Counters["podsOnVirtualNodeMean"], float64(res.Params.Pods-4); got != want {
		t.Fatalf("pods on the virtual node %v, want %v", got, want)
	}
}

// Event to running with the node autoscaler and the virtual node binaries: each demand variant took the burst
// to all pods Running, auto ran part of it on the virtual node and backfilled it, and the ratios are stated.
func TestEventToRunning(t *testing.T) {
	nodes := componentBinary(t, "TIDAL_NODE_AUTOSCALER_BIN", "tidal-node-autoscaler")
	virtual := componentBinary(t, "TIDAL_VIRTUAL_NODE_BIN", "tidal-virtual-node")
	if nodes == "" || virtual == "" {
		expectUnavailable(t, "event-to-running", "go build -o bin/tidal-")
		return
	}
	res := runShort(t, "event-to-running", harness.Options{NodeAutoscalerBin: nodes, VirtualNodeBin: virtual})
	n := res.Params.Repeats
	for _, run := range []string{"tidal-signal-off", "tidal-signal-on", "tidal-auto"} {
		metric(t, res, run, "event-to-replicas", n)
		metric(t, res, run, "event-to-running", n)
	}
	backfilled := metric(t, res, "tidal-auto", "event-to-backfilled", n)
	if running := res.Runs[2].Metric("event-to-running"); backfilled.P50 < running.P50 {
		t.Fatalf("backfill done at %vms before the pods ran at %vms", backfilled.P50, running.P50)
	}
	if got := res.Runs[2].Counters["podsOnVirtualNodeMean"]; got <= 0 {
		t.Fatalf("auto ran no pod on the virtual node (podsOnVirtualNodeMean %v): it should burst with a node delay of %s over a %ds target",
			got, res.Params.ProvisioningDelay.D(), res.Params.MaxPendingSeconds)
	}
	ratios := 0
	for _, note := range res.Notes {
		if strings.HasPrefix(note, "event-to-running: tidal-signal-off/") {
			ratios++
		}
	}
	if ratios != 2 {
		t.Fatalf("want the (a)/(b) and (a)/(c) ratios in the notes, got %q", res.Notes)
	}
}

// Fleet with operator binaries ($TIDAL_OPERATOR_BIN or bin/tidal-operator): three sharded replicas share the
// objects, one is killed and the survivors take its objects over (rebalance measured), every replica's RSS is
// read, and the polls are counted against their due times.
func TestFleet(t *testing.T) {
	bin := componentBinary(t, "TIDAL_OPERATOR_BIN", "tidal-operator")
	if bin == "" {
		expectUnavailable(t, "fleet-30000", "go build -o bin/tidal-operator ./cmd/tidal-operator")
		return
	}
	res := runShort(t, "fleet-30000", harness.Options{})
	// The survivors took every object over (how fast is the benchmark's figure, not asserted here).
	metric(t, res, "tidal-operator", "rebalance", 1)
	c := res.Runs[0].Counters
	for i := range res.Params.Replicas {
		if c[fmt.Sprintf("rssPeakMiB/fleet-%d", i)] <= 0 {
			t.Errorf("no RSS read for replica %d: %v", i, c)
		}
	}
	// Every object polled at least once per interval by the survivors (the short form runs 24 s at 2 s).
	if min := float64(res.Params.ScaledObjects); c["polls"] < min {
		t.Errorf("polls = %v, want at least %v", c["polls"], min)
	}
}

// Soak (its short form): one operator, RSS read throughout, polls counted.
func TestSoak(t *testing.T) {
	bin := componentBinary(t, "TIDAL_OPERATOR_BIN", "tidal-operator")
	if bin == "" {
		expectUnavailable(t, "soak-10000", "go build -o bin/tidal-operator ./cmd/tidal-operator")
		return
	}
	res := runShort(t, "soak-10000", harness.Options{})
	c := res.Runs[0].Counters
	if c["rssGrowth/fleet-0"] <= 0 || c["polls"] < float64(res.Params.ScaledObjects) {
		t.Fatalf("counters %v: want RSS read and every object polled", c)
	}
}
