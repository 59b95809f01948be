package poller

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"
)

// object is one generation of a samples.ObjectSpec with its built triggers. It is immutable once installed; a new
// generation replaces it whole.
type object struct {
	key       samples.Key
	gen       int64
	triggers  []*trigger
	specs     []autoscalingv2.MetricSpec
	buildErrs []error
}

// triggerFor finds the trigger serving metricName. Objects have a handful of triggers, so a scan beats a map.
func (o *object) triggerFor(metricName string) *trigger {
	for _, t := range o.triggers {
		for _, n := range t.metricNames {
			if n == metricName {
				return t
			}
		}
	}
	return nil
}

// trigger is one built trigger of an object: its scaler, its schedule and its cached state.
type trigger struct {
	key         samples.Key
	cfg         scalers.TriggerConfig // kept for Redact and ID
	scaler      scalers.Scaler        // nil when the build failed
	push        scalers.PushScaler    // non-nil when scaler can push
	resource    bool                  // a ResourceScaler: nothing to sample
	metricNames []string
	interval    time.Duration // effective polling interval (see the package doc on useCachedMetrics)
	timeout     time.Duration
	staleAfter  time.Duration
	log         *zap.Logger

	okSamples, errSamples prometheus.Counter
	latency               prometheus.Observer
	pushWakeups           prometheus.Counter
	watchFailures         prometheus.Counter
	// labels are the trigger's per-trigger series labels (triggerLabels); active and errors are curried.
	labels prometheus.Labels
	active prometheus.Gauge
	errors prometheus.Counter

	// state is replaced whole after every sample, so readers never lock.
	state atomic.Pointer[samples.TriggerState]
	// run is a one-slot semaphore held while the scaler is in use (a sample, or Close).
	run chan struct{}

	// Scheduler fields, guarded by scheduler.mu.
	due        time.Time
	heapIndex  int
	busy       bool // queued for a worker or running
	running    bool
	again      bool // sample once more as soon as the current sample ends
	pushReq    bool // the next sample answers a push signal
	removed    bool
	started    uint64 // samples started
	finished   uint64 // sequence number of the last finished sample
	finishedCh chan struct{}
	cancelRun  context.CancelFunc

	// Watch fields, guarded by Poller.mu.
	watchCancel context.CancelFunc
	watchDone   chan struct{}
}

// sampled reports whether the scheduler polls this trigger.
func (t *trigger) sampled() bool { return t.scaler != nil && !t.resource }

func validateSpec(spec *samples.ObjectSpec) error {
	k := spec.Key
	prefix := fmt.Sprintf("poller: %s %s", k.Kind, k)
	switch {
	case k.Kind != samples.KindScaledObject && k.Kind != samples.KindScaledJob:
		return fmt.Errorf("%s: key.kind: want %s or %s, got %q", prefix, samples.KindScaledObject, samples.KindScaledJob, k.Kind)
	case k.Namespace == "":
		return fmt.Errorf("%s: key.namespace: must not be empty", prefix)
	case k.Name == "":
		return fmt.Errorf("%s: key.name: must not be empty", prefix)
	case spec.PollingInterval < 0:
		return fmt.Errorf("%s: pollingInterval: want >= 0, got %s", prefix, spec.PollingInterval)
	case len(spec.UseCachedMetrics) > len(spec.Triggers):
		return fmt.Errorf("%s: useCachedMetrics: %d entries for %d triggers", prefix, len(spec.UseCachedMetrics), len(spec.Triggers))
	}
	seen := make(map[int]bool, len(spec.Triggers))
	for i, tc := range spec.Triggers {
		if tc.Index < 0 {
			return fmt.Errorf("%s: triggers[%d].index: want >= 0, got %d", prefix, i, tc.Index)
		}
		if seen[tc.Index] {
			return fmt.Errorf("%s: triggers[%d].index: %d used twice", prefix, i, tc.Index)
		}
		seen[tc.Index] = true
	}
	if spec.PollingInterval == 0 {
		spec.PollingInterval = tidalv1alpha1.PollingIntervalOrDefault(nil)
	}
	return nil
}

// build constructs every trigger of spec. Build failures are kept per trigger; the object is never nil.
func (p *Poller) build(ctx context.Context, spec samples.ObjectSpec) *object {
	obj := &object{key: spec.Key, gen: spec.Generation, triggers: make([]*trigger, 0, len(spec.Triggers))}
	objField := zap.String("scaledObject", spec.Key.String())
	if spec.Key.Kind == samples.KindScaledJob {
		objField = zap.String("scaledJob", spec.Key.String())
	}
	usedNames := map[string]int{}
	for _, tc := range spec.Triggers {
		t := p.newTrigger(spec, tc, objField)
		obj.triggers = append(obj.triggers, t)
		err := p.buildScaler(ctx, t)
		if err == nil {
			err = claimMetricNames(t, usedNames)
		}
		if err != nil {
			err = redactErr(&t.cfg, fmt.Errorf("%s %s: %w", spec.Key.Kind, spec.Key, err))
			t.log.Warn("building scaler failed", zap.String("error", err.Error()))
			obj.buildErrs = append(obj.buildErrs, err)
			if t.scaler != nil {
				closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_ = t.scaler.Close(closeCtx)
				cancel()
				t.scaler, t.push = nil, nil
			}
			t.metricNames = nil
			st := *t.state.Load()
			st.MetricNames, st.Err = nil, err
			t.state.Store(&st)
			continue
		}
		for _, s := range t.scaler.MetricSpecs() {
			obj.specs = append(obj.specs, *s.DeepCopy())
		}
	}
	return obj
}

func (p *Poller) newTrigger(spec samples.ObjectSpec, tc scalers.TriggerConfig, objField zap.Field) *trigger {
	if tc.PollingInterval == 0 {
		tc.PollingInterval = spec.PollingInterval
	}
	if tc.ObjectNamespace == "" && tc.ObjectName == "" {
		tc.ObjectNamespace, tc.ObjectName = spec.Key.Namespace, spec.Key.Name
	}
	if tc.ObjectKind == "" {
		tc.ObjectKind = spec.Key.Kind
	}
	name := tc.Name
	if name == "" {
		name = "#" + strconv.Itoa(tc.Index)
	}
	log := p.log.With(objField, zap.String("trigger", name), zap.String("type", tc.Type))
	if tc.Logger == nil {
		tc.Logger = log
	}
	interval := spec.PollingInterval // the user's pollingInterval, whatever useCachedMetrics says (package doc)
	t := &trigger{
		key:           spec.Key,
		cfg:           tc,
		interval:      interval,
		timeout:       max(min(p.timeout, interval), minSampleTimeout),
		staleAfter:    p.staleAfter(interval),
		log:           log,
		run:           make(chan struct{}, 1),
		heapIndex:     -1,
		okSamples:     p.metrics.samples.WithLabelValues(tc.Type, "success"),
		errSamples:    p.metrics.samples.WithLabelValues(tc.Type, "error"),
		latency:       p.metrics.latency.WithLabelValues(tc.Type),
		pushWakeups:   p.metrics.pushWakeups.WithLabelValues(tc.Type),
		watchFailures: p.metrics.watchFailures.WithLabelValues(tc.Type),
	}
	t.labels = prometheus.Labels{"namespace": spec.Key.Namespace, "kind": spec.Key.Kind, "scaledObject": spec.Key.Name,
		"trigger": tidalv1alpha1.ScaleTriggers{Name: tc.Name, Type: tc.Type}.NameAt(tc.Index), "type": tc.Type}
	t.active = p.metrics.scalerActive.With(t.labels)
	t.errors = p.metrics.scalerErrors.With(t.labels)
	t.state.Store(&samples.TriggerState{Index: tc.Index, Generation: spec.Generation, Name: tc.Name, Type: tc.Type})
	return t
}

// buildScaler asks the registry for the trigger's scaler; a panicking builder is an error, not a crash.
func (p *Poller) buildScaler(ctx context.Context, t *trigger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: building scaler panicked: %v", t.cfg.ID(), r)
		}
	}()
	sc, err := p.reg.New(ctx, t.cfg)
	if err != nil {
		return err
	}
	if sc == nil {
		return fmt.Errorf("%s: builder returned no scaler", t.cfg.ID())
	}
	t.scaler = sc
	if ps, ok := sc.(scalers.PushScaler); ok {
		t.push = ps
	}
	if rs, ok := sc.(scalers.ResourceScaler); ok && rs.ResourceMetric() {
		t.resource = true
	}
	for _, s := range sc.MetricSpecs() {
		if s.External != nil {
			t.metricNames = append(t.metricNames, s.External.Metric.Name)
		}
	}
	return nil
}

// claimMetricNames rejects a trigger whose external metric names another trigger of the object already serves.
func claimMetricNames(t *trigger, used map[string]int) error {
	for _, n := range t.metricNames {
		if other, dup := used[n]; dup {
			return fmt.Errorf("%s: metric name %q already served by trigger #%d", t.cfg.ID(), n, other)
		}
	}
	for _, n := range t.metricNames {
		used[n] = t.cfg.Index
	}
	st := *t.state.Load()
	st.MetricNames = t.metricNames
	t.state.Store(&st)
	return nil
}

// redactedError hides the trigger's secrets from Error() while keeping the chain for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err, or a copy whose message has cfg's secrets replaced when it contains any.
func redactErr(cfg *scalers.TriggerConfig, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r := cfg.Redact(msg); r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}
