package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/scenario"
)

// burst pushes the load curve to an empty queue while simulated workers (each Running pod works
// itemsPerPodSecond) consume it, and follows the workload from 0 up and back to 0 after the cooldown.
//
// Per step: for every k from 1 to the peak, the time from the push that first made the queue need k replicas
// (queue > (k-1)·targetPerReplica, the length the source reported after that push) to the Deployment watch
// event showing spec.replicas ≥ k. k = 1 is "activation"; k ≥ 2 are "scale-out step" samples.
type burst struct{}

func (burst) measure(ctx context.Context, env *runEnv) (*result.Run, error) {
	p := env.params
	src, err := newSource(ctx, p.Source, env.opts.RedisAddress)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	w := scaledWorkload{Name: workerName, Mode: env.autoscaler.Mode(), Trigger: src.Trigger(p.TargetPerReplica),
		MaxReplicas: int32(p.MaxReplicas), PollingInterval: p.PollingInterval.D(), Cooldown: p.Cooldown.D()}
	if p.ScaleDownStabilization != nil {
		d := p.ScaleDownStabilization.D()
		w.ScaleDownStabilization = &d
	}
	obs, err := w.start(ctx, env)
	if err != nil {
		return nil, err
	}
	defer obs.stop()
	var activation, steps, toNeeded, backToZero []time.Duration
	var peak, drainS []float64
	missed, ahead := 0, 0
	var timeline []result.Point
	total := p.Warmup + p.Repeats
	for i := range total {
		warm := i < p.Warmup
		smp := startSampler(ctx, obs, src, 250*time.Millisecond)
		it, err := burstOnce(ctx, env, obs, src, fmt.Sprintf("burst %d/%d%s", i+1, total, map[bool]string{true: " (warm-up)", false: ""}[warm]))
		pts := smp.timeline()
		if err != nil {
			return nil, fmt.Errorf("burst %d: %w", i+1, err)
		}
		if warm {
			continue
		}
		activation = append(activation, it.activation)
		steps = append(steps, it.steps...)
		ahead += it.ahead
		if it.reachedNeeded {
			toNeeded = append(toNeeded, it.toNeeded)
		} else {
			missed++
		}
		backToZero = append(backToZero, it.backToZero)
		peak = append(peak, float64(it.peak))
		drainS = append(drainS, it.drained.Seconds())
		timeline = pts
	}
	from := src.Name() + " that first made the queue need k replicas"
	return &result.Run{
		Metrics: []*result.Metric{
			result.NewMetric("activation", from+" (k=1)", "Deployment watch: spec.replicas ≥ 1", activation),
			result.NewMetric("scale-out-step", from+" (k≥2)", "Deployment watch: spec.replicas ≥ k", steps),
			result.NewMetric("burst-to-needed", "first push of the burst", "Deployment watch: spec.replicas ≥ the most the queue needed, min(maxReplicas, ⌈peak queue / targetPerReplica⌉)", toNeeded),
			result.NewMetric("drained-to-zero", "queue empty (source)", "Deployment watch: spec.replicas = 0 and no Running pod", backToZero),
		},
		Counters: map[string]float64{"bursts": float64(len(activation)), "peakReplicasMean": mean(peak), "drainSecondsMean": mean(drainS),
			"burstsNeverReachingNeeded": float64(missed), "stepsScaledBeforeNeeded": float64(ahead)},
		Timeline: timeline,
	}, nil
}

// burstIteration is one burst's measurements.
type burstIteration struct {
	activation time.Duration   // queue needed 1 → replicas ≥ 1
	steps      []time.Duration // k ≥ 2: queue needed k → replicas ≥ k
	// toNeeded is first push → replicas ≥ the most the queue needed; reachedNeeded is false when they never got
	// there (the queue drained first).
	toNeeded      time.Duration
	reachedNeeded bool
	// ahead counts steps k whose replicas were there before the queue needed them (no latency sample).
	ahead      int
	peak       int32
	drained    time.Duration // first push → queue empty after the load ended
	backToZero time.Duration // queue empty → zero replicas, no Running pod
}

func burstOnce(ctx context.Context, env *runEnv, obs *observer, src Source, label string) (*burstIteration, error) {
	p := env.params
	var loadFor time.Duration
	for _, st := range p.Load {
		loadFor += st.For.D()
	}
	ctx, cancel := context.WithTimeout(ctx, loadFor+iterTimeout(p.Timeout.D()))
	defer cancel()
	if _, err := obs.waitFor(ctx, "zero replicas before the burst", func(s state) bool { return s.Replicas == 0 && s.Running == 0 }); err != nil {
		return nil, err
	}
	target := int64(p.TargetPerReplica)
	var mu sync.Mutex
	needed := map[int32]time.Time{} // k → time of the push that first made the queue need k replicas
	record := func(at time.Time, length int64) {
		k := int32(min((length+target-1)/target, int64(p.MaxReplicas)))
		mu.Lock()
		defer mu.Unlock()
		for j := int32(1); j <= k; j++ {
			if _, ok := needed[j]; !ok {
				needed[j] = at
			}
		}
	}

	start := time.Now()
	loadDone := make(chan error, 1)
	go func() { loadDone <- pushLoad(ctx, src, p.Load, record) }()
	workCtx, stopWork := context.WithCancel(ctx)
	workDone := make(chan error, 1)
	go func() { workDone <- work(workCtx, obs, src, p.ItemsPerPodSecond) }()
	defer func() { stopWork(); <-workDone }()

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	loadRunning := true
	var drainedAt time.Time
	for drainedAt.IsZero() {
		select {
		case err := <-loadDone:
			if err != nil {
				return nil, err
			}
			loadRunning = false
		case err := <-workDone:
			workDone <- err // for the deferred wait
			return nil, fmt.Errorf("workers: %w", err)
		case <-ctx.Done():
			return nil, fmt.Errorf("the queue never drained: %w", ctx.Err())
		case <-tick.C:
		}
		n, err := src.Len(ctx)
		if err != nil {
			return nil, err
		}
		st := obs.now()
		env.progress.Set("%s %s: %s  queue %d  replicas %d  running %d", env.autoscaler.Name(), p.Source, label, n, st.Replicas, st.Running)
		if !loadRunning && n == 0 {
			drainedAt = time.Now()
		}
	}
	zero, err := obs.waitFor(ctx, "zero replicas after the queue drained", func(s state) bool { return s.Replicas == 0 && s.Running == 0 })
	if err != nil {
		return nil, err
	}
	it := &burstIteration{drained: drainedAt.Sub(start), backToZero: max(zero.At.Sub(drainedAt), 0)}
	// The peak and the step times come from the watch history of this burst.
	mu.Lock()
	var mostNeeded int32
	for k := range needed {
		mostNeeded = max(mostNeeded, k)
	}
	mu.Unlock()
	for k := int32(1); ; k++ {
		s, ok := obs.firstAfter(start, func(s state) bool { return s.Replicas >= k })
		if !ok {
			break
		}
		it.peak = k
		if k == mostNeeded {
			it.toNeeded, it.reachedNeeded = s.At.Sub(start), true
		}
		mu.Lock()
		at, wasNeeded := needed[k]
		mu.Unlock()
		switch {
		case wasNeeded && s.At.After(at) && k == 1:
			it.activation = s.At.Sub(at)
		case wasNeeded && s.At.After(at):
			it.steps = append(it.steps, s.At.Sub(at))
		case wasNeeded:
			it.ahead++
		}
	}
	if it.peak == 0 || it.activation == 0 {
		return nil, fmt.Errorf("the workload never scaled up (peak %d replicas)", it.peak)
	}
	return it, nil
}

// pushLoad follows the load curve in 100ms ticks and reports each push's time (taken before the call) and the
// queue length the source reported after it.
func pushLoad(ctx context.Context, src Source, load []scenario.LoadStep, record func(time.Time, int64)) error {
	const tick = 100 * time.Millisecond
	for _, st := range load {
		end := time.Now().Add(st.For.D())
		var owed float64
		t := time.NewTicker(tick)
		for time.Now().Before(end) {
			owed += float64(st.Rate) * tick.Seconds()
			if n := int(owed); n > 0 {
				owed -= float64(n)
				at := time.Now()
				l, err := src.Push(ctx, n)
				if err != nil {
					t.Stop()
					return err
				}
				record(at, l)
			}
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		t.Stop()
	}
	return nil
}

// work consumes the queue as the Running pods would: each works perPodSecond items a second.
func work(ctx context.Context, obs *observer, src Source, perPodSecond int) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	var credit float64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		credit += float64(obs.now().Running*perPodSecond) * now.Sub(last).Seconds()
		last = now
		if n := int(credit); n > 0 {
			got, err := src.Pop(ctx, n)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			credit -= float64(n)
			if got < n {
				credit = 0 // an empty queue banks no work
			}
		}
	}
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
