package harness

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/bench/result"
)

// scaleFromZero measures activation: one item pushed to an empty queue → the Deployment's spec.replicas reaches
// 1 (watch) → a pod is Running (watch); then the queue is emptied and the workload goes back to zero (cooldown)
// before the next iteration. Warm-up iterations run first and are dropped.
type scaleFromZero struct{}

func (scaleFromZero) measure(ctx context.Context, env *runEnv) (*result.Run, error) {
	p := env.params
	src, err := newSource(ctx, p.Source, env.opts.RedisAddress)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if rs, ok := src.(*redisSource); ok {
		if err := rs.requirePush(ctx); err != nil {
			return nil, err
		}
	}
	w := scaledWorkload{Name: workerName, Mode: env.autoscaler.Mode(), Trigger: src.Trigger(1), MaxReplicas: 1,
		PollingInterval: p.PollingInterval.D(), Cooldown: p.Cooldown.D()}
	obs, err := w.start(ctx, env)
	if err != nil {
		return nil, err
	}
	defer obs.stop()
	var toReplica, toRunning []time.Duration
	var timeline []result.Point
	total := p.Warmup + p.Repeats
	for i := range total {
		warm := i < p.Warmup
		env.progress.Set("%s %s: activation %d/%d%s  p50 so far %s", env.autoscaler.Name(), p.Source, i+1, total,
			map[bool]string{true: " (warm-up)", false: ""}[warm], median(toReplica))
		smp := startSampler(ctx, obs, src, 100*time.Millisecond)
		rep, run, err := activateOnce(ctx, env, obs, src)
		pts := smp.timeline()
		if err != nil {
			return nil, fmt.Errorf("activation %d: %w", i+1, err)
		}
		if warm {
			continue
		}
		toReplica, toRunning, timeline = append(toReplica, rep), append(toRunning, run), pts
		if p.Interval > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(p.Interval.D()):
			}
		}
	}
	from := src.Name() + " (before the call)"
	return &result.Run{
		Metrics: []*result.Metric{
			result.NewMetric("event-to-replica", from, "Deployment watch: spec.replicas ≥ 1", toReplica),
			result.NewMetric("event-to-running", from, "Pod watch: phase Running", toRunning),
		},
		Counters: map[string]float64{"activations": float64(len(toReplica))},
		Timeline: timeline,
	}, nil
}

// activateOnce pushes one item to the empty queue, times replica and Running pod, then empties the queue and
// waits for zero replicas and no Running pod.
func activateOnce(ctx context.Context, env *runEnv, obs *observer, src Source) (toReplica, toRunning time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, iterTimeout(env.params.Timeout.D()))
	defer cancel()
	if _, err := obs.waitFor(ctx, "zero replicas before pushing", func(s state) bool { return s.Replicas == 0 && s.Running == 0 }); err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	if _, err := src.Push(ctx, 1); err != nil {
		return 0, 0, err
	}
	rep, err := obs.waitFor(ctx, "replicas ≥ 1 after the push", func(s state) bool { return s.Replicas >= 1 })
	if err != nil {
		return 0, 0, err
	}
	run, err := obs.waitFor(ctx, "a Running pod after the push", func(s state) bool { return s.Running >= 1 })
	if err != nil {
		return 0, 0, err
	}
	env.log.Debug("activation", zap.Duration("replica", rep.At.Sub(t0)), zap.Duration("running", run.At.Sub(t0)))
	if err := src.Drain(ctx); err != nil {
		return 0, 0, err
	}
	if _, err := obs.waitFor(ctx, "zero replicas after the queue emptied", func(s state) bool { return s.Replicas == 0 && s.Running == 0 }); err != nil {
		return 0, 0, err
	}
	return rep.At.Sub(t0), run.At.Sub(t0), nil
}

func iterTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return 2 * time.Minute
	}
	return d
}

func median(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	m := result.NewMetric("", "", "", d)
	return fmt.Sprintf("%.0fms", m.P50)
}
