package poller

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"
)

// work is one pool worker: it samples the triggers the scheduler hands it until ctx is done.
func (p *Poller) work(ctx context.Context, jobs <-chan *trigger) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-jobs:
			p.sample(ctx, t)
		}
	}
}

// sample takes one sample of t, stores it, publishes it and reschedules t.
func (p *Poller) sample(ctx context.Context, t *trigger) {
	select {
	case t.run <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-t.run }()

	sctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	start := time.Now()
	seq, due, pushed, ok := p.sched.begin(t, cancel)
	if !ok {
		return
	}
	lag := max(start.Sub(due), 0)
	p.metrics.lag.Observe(lag.Seconds())
	p.noteLag(lag)

	values, active, err := callSample(sctx, t)
	t.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		t.errSamples.Inc()
	} else {
		t.okSamples.Inc()
	}
	st, changed := p.record(t, values, active, err, pushed)
	p.observeTrigger(t, &st, err)
	p.hub.Publish(samples.Update{Key: t.key, Trigger: st, ActivityChanged: changed})
	p.sched.finish(t, seq, time.Now())
}

// callSample calls the scaler, turning a panic into this trigger's error.
func callSample(ctx context.Context, t *trigger) (values []scalers.Sample, active bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			values, active, err = nil, false, fmt.Errorf("%s: sample panicked: %v", t.cfg.ID(), r)
		}
	}()
	return t.scaler.Sample(ctx)
}

// record stores the outcome of a sample as t's new state and reports whether activity changed.
func (p *Poller) record(t *trigger, values []scalers.Sample, active bool, err error, pushed bool) (samples.TriggerState, bool) {
	prev := t.state.Load()
	next := *prev
	next.Pushed = pushed
	next.AttemptedAt = p.now()
	changed := false
	if err != nil {
		next.Err = redactErr(&t.cfg, fmt.Errorf("%s %s: %w", t.key.Kind, t.key, err))
		next.ConsecutiveFailures++
		if next.ConsecutiveFailures == 1 {
			t.log.Warn("sample failed", zap.String("error", next.Err.Error()))
		} else {
			t.log.Debug("sample failed again", zap.String("error", next.Err.Error()),
				zap.Int("consecutiveFailures", next.ConsecutiveFailures))
		}
	} else {
		if prev.ConsecutiveFailures > 0 {
			t.log.Info("sample recovered", zap.Int("failuresBefore", prev.ConsecutiveFailures))
		}
		// Own the slice: a scaler may reuse its buffer on the next call.
		next.Samples = append([]scalers.Sample(nil), values...)
		next.Active = active
		next.SampledAt = next.AttemptedAt
		next.Err = nil
		next.ConsecutiveFailures = 0
		changed = active != prev.Active
	}
	t.state.Store(&next)
	return next, changed
}

// observeTrigger updates t's per-trigger series after a sample: the error count, or the values and activity.
func (p *Poller) observeTrigger(t *trigger, st *samples.TriggerState, err error) {
	if err != nil {
		t.errors.Inc()
		return
	}
	active := 0.0
	if st.Active {
		active = 1
	}
	t.active.Set(active)
	for _, s := range st.Samples {
		labels := prometheus.Labels{"metric": s.MetricName}
		maps.Copy(labels, t.labels)
		p.metrics.scalerValue.With(labels).Set(s.Value)
	}
}

func (p *Poller) noteLag(lag time.Duration) {
	for {
		cur := p.maxLag.Load()
		if int64(lag) <= cur || p.maxLag.CompareAndSwap(cur, int64(lag)) {
			return
		}
	}
}
