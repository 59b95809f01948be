package poller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"
)

func (p *Poller) object(key samples.Key) *object {
	if v, ok := p.objects.Load(key); ok {
		return v.(*object)
	}
	return nil
}

// Lookup reads the cached sample of one external metric; it never calls a scaler. It returns the sample, the
// state of the trigger serving it and:
//   - ErrNotFound for an unknown object or metric, or a trigger with no successful sample yet;
//   - ErrSampleFailed (wrapping the cause) when the trigger's latest sample failed, plus ErrStale when the last
//     good sample is also stale — the last good sample is returned for information only;
//   - ErrStale when the sample is older than StaleAfter of the trigger's effective interval;
//   - nil for a fresh sample.
func (p *Poller) Lookup(key samples.Key, metricName string) (scalers.Sample, samples.TriggerState, error) {
	obj := p.object(key)
	if obj == nil {
		return scalers.Sample{}, samples.TriggerState{}, fmt.Errorf("%s %s: %w", key.Kind, key, ErrNotFound)
	}
	t := obj.triggerFor(metricName)
	if t == nil {
		return scalers.Sample{}, samples.TriggerState{}, fmt.Errorf("%s %s: metric %q: %w", key.Kind, key, metricName, ErrNotFound)
	}
	st := *t.state.Load()
	stale := ""
	if !st.SampledAt.IsZero() {
		age := p.now().Sub(st.SampledAt)
		p.metrics.cacheAge.Observe(max(age.Seconds(), 0))
		if age > t.staleAfter {
			stale = "older than " + t.staleAfter.String()
		}
	}
	sample, err := Evaluate(key, metricName, st, stale)
	return sample, st, err
}

// Evaluate is Lookup's answer for one trigger's state: the sample of metricName and Lookup's errors. stale, when
// not empty, says why the last sample may no longer be used (Lookup: "older than <staleAfter>"; a peer's copy of
// the state: the peer is unreachable).
func Evaluate(key samples.Key, metricName string, st samples.TriggerState, stale string) (scalers.Sample, error) {
	var sample scalers.Sample
	found := false
	for _, s := range st.Samples {
		if s.MetricName == metricName {
			sample, found = s, true
			break
		}
	}
	switch {
	// st.Err already names the object and trigger.
	case st.Err != nil && stale != "":
		return sample, fmt.Errorf("metric %q: %w, %w: %w", metricName, ErrSampleFailed, ErrStale, st.Err)
	case st.Err != nil:
		return sample, fmt.Errorf("metric %q: %w: %w", metricName, ErrSampleFailed, st.Err)
	case st.SampledAt.IsZero():
		return sample, fmt.Errorf("%s %s: metric %q: no sample yet: %w", key.Kind, key, metricName, ErrNotFound)
	case !found:
		return sample, fmt.Errorf("%s %s: metric %q: missing from the trigger's last sample: %w", key.Kind, key, metricName, ErrNotFound)
	case stale != "":
		return sample, fmt.Errorf("%s %s: metric %q: sampled at %s, %s: %w",
			key.Kind, key, metricName, st.SampledAt.UTC().Format("15:04:05.000"), stale, ErrStale)
	}
	return sample, nil
}

// Snapshot returns the current state of every object, sorted by kind, namespace and name: what a reconnecting
// stream client needs. Subscribe first, then Snapshot: an update published in between may repeat state the
// snapshot already holds, but none is missed.
func (p *Poller) Snapshot() []samples.ObjectState {
	var out []samples.ObjectState
	p.objects.Range(func(_, v any) bool {
		out = append(out, v.(*object).state())
		return true
	})
	slices.SortFunc(out, func(a, b samples.ObjectState) int {
		return cmp.Or(cmp.Compare(a.Key.Kind, b.Key.Kind), cmp.Compare(a.Key.Namespace, b.Key.Namespace),
			cmp.Compare(a.Key.Name, b.Key.Name))
	})
	return out
}

func (o *object) state() samples.ObjectState {
	s := samples.ObjectState{Key: o.key, Generation: o.gen, Triggers: make([]samples.TriggerState, len(o.triggers))}
	for i, t := range o.triggers {
		s.Triggers[i] = *t.state.Load()
	}
	return s
}

// State returns the current state of one object.
func (p *Poller) State(key samples.Key) (samples.ObjectState, error) {
	obj := p.object(key)
	if obj == nil {
		return samples.ObjectState{}, fmt.Errorf("%s %s: %w", key.Kind, key, ErrNotFound)
	}
	return obj.state(), nil
}

// MetricSpecs returns the metric specs of every built trigger of an object, in trigger order (deep copies); nil
// for an unknown object.
func (p *Poller) MetricSpecs(key samples.Key) []autoscalingv2.MetricSpec {
	obj := p.object(key)
	if obj == nil || len(obj.specs) == 0 {
		return nil
	}
	out := make([]autoscalingv2.MetricSpec, len(obj.specs))
	for i := range obj.specs {
		obj.specs[i].DeepCopyInto(&out[i])
	}
	return out
}

// SampleNow samples every trigger of an object as soon as a worker is free and waits until each has a sample
// taken after the call. Calls coalesce: a sample already queued answers them, and a running one is followed by
// exactly one more. It returns ErrNotFound for an unknown object, ctx's error if ctx ends first (it needs Run to
// be running to return otherwise), and the Err of every trigger that failed, joined.
func (p *Poller) SampleNow(ctx context.Context, key samples.Key) error {
	// An Upsert that replaces the object while we wait removes the triggers we wait on; retry on the new ones.
	for range 3 {
		obj := p.object(key)
		if obj == nil {
			return fmt.Errorf("%s %s: %w", key.Kind, key, ErrNotFound)
		}
		err := p.sampleNow(ctx, obj)
		if errors.Is(err, errRemoved) {
			continue
		}
		return err
	}
	return fmt.Errorf("%s %s: replaced repeatedly while sampling: %w", key.Kind, key, ErrNotFound)
}

func (p *Poller) sampleNow(ctx context.Context, obj *object) error {
	type pending struct {
		t      *trigger
		target uint64
	}
	var waits []pending
	for _, t := range obj.triggers {
		if !t.sampled() {
			continue
		}
		target, ok := p.sched.kick(t, false)
		if !ok {
			return errRemoved
		}
		waits = append(waits, pending{t, target})
	}
	for _, w := range waits {
		if err := p.sched.wait(ctx, w.t, w.target); err != nil {
			if errors.Is(err, errRemoved) {
				return err
			}
			return fmt.Errorf("%s %s: waiting for a sample: %w", obj.key.Kind, obj.key, err)
		}
	}
	var errs []error
	for _, t := range obj.triggers {
		if err := t.state.Load().Err; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
