// Package harness runs benchmark scenarios (bench/scenarios/*.yaml) on the embedded dev cluster: it starts the
// autoscalers under test, drives the event source, takes every timestamp from the source's own push or from a
// watch event, and returns a result.Result.
package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/scenario"
	"github.com/tidalscale/tidal/internal/devcluster"
)

// Options configure one scenario run.
type Options struct {
	Cluster *devcluster.Cluster
	// Short runs the scenario's short form (tiny sizes).
	Short bool
	// CompareCmd, when set, is a second autoscaler run as a shell command against the same cluster and source.
	CompareCmd string
	// RedisAddress is the Redis server of redis scenarios (default 127.0.0.1:6379).
	RedisAddress string
	// TidalVersion is recorded in the result.
	TidalVersion string
	// Progress receives a live status line (see NewProgress); nil is quiet.
	Progress *Progress
	Logger   *zap.Logger
	// NodeAutoscalerBin is the tidal-node-autoscaler binary node-scale-up runs (default
	// $TIDAL_NODE_AUTOSCALER_BIN, else bin/tidal-node-autoscaler under the module root, when it exists).
	NodeAutoscalerBin string
	// VirtualNodeBin is the tidal-virtual-node binary virtual-burst runs (default $TIDAL_VIRTUAL_NODE_BIN, else
	// bin/tidal-virtual-node under the module root, when it exists).
	VirtualNodeBin string
	// TmpDir holds certificates and --compare-cmd's log (default: a fresh temp dir, removed after).
	TmpDir string
}

// runner measures one autoscaler in one scenario.
type runner interface {
	measure(ctx context.Context, env *runEnv) (*result.Run, error)
}

// selfContained runners start the component they measure themselves (a binary), so no Tidal autoscaler runs
// beside them.
type selfContained interface{ selfContained() }

// commandComparable self-contained runners accept --compare-cmd: a command that stands in for their component
// (another build, another autoscaler); in that run they start nothing themselves.
type commandComparable interface{ commandComparable() }

// variantRunner runners name their own contestants (event-to-running: Tidal once per demand variant).
type variantRunner interface {
	contestants(p scenario.Params, o Options) []Autoscaler
}

// noAutoscaler stands in for the autoscaler of a self-contained runner.
type noAutoscaler struct{}

func (noAutoscaler) Name() string { return "none" }
func (noAutoscaler) Mode() string { return scenario.ModeDirect }
func (noAutoscaler) Start(context.Context, *devcluster.Cluster, string) (func(), error) {
	return func() {}, nil
}

// runEnv is what a runner gets: the cluster, a fresh namespace, the autoscaler already running.
type runEnv struct {
	opts       Options
	params     scenario.Params
	tidal      tidalclient.Interface
	namespace  string
	autoscaler Autoscaler
	log        *zap.Logger
	progress   *Progress
}

// Run runs spec and returns its result. A scenario whose component is missing returns an error wrapping
// ErrUnavailable.
func Run(ctx context.Context, spec *scenario.Spec, o Options) (*result.Result, error) {
	if o.Cluster == nil {
		return nil, fmt.Errorf("harness: a cluster is required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.RedisAddress == "" {
		o.RedisAddress = "127.0.0.1:6379"
	}
	if o.TmpDir == "" {
		dir, err := os.MkdirTemp("", "tidal-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.TmpDir = dir
	}
	p := spec.Effective(o.Short)
	r, err := runnerFor(spec.Kind, o)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", spec.Name, err)
	}
	tc, err := tidalclient.NewForConfig(o.Cluster.Config)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res := &result.Result{
		SchemaVersion: result.SchemaVersion, Scenario: spec.Name, Kind: spec.Kind, Description: spec.Description,
		Short: o.Short, StartedAt: start.UTC(), TidalVersion: o.TidalVersion, Machine: result.ReadMachine(), Params: p,
		Warmup: result.Warmup{Iterations: p.Warmup, Excluded: true,
			Note: fmt.Sprintf("%d iteration(s) per autoscaler ran first and are in no metric", p.Warmup)},
	}
	if res.TidalVersion == "" {
		res.TidalVersion = "unknown"
	}
	list := autoscalers(spec, p, o)
	if vr, ok := r.(variantRunner); ok {
		if o.CompareCmd != "" || spec.Compare != nil {
			return nil, fmt.Errorf("scenario %s: kind %s compares its own variants; --compare-cmd and compare are not supported", spec.Name, spec.Kind)
		}
		list = vr.contestants(p, o)
	}
	if _, ok := r.(selfContained); ok {
		_, comparable := r.(commandComparable)
		if (o.CompareCmd != "" && !comparable) || spec.Compare != nil {
			return nil, fmt.Errorf("scenario %s: kind %s runs its own component; --compare-cmd and compare are not supported", spec.Name, spec.Kind)
		}
		list = []Autoscaler{noAutoscaler{}}
		if o.CompareCmd != "" {
			list = append(list, commandAutoscaler{command: o.CompareCmd, mode: scenario.ModeDirect, logDir: o.TmpDir})
		}
	}
	for _, a := range list {
		run, err := measureOne(ctx, r, a, spec, p, tc, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			run = &result.Run{Autoscaler: a.Name(), Errors: []string{err.Error()}}
		}
		if ca, ok := a.(commandAutoscaler); ok {
			run.Command = ca.command
		}
		res.Runs = append(res.Runs, run)
	}
	if spec.Kind == scenario.KindBurst {
		res.Notes = append(res.Notes, "scale-out-step and burst-to-needed include the HPA behavior in force (direct mode applies "+
			"the same rules): by default scale-up is limited to +100% or +4 pods per 15s, so steps past a doubling wait for the "+
			"next period; bursts whose queue drained before reaching the needed replicas are counted in burstsNeverReachingNeeded.")
	}
	res.Compare()
	if spec.Kind == scenario.KindEventToRunning {
		res.Notes = append(res.Notes, speedups(res, metricEventToRunning)...)
	}
	res.DurationSeconds = time.Since(start).Seconds()
	res.Machine.LoadAvg1End = result.LoadAvg1()
	return res, nil
}

// autoscalers lists the contestants: Tidal in the scenario's mode, then the built-in comparison, then
// --compare-cmd.
func autoscalers(spec *scenario.Spec, p scenario.Params, o Options) []Autoscaler {
	mode := p.Mode
	if mode == "" {
		mode = scenario.ModeDirect
	}
	list := []Autoscaler{tidalFor(mode, o)}
	if spec.Compare != nil {
		list = append(list, tidalFor(spec.Compare.Mode, o))
	}
	if o.CompareCmd != "" {
		list = append(list, commandAutoscaler{command: o.CompareCmd, mode: mode, logDir: o.TmpDir})
	}
	return list
}

func tidalFor(mode string, o Options) Autoscaler {
	if mode == scenario.ModeHPA {
		return tidalHPA{log: o.Logger, tmpDir: o.TmpDir}
	}
	return tidalDirect{log: o.Logger}
}

func measureOne(ctx context.Context, r runner, a Autoscaler, spec *scenario.Spec, p scenario.Params, tc tidalclient.Interface, o Options) (*result.Run, error) {
	ns, cleanup, err := createNamespace(ctx, o.Cluster, spec.Name)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	o.Progress.Set("%s: starting %s in %s", spec.Name, a.Name(), ns)
	stop, err := a.Start(ctx, o.Cluster, ns)
	if err != nil {
		return nil, err
	}
	defer stop()
	env := &runEnv{opts: o, params: p, tidal: tc, namespace: ns, autoscaler: a,
		log: o.Logger.With(zap.String("scenario", spec.Name), zap.String("autoscaler", a.Name())), progress: o.Progress}
	run, err := r.measure(ctx, env)
	if run != nil && run.Autoscaler == "" {
		run.Autoscaler = a.Name()
	}
	return run, err
}

func runnerFor(kind string, o Options) (runner, error) {
	switch kind {
	case scenario.KindScaleFromZero:
		return scaleFromZero{}, nil
	case scenario.KindBurst:
		return burst{}, nil
	case scenario.KindAdapterLoad:
		return adapterLoad{}, nil
	case scenario.KindNodeScaleUp:
		bin, err := findBinary(o.NodeAutoscalerBin, envNodeAutoscaler, "tidal-node-autoscaler", "node-scale-up needs the node autoscaler")
		if err != nil {
			return nil, err
		}
		return nodeScaleUp{bin: bin}, nil
	case scenario.KindEventToRunning:
		na, err := findBinary(o.NodeAutoscalerBin, envNodeAutoscaler, "tidal-node-autoscaler", "event-to-running needs the node autoscaler")
		if err != nil {
			return nil, err
		}
		vn, err := findBinary(o.VirtualNodeBin, envVirtualNode, "tidal-virtual-node", "event-to-running's auto variant needs the virtual node")
		if err != nil {
			return nil, err
		}
		return eventToRunning{nodeAutoscaler: na, virtualNode: vn}, nil
	case scenario.KindFleet:
		bin, err := findBinary("", envOperator, "tidal-operator", "fleet runs operator processes")
		if err != nil {
			return nil, err
		}
		return fleet{bin: bin}, nil
	case scenario.KindVirtualBurst:
		bin, err := findBinary(o.VirtualNodeBin, envVirtualNode, "tidal-virtual-node", "virtual-burst needs the virtual node")
		if err != nil {
			return nil, err
		}
		return virtualBurst{bin: bin}, nil
	default:
		return nil, fmt.Errorf("kind %q: no runner", kind)
	}
}

// Progress is a live status line on a terminal; on anything else it writes nothing.
type Progress struct {
	w    io.Writer
	tty  bool
	last time.Time
	line string
}

// NewProgress writes to f when it is a terminal and is quiet otherwise.
func NewProgress(f *os.File) *Progress {
	st, err := f.Stat()
	return &Progress{w: f, tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

// Set replaces the status line (at most ten redraws a second).
func (p *Progress) Set(format string, args ...any) {
	if p == nil || !p.tty {
		return
	}
	line := fmt.Sprintf(format, args...)
	if line == p.line || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.line, p.last = line, time.Now()
	if len(line) > 118 {
		line = line[:118]
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

// Done ends the status line.
func (p *Progress) Done() {
	if p == nil || !p.tty || p.line == "" {
		return
	}
	fmt.Fprintln(p.w)
	p.line = ""
}
