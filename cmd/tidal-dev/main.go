// Command tidal-dev runs an embedded Kubernetes dev cluster in one process: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok-simulated nodes labelled type=kwok.
//
//	tidal-dev up --nodes 3 [--node-cpu 4 --node-memory 16Gi] [--data-dir DIR] [--kubeconfig PATH] [--exit-with-parent]
//	             [--container-node [--containerd-address SOCKET]]
//
// When the cluster is ready it prints exactly one line to stdout:
//
//	tidal-dev ready kubeconfig=/path/kubeconfig apiserver=https://127.0.0.1:PORT in 4.2s
//
// (with --container-node, "container-node=NAME containerd=SOCKET containerd-namespace=NS" before "in").
//
// --container-node adds a virtual node whose pods run as real containers through containerd, on the host's
// network; Services of its pods are routed from their ClusterIPs on the loopback interface (see
// internal/devcluster/controlplane/servicerouter.go). It needs root and containerd + runc.

// Its own logs go to stderr; the components log to DATA-DIR/components.log unless --component-log says otherwise.
// SIGINT/SIGTERM stop every component and remove a temporary data dir.
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
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tidalscale/tidal/internal/devcluster/controlplane"
)

// stopTimeout bounds the whole shutdown.
const stopTimeout = time.Minute

// upFlags are the flags of `tidal-dev up`.
type upFlags struct {
	nodes          int
	nodeCPU        string
	nodeMemory     string
	dataDir        string
	kubeconfig     string
	exitWithParent bool
	hpaSyncPeriod  time.Duration
	logLevel       string
	verbose        bool
	componentLog   string
	componentV     int
	startTimeout   time.Duration
	containerNode  bool
	containerdAddr string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "up" {
		fmt.Fprintln(stderr, "usage: tidal-dev up [--nodes N] [--node-cpu Q] [--node-memory Q] [--data-dir DIR] [--kubeconfig PATH] [--exit-with-parent]")
		return 2
	}
	f, err := parseUp(args[1:], stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "tidal-dev: "+oneLine(err))
		return 2
	}
	if err := up(f, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "tidal-dev: "+oneLine(err))
		return 1
	}
	return 0
}

func parseUp(args []string, stderr io.Writer) (upFlags, error) {
	var f upFlags
	fs := flag.NewFlagSet("tidal-dev up", flag.ContinueOnError)
	// Errors are reported by the caller in one line; only -h prints the flag list.
	fs.SetOutput(io.Discard)
	fs.IntVar(&f.nodes, "nodes", 3, "number of simulated (kwok) nodes")
	fs.StringVar(&f.nodeCPU, "node-cpu", "4", "CPU capacity of each simulated node (quantity)")
	fs.StringVar(&f.nodeMemory, "node-memory", "16Gi", "memory capacity of each simulated node (quantity)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for etcd data, PKI, kubeconfigs and logs; kept on exit, and up on it again resumes that cluster at the same address with the same CAs and data (default: a temporary directory removed on exit)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "also write the admin kubeconfig to this path (never overwrites a kubeconfig tidal-dev did not write)")
	fs.BoolVar(&f.exitWithParent, "exit-with-parent", false, "stop when the parent process exits (for test helpers)")
	fs.DurationVar(&f.hpaSyncPeriod, "hpa-sync-period", controlplane.DefaultHPASyncPeriod, "kube-controller-manager --horizontal-pod-autoscaler-sync-period")
	fs.StringVar(&f.logLevel, "log-level", "info", "tidal-dev log level: debug, info, warn, error")
	fs.BoolVar(&f.verbose, "v", false, "shorthand for --log-level=debug")
	fs.StringVar(&f.componentLog, "component-log", "", `where component logs go: a file, "stderr" or "discard" (default DATA-DIR/components.log)`)
	fs.IntVar(&f.componentV, "component-v", 0, "klog verbosity of the Kubernetes components")
	fs.DurationVar(&f.startTimeout, "start-timeout", 3*time.Minute, "give up if the cluster is not ready by then")
	fs.BoolVar(&f.containerNode, "container-node", false, "also register the node "+controlplane.DefaultContainerNodeName+
		" that runs its pods as real containers on the host network (containerd + runc, root); pods reach it with nodeSelector "+
		"tidal.dev/virtual-node-backend=containerd and a toleration of virtual-kubelet.io/provider")
	fs.StringVar(&f.containerdAddr, "containerd-address", "", "with --container-node: socket of a running containerd to use (default: start one under DATA-DIR/ctd)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: tidal-dev up [flags]")
			fs.PrintDefaults()
		}
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("up: unexpected argument %q", fs.Arg(0))
	}
	if f.verbose {
		f.logLevel = "debug"
	}
	if f.containerdAddr != "" && !f.containerNode {
		return f, errors.New("containerd-address: only with --container-node")
	}
	if f.startTimeout <= 0 {
		return f, fmt.Errorf("start-timeout: must be positive, got %s", f.startTimeout)
	}
	return f, nil
}

func up(f upFlags, stdout, stderr io.Writer) error {
	began := time.Now()
	logger, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	opts := controlplane.Options{
		Nodes:              f.nodes,
		DataDir:            f.dataDir,
		Kubeconfig:         f.kubeconfig,
		HPASyncPeriod:      f.hpaSyncPeriod,
		Logger:             logger,
		ComponentLog:       f.componentLog,
		ComponentVerbosity: f.componentV,
		ContainerNode:      controlplane.ContainerNodeOptions{Enabled: f.containerNode, Address: f.containerdAddr},
	}
	if opts.Node.CPU, err = resource.ParseQuantity(f.nodeCPU); err != nil {
		return fmt.Errorf("node-cpu: %q: %w", f.nodeCPU, err)
	}
	if opts.Node.Memory, err = resource.ParseQuantity(f.nodeMemory); err != nil {
		return fmt.Errorf("node-memory: %q: %w", f.nodeMemory, err)
	}
	if err := opts.Validate(); err != nil {
		return err
	}

	// A parent that exits closes the pipes of our stdout/stderr: the next log line must not kill the process
	// (SIGPIPE) before it has stopped the components, a container node's containers and its loopback routes.
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopSignals := handleSignals(cancel, logger)
	defer stopSignals()
	if f.exitWithParent {
		go watchParent(ctx, cancel, logger)
	}

	startCtx, cancelStart := context.WithTimeout(ctx, f.startTimeout)
	cluster, err := controlplane.Start(startCtx, opts)
	cancelStart()
	if err != nil {
		if ctx.Err() != nil {
			logger.Info("interrupted during start-up")
			return nil
		}
		return err
	}
	kubeconfig := cluster.Kubeconfig
	if f.kubeconfig != "" {
		if kubeconfig, err = filepath.Abs(f.kubeconfig); err != nil {
			kubeconfig = f.kubeconfig
		}
	}
	extra := ""
	if n := cluster.ContainerNode(); n != nil {
		extra = fmt.Sprintf(" container-node=%s containerd=%s containerd-namespace=%s", n.Name, n.Address, n.Namespace)
	}
	fmt.Fprintf(stdout, "tidal-dev ready kubeconfig=%s apiserver=%s%s in %.1fs\n", kubeconfig, cluster.APIServerURL, extra, time.Since(began).Seconds())
	logger.Info("cluster ready", zap.String("kubeconfig", kubeconfig), zap.String("apiserver", cluster.APIServerURL),
		zap.String("dataDir", cluster.DataDir), zap.Int("nodes", f.nodes))

	var failure error
	select {
	case <-ctx.Done():
	case failure = <-cluster.Failed():
		logger.Error("component failed, stopping", zap.Error(failure))
	}
	stopCtx, cancelStop := context.WithTimeout(context.Background(), stopTimeout)
	defer cancelStop()
	if err := cluster.Stop(stopCtx); err != nil {
		return errors.Join(failure, fmt.Errorf("stop: %w", err))
	}
	logger.Info("stopped")
	return failure
}

// forceExitSignals is how many SIGINT/SIGTERM end the process without a clean stop. The first starts a clean
// stop; a second one is tolerated because tools such as timeout(1) signal both the process and its group.
const forceExitSignals = 3

// handleSignals cancels on the first SIGINT/SIGTERM and exits at once on the forceExitSignals-th.
func handleSignals(cancel context.CancelFunc, logger *zap.Logger) (stop func()) {
	ch := make(chan os.Signal, forceExitSignals)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				n++
				switch {
				case n == 1:
					logger.Info("signal received, stopping", zap.String("signal", sig.String()))
					cancel()
				case n >= forceExitSignals:
					logger.Warn("signal received again, exiting without a clean stop", zap.String("signal", sig.String()))
					os.Exit(130)
				default:
					logger.Info("signal received, already stopping", zap.String("signal", sig.String()))
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// watchParent cancels when the process that started tidal-dev exits (the process is then re-parented).
func watchParent(ctx context.Context, cancel context.CancelFunc, logger *zap.Logger) {
	parent := os.Getppid()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != parent {
				logger.Info("parent process exited", zap.Int("parent", parent))
				cancel()
				return
			}
		}
	}
}

func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %q: want debug, info, warn or error", level)
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), lvl)
	return zap.New(core).Named("tidal-dev"), nil
}

// oneLine flattens a multi-line error (aggregated component errors) into a single line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
