// Package scenario is the YAML form of a benchmark scenario (bench/scenarios/*.yaml): what to run, with which
// parameters, and the tiny sizes of its --short form.
package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Kinds of scenario the harness knows.
const (
	KindScaleFromZero  = "scale-from-zero"
	KindBurst          = "burst"
	KindAdapterLoad    = "adapter-load"
	KindNodeScaleUp    = "node-scale-up"
	KindVirtualBurst   = "virtual-burst"
	KindEventToRunning = "event-to-running"
	KindFleet          = "fleet"
)

// Kinds lists every kind, sorted.
var kinds = []string{KindAdapterLoad, KindBurst, KindEventToRunning, KindFleet, KindNodeScaleUp, KindScaleFromZero, KindVirtualBurst}

// Event sources.
const (
	SourceRedis = "redis"
	SourceKafka = "kafka"
)

// Tidal modes (ScaledObject spec.mode).
const (
	ModeDirect = "direct"
	ModeHPA    = "hpa"
)

// Demand variants of event-to-running.
const (
	// VariantOff: the operator writes no CapacityRequest; nodes follow Pending pods (the KEDA + CA pattern).
	VariantOff = "signal-off"
	// VariantOn: the operator publishes the CapacityRequest before /scale; the node autoscaler acts on it.
	VariantOn = "signal-on"
	// VariantAuto: the demand signal with spec.placement auto, a virtual node to burst to, and backfill.
	VariantAuto = "auto"
)

var variants = []string{VariantOff, VariantOn, VariantAuto}

// Spec is one scenario file.
type Spec struct {
	// Name names the result files (<name>-<date>.json); defaults to the file's base name.
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
	// Params are the full run's parameters; Short overrides the non-zero ones for --short.
	Params Params `json:"params"`
	Short  Params `json:"short,omitempty"`
	// Compare, when set, runs the same scenario a second time with Tidal in this mode and reports both.
	Compare *Compare `json:"compare,omitempty"`
}

// Compare is the built-in side-by-side run.
type Compare struct {
	Mode string `json:"mode"`
}

// Params are a scenario's knobs. Each kind reads the ones it documents; the rest must be left zero.
type Params struct {
	// Source is the event source: redis or kafka (scale-from-zero, burst).
	Source string `json:"source,omitempty"`
	// Mode is Tidal's mode for the measured run: direct (default) or hpa.
	Mode string `json:"mode,omitempty"`
	// Repeats is how many measured iterations run; Warmup iterations run first and are excluded.
	Repeats int `json:"repeats,omitempty"`
	Warmup  int `json:"warmup,omitempty"`
	// Interval is the pause between iterations.
	Interval Duration `json:"interval,omitempty"`
	// PollingInterval and Cooldown go into the ScaledObject.
	PollingInterval Duration `json:"pollingInterval,omitempty"`
	Cooldown        Duration `json:"cooldown,omitempty"`
	// ScaleDownStabilization, when set, is the ScaledObject's scale-down stabilization window (HPA behavior). The
	// upstream default, 300s, remembers the last burst's peak across iterations; 0s makes iterations independent.
	ScaleDownStabilization *Duration `json:"scaleDownStabilization,omitempty"`
	// Timeout bounds one iteration.
	Timeout Duration `json:"timeout,omitempty"`
	// Burst: Load is the arrival curve, TargetPerReplica the trigger's per-replica target, MaxReplicas the ceiling,
	// ItemsPerPodSecond how fast one Running pod works the queue.
	Load              []LoadStep `json:"load,omitempty"`
	TargetPerReplica  int        `json:"targetPerReplica,omitempty"`
	MaxReplicas       int        `json:"maxReplicas,omitempty"`
	ItemsPerPodSecond int        `json:"itemsPerPodSecond,omitempty"`
	// Adapter load: ScaledObjects objects, Requests external-metrics GETs issued Concurrency at a time.
	ScaledObjects int `json:"scaledObjects,omitempty"`
	Requests      int `json:"requests,omitempty"`
	Concurrency   int `json:"concurrency,omitempty"`
	// Node scale-up: cluster sizes in simulated nodes, and Pods pending pods per size. ProvisioningDelay is the
	// sim provider's node delay and ScanInterval the node autoscaler's loop period (its defaults when zero).
	Nodes             []int    `json:"nodes,omitempty"`
	Pods              int      `json:"pods,omitempty"`
	ProvisioningDelay Duration `json:"provisioningDelay,omitempty"`
	ScanInterval      Duration `json:"scanInterval,omitempty"`
	// BackfillInterval is the virtual node's --backfill-interval (virtual-burst, event-to-running).
	BackfillInterval Duration `json:"backfillInterval,omitempty"`
	// Event to running: Variants are the demand variants measured, in order (signal-off, signal-on, auto; the first is the
	// baseline of the ratios), and MaxPendingSeconds is auto's spec.placement.maxPendingSeconds. Pods, Repeats,
	// ProvisioningDelay, ScanInterval and BackfillInterval apply as above.
	Variants          []string `json:"variants,omitempty"`
	MaxPendingSeconds int      `json:"maxPendingSeconds,omitempty"`
	// Fleet: ScaledObjects objects under Replicas operator processes (sharded on Leases when more than one) for
	// Duration; KillAfter, when set, kills one replica that long after the start.
	Replicas  int      `json:"replicas,omitempty"`
	Duration  Duration `json:"duration,omitempty"`
	KillAfter Duration `json:"killAfter,omitempty"`
}

// LoadStep pushes Rate items per second for For.
type LoadStep struct {
	Rate int      `json:"rate"`
	For  Duration `json:"for"`
}

// Duration is a time.Duration written as "1.5s" in YAML and JSON.
type Duration time.Duration

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.5s" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("want a duration such as \"1.5s\", got %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"1.5s\", got %q", s)
	}
	*d = Duration(v)
	return nil
}

// Load reads and validates a scenario file.
func Load(path string) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	s, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return s, nil
}

// Parse decodes strictly (unknown keys are errors) and validates.
func Parse(raw []byte) (*Spec, error) {
	var s Spec
	if err := yaml.UnmarshalStrict(raw, &s); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Effective returns the parameters of a run: Params, with Short's non-zero fields over them when short.
func (s *Spec) Effective(short bool) Params {
	p := s.Params
	if !short {
		return p
	}
	o := s.Short
	over := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	overD := func(dst *Duration, v Duration) {
		if v != 0 {
			*dst = v
		}
	}
	if o.Source != "" {
		p.Source = o.Source
	}
	if o.Mode != "" {
		p.Mode = o.Mode
	}
	over(&p.Repeats, o.Repeats)
	over(&p.Warmup, o.Warmup)
	over(&p.TargetPerReplica, o.TargetPerReplica)
	over(&p.MaxReplicas, o.MaxReplicas)
	over(&p.ItemsPerPodSecond, o.ItemsPerPodSecond)
	over(&p.ScaledObjects, o.ScaledObjects)
	over(&p.Requests, o.Requests)
	over(&p.Concurrency, o.Concurrency)
	over(&p.Pods, o.Pods)
	over(&p.MaxPendingSeconds, o.MaxPendingSeconds)
	over(&p.Replicas, o.Replicas)
	overD(&p.Duration, o.Duration)
	overD(&p.KillAfter, o.KillAfter)
	overD(&p.Interval, o.Interval)
	overD(&p.PollingInterval, o.PollingInterval)
	overD(&p.Cooldown, o.Cooldown)
	overD(&p.Timeout, o.Timeout)
	overD(&p.ProvisioningDelay, o.ProvisioningDelay)
	overD(&p.ScanInterval, o.ScanInterval)
	overD(&p.BackfillInterval, o.BackfillInterval)
	if o.ScaleDownStabilization != nil {
		p.ScaleDownStabilization = o.ScaleDownStabilization
	}
	if len(o.Load) > 0 {
		p.Load = o.Load
	}
	if len(o.Nodes) > 0 {
		p.Nodes = o.Nodes
	}
	if len(o.Variants) > 0 {
		p.Variants = o.Variants
	}
	return p
}

// Validate checks the kind and, for both the full and the short form, the fields the kind needs.
func (s *Spec) Validate() error {
	if !contains(kinds, s.Kind) {
		return fmt.Errorf("kind: want one of %s, got %q", strings.Join(kinds, ", "), s.Kind)
	}
	if s.Compare != nil && s.Compare.Mode != ModeDirect && s.Compare.Mode != ModeHPA {
		return fmt.Errorf("compare.mode: want direct or hpa, got %q", s.Compare.Mode)
	}
	var errs []error
	for _, form := range []struct {
		name  string
		short bool
	}{{"params", false}, {"short", true}} {
		if err := s.Effective(form.short).validate(s.Kind); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", form.name, err))
		}
	}
	return errors.Join(errs...)
}

func (p Params) validate(kind string) error {
	var errs []error
	need := func(field string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %d", field, v))
		}
	}
	if p.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup: must not be negative, got %d", p.Warmup))
	}
	for name, d := range map[string]Duration{"interval": p.Interval, "pollingInterval": p.PollingInterval, "cooldown": p.Cooldown, "timeout": p.Timeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", name, d.D()))
		}
	}
	if p.ScaleDownStabilization != nil && *p.ScaleDownStabilization < 0 {
		errs = append(errs, fmt.Errorf("scaleDownStabilization: must not be negative, got %s", p.ScaleDownStabilization.D()))
	}
	if p.Mode != "" && p.Mode != ModeDirect && p.Mode != ModeHPA {
		errs = append(errs, fmt.Errorf("mode: want direct or hpa, got %q", p.Mode))
	}
	switch kind {
	case KindScaleFromZero, KindBurst:
		if p.Source != SourceRedis && p.Source != SourceKafka {
			errs = append(errs, fmt.Errorf("source: want redis or kafka, got %q", p.Source))
		}
		need("repeats", p.Repeats)
		if kind == KindBurst {
			need("targetPerReplica", p.TargetPerReplica)
			need("maxReplicas", p.MaxReplicas)
			need("itemsPerPodSecond", p.ItemsPerPodSecond)
			if len(p.Load) == 0 {
				errs = append(errs, errors.New("load: at least one step is required"))
			}
			for i, st := range p.Load {
				if st.Rate <= 0 || st.For <= 0 {
					errs = append(errs, fmt.Errorf("load[%d]: rate and for must be positive, got %d/s for %s", i, st.Rate, st.For.D()))
				}
			}
		}
	case KindAdapterLoad:
		need("scaledObjects", p.ScaledObjects)
		need("requests", p.Requests)
		need("concurrency", p.Concurrency)
	case KindNodeScaleUp:
		need("pods", p.Pods)
		need("repeats", p.Repeats)
		if len(p.Nodes) == 0 {
			errs = append(errs, errors.New("nodes: at least one cluster size is required"))
		}
		for i, n := range p.Nodes {
			if n <= 0 {
				errs = append(errs, fmt.Errorf("nodes[%d]: must be positive, got %d", i, n))
			}
		}
	case KindVirtualBurst:
		need("pods", p.Pods)
		need("repeats", p.Repeats)
	case KindFleet:
		need("scaledObjects", p.ScaledObjects)
		need("replicas", p.Replicas)
		need("duration", int(p.Duration.D().Seconds()))
		switch {
		case p.KillAfter < 0 || (p.KillAfter > 0 && p.KillAfter >= p.Duration):
			errs = append(errs, fmt.Errorf("killAfter: want 0 (no kill) or less than duration (%s), got %s", p.Duration.D(), p.KillAfter.D()))
		case p.KillAfter > 0 && p.Replicas < 2:
			errs = append(errs, fmt.Errorf("killAfter: needs at least 2 replicas to take over, got %d", p.Replicas))
		}
	case KindEventToRunning:
		need("pods", p.Pods)
		need("repeats", p.Repeats)
		if len(p.Variants) == 0 {
			errs = append(errs, fmt.Errorf("variants: at least one of %s is required", strings.Join(variants, ", ")))
		}
		for i, v := range p.Variants {
			if !contains(variants, v) {
				errs = append(errs, fmt.Errorf("variants[%d]: want one of %s, got %q", i, strings.Join(variants, ", "), v))
			}
		}
		if contains(p.Variants, VariantAuto) && (p.MaxPendingSeconds < 1 || p.MaxPendingSeconds > 3600) {
			errs = append(errs, fmt.Errorf("maxPendingSeconds: auto needs 1..3600, got %d", p.MaxPendingSeconds))
		}
	}
	return errors.Join(errs...)
}

// List returns the scenario files (*.yaml) in dir, sorted.
func List(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
