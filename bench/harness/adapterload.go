package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"

	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/scenario"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/metricsadapter/external"
	"github.com/tidalscale/tidal/scalers"
)

// adapterLoad creates scaledObjects ScaledObjects (each with its Deployment at zero, all on one Redis list) and
// issues external.metrics.k8s.io GETs through the cluster's aggregator, concurrency at a time, each for one
// ScaledObject picked at random — what the HPA controller does for every hpa-mode object. Each sample is one
// GET, timed from the request to the response on this client. The autoscaler must serve the metrics API
// (mode hpa: Tidal all-in-one with the adapter registered).
type adapterLoad struct{}

func (adapterLoad) measure(ctx context.Context, env *runEnv) (*result.Run, error) {
	p := env.params
	if env.autoscaler.Mode() != scenario.ModeHPA {
		return nil, fmt.Errorf("adapter-load: mode must be hpa (the metrics adapter serving external.metrics.k8s.io), got %q", env.autoscaler.Mode())
	}
	src, err := newRedisSource(ctx, env.opts.RedisAddress)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if _, err := src.Push(ctx, 7); err != nil {
		return nil, err
	}
	trig := src.Trigger(5)
	metric := scalers.SanitizeMetricName("s0-redis-" + src.list)
	cfg := rest.CopyConfig(env.opts.Cluster.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}

	created := time.Now()
	names := make([]string, p.ScaledObjects)
	err = parallel(ctx, 8, p.ScaledObjects, func(ctx context.Context, i int) error {
		names[i] = fmt.Sprintf("so-%05d", i)
		env.progress.Set("%s: creating ScaledObjects (%d)", env.autoscaler.Name(), p.ScaledObjects)
		w := scaledWorkload{Name: names[i], Mode: env.autoscaler.Mode(), Trigger: trig, MaxReplicas: 1,
			PollingInterval: p.PollingInterval.D(), Cooldown: p.Cooldown.D()}
		return w.create(ctx, env.opts.Cluster, env.tidal, env.namespace)
	})
	if err != nil {
		return nil, err
	}
	get := func(ctx context.Context, so string) error {
		raw, err := kube.Discovery().RESTClient().Get().
			AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces/"+env.namespace+"/"+metric).
			Param("labelSelector", external.LabelScaledObjectName+"="+so).DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("GET %s for %s: %w", metric, so, err)
		}
		var list v1beta1.ExternalMetricValueList
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("GET %s for %s: %w", metric, so, err)
		}
		if len(list.Items) != 1 || list.Items[0].Value.Value() != 7 {
			return fmt.Errorf("GET %s for %s: want one value 7, got %s", metric, so, raw)
		}
		return nil
	}
	// Every object's metric is served before measuring: the adapter has built every scaler and sampled it.
	loadCtx, cancel := context.WithTimeout(ctx, iterTimeout(p.Timeout.D())+time.Duration(p.ScaledObjects)*100*time.Millisecond)
	defer cancel()
	var ready int
	err = devcluster.WaitFor(loadCtx, 500*time.Millisecond, func() (bool, error) {
		for ready < len(names) && get(loadCtx, names[ready]) == nil {
			ready++
		}
		env.progress.Set("%s: adapter serves %d/%d ScaledObjects", env.autoscaler.Name(), ready, len(names))
		return ready == len(names), nil
	})
	if err != nil {
		return nil, fmt.Errorf("adapter served %d of %d ScaledObjects: %w", ready, len(names), err)
	}
	allServed := time.Since(created)

	total := p.Warmup + p.Requests
	lat := make([]time.Duration, total)
	var mu sync.Mutex
	failures := 0
	var firstFailure error
	begin := time.Now()
	var measuredStart time.Time
	err = parallel(ctx, p.Concurrency, total, func(ctx context.Context, i int) error {
		if i == p.Warmup {
			mu.Lock()
			measuredStart = time.Now()
			mu.Unlock()
		}
		so := names[rand.IntN(len(names))]
		t0 := time.Now()
		err := get(ctx, so)
		d := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		lat[i] = d
		if err != nil {
			lat[i] = -1
			if i >= p.Warmup {
				failures++
				if firstFailure == nil {
					firstFailure = err
				}
			}
		}
		if i%50 == 0 {
			env.progress.Set("%s: GET %d/%d", env.autoscaler.Name(), i+1, total)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(begin)
	if !measuredStart.IsZero() {
		elapsed = time.Since(measuredStart)
	}
	measured := make([]time.Duration, 0, p.Requests)
	for _, d := range lat[p.Warmup:] {
		if d >= 0 {
			measured = append(measured, d)
		}
	}
	var errs []string
	if firstFailure != nil {
		errs = append(errs, fmt.Sprintf("%d of %d GETs failed; the first: %v", failures, p.Requests, firstFailure))
	}
	return &result.Run{
		Errors:  errs,
		Metrics: []*result.Metric{result.NewMetric("external-metric-get", "GET sent (this client)", "response body read", measured)},
		Counters: map[string]float64{
			"scaledObjects": float64(p.ScaledObjects), "requests": float64(len(measured)), "failures": float64(failures),
			"requestsPerSecond":     float64(len(measured)) / elapsed.Seconds(),
			"secondsUntilAllServed": allServed.Seconds(),
		},
	}, nil
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns the first error.
func parallel(ctx context.Context, workers, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
