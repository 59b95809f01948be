package poller

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"

	"github.com/tidalscale/tidal/internal/testenv"
)

// noopScaler returns a constant at once and records when it was called, so the benchmark can check from the
// outside that every object was polled on time.
type noopScaler struct {
	cfg    *scalers.TriggerConfig
	name   string
	calls  atomic.Int64
	last   atomic.Int64 // unix nanos of the last call
	maxGap atomic.Int64 // largest nanos between two calls
}

func (s *noopScaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.name, 5)}
}

func (s *noopScaler) Sample(context.Context) ([]scalers.Sample, bool, error) {
	now := time.Now().UnixNano()
	if prev := s.last.Swap(now); prev != 0 {
		gap := now - prev
		for {
			m := s.maxGap.Load()
			if gap <= m || s.maxGap.CompareAndSwap(m, gap) {
				break
			}
		}
	}
	s.calls.Add(1)
	return []scalers.Sample{{MetricName: s.name, Value: 1}}, true, nil
}

func (s *noopScaler) Close(context.Context) error { return nil }

type fleet struct {
	p       *Poller
	keys    []samples.Key
	metrics []string
	scalers []*noopScaler
}

// startFleet runs a Poller with n objects of one no-op trigger each, polled every interval.
func startFleet(b *testing.B, n int, interval time.Duration) *fleet {
	b.Helper()
	f := &fleet{scalers: make([]*noopScaler, 0, n)}
	reg := scalers.NewRegistry()
	reg.Register(func(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
		s := &noopScaler{cfg: cfg, name: cfg.MetricName("noop", cfg.ObjectName)}
		f.scalers = append(f.scalers, s) // Upserts run sequentially below
		return s, nil
	}, "noop")
	h := start(b, nil, Options{Registry: reg, Logger: zap.NewNop()})
	f.p = h.p
	for i := range n {
		s := samples.ObjectSpec{
			Key:              samples.Key{Kind: samples.KindScaledObject, Namespace: "bench", Name: fmt.Sprintf("obj-%05d", i)},
			PollingInterval:  interval,
			Triggers:         []scalers.TriggerConfig{{Type: "noop", Index: 0}},
			UseCachedMetrics: []bool{true},
			Generation:       1,
		}
		mustUpsert(b, h.p, s)
		f.keys = append(f.keys, s.Key)
		f.metrics = append(f.metrics, f.scalers[i].name)
	}
	testenv.Eventually(b, "every object sampled once", 30*time.Second, func() (bool, string) {
		for _, s := range f.scalers {
			if s.calls.Load() == 0 {
				return false, ""
			}
		}
		return true, ""
	})
	return f
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkPoll10kObjects polls 10,000 objects × 1 no-op trigger every second for 5 s and reports whether every
// poll ran on time: the scheduler's largest lag (start vs due), the largest gap between two samples of one
// object, polls that did not happen, and the heap the objects take.
func BenchmarkPoll10kObjects(b *testing.B) {
	const (
		objects  = 10_000
		interval = time.Second
		window   = 5 * time.Second
	)
	for range b.N {
		before := heapInuse()
		f := startFleet(b, objects, interval)
		after := heapInuse()

		// Measure a steady window after the jittered first polls.
		f.p.maxLag.Store(0)
		start := make([]int64, objects)
		for i, s := range f.scalers {
			s.maxGap.Store(0)
			start[i] = s.calls.Load()
		}
		lagBefore := lagHistogram(b, f.p)
		time.Sleep(window)

		var polls, missed, maxGap int64
		for i, s := range f.scalers {
			n := s.calls.Load() - start[i]
			polls += n
			if n < int64(window/interval)-1 {
				missed++
			}
			maxGap = max(maxGap, s.maxGap.Load())
		}
		lagAfter := lagHistogram(b, f.p)
		total := lagAfter.GetSampleCount() - lagBefore.GetSampleCount()
		late := total - (bucket(lagAfter, 0.1) - bucket(lagBefore, 0.1))
		b.ReportMetric(float64(time.Duration(f.p.maxLag.Load()))/1e6, "max-lag-ms")
		b.ReportMetric(float64(maxGap)/1e6, "max-gap-ms")
		b.ReportMetric(float64(polls)/window.Seconds(), "polls/s")
		b.ReportMetric(float64(late), "late>100ms")
		b.ReportMetric(float64(missed), "objects-missing-polls")
		b.ReportMetric(float64(after-before)/objects, "heap-B/object")
		b.ReportMetric(float64(after)/(1<<20), "heap-inuse-MB")
	}
}

func lagHistogram(b *testing.B, p *Poller) *dto.Histogram {
	var m dto.Metric
	if err := p.metrics.lag.Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram()
}

// bucket returns the cumulative count of observations <= le.
func bucket(h *dto.Histogram, le float64) uint64 {
	for _, bk := range h.GetBucket() {
		if bk.GetUpperBound() == le {
			return bk.GetCumulativeCount()
		}
	}
	return 0
}

// BenchmarkLookup reads the cache of a 10,000-object poller while it polls every second.
func BenchmarkLookup(b *testing.B) {
	f := startFleet(b, 10_000, time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(f.keys)
		if _, _, err := f.p.Lookup(f.keys[k], f.metrics[k]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLookupParallel is BenchmarkLookup from every P at once.
func BenchmarkLookupParallel(b *testing.B) {
	f := startFleet(b, 10_000, time.Second)
	b.ReportAllocs()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			k := i % len(f.keys)
			if _, _, err := f.p.Lookup(f.keys[k], f.metrics[k]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
