package poller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"

	"github.com/tidalscale/tidal/internal/testenv"
)

func TestPollsAtInterval(t *testing.T) {
	src := newSource()
	src.delay = 2 * time.Millisecond
	h := start(t, src, Options{})
	const interval = 50 * time.Millisecond

	begin := time.Now()
	mustUpsert(t, h.p, spec("polled", 1, interval, "test", "a"))
	testenv.Eventually(t, "20 samples", 30*time.Second, func() (bool, string) { return src.calls.Load() >= 20, "" })
	elapsed := time.Since(begin)
	calls := src.calls.Load()

	// Fixed-rate polling never samples more often than the interval: at most one sample per elapsed interval
	// plus the first.
	if limit := int64(elapsed/interval) + 2; calls > limit {
		t.Errorf("%d samples in %s at a %s interval: more than %d", calls, elapsed, interval, limit)
	}
	if m := src.maxInFlight.Load(); m != 1 {
		t.Errorf("max samples in flight = %d, want 1", m)
	}
	t.Logf("%d samples in %s (interval %s)", calls, elapsed, interval)

	_, st, err := h.p.Lookup(samples.Key{Kind: samples.KindScaledObject, Namespace: "ns", Name: "polled"}, metricName(0, "a"))
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if st.SampledAt.IsZero() || st.Err != nil || st.ConsecutiveFailures != 0 {
		t.Errorf("state after polling = %+v", st)
	}
}

func TestNoDoubleInFlight(t *testing.T) {
	src := newSource()
	src.delay = 3 * time.Millisecond
	h := start(t, src, Options{Workers: 8})
	s := spec("hammered", 1, 10*time.Millisecond, "testpush", "a")
	mustUpsert(t, h.p, s)

	// Polling, push signals and SampleNow all race for the same trigger; it must never run twice at once.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sampleNowErrs atomic.Int32
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := h.p.SampleNow(ctx, s.Key); err != nil && ctx.Err() == nil {
					sampleNowErrs.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			src.signalPush()
			time.Sleep(time.Millisecond)
		}
	})
	testenv.Eventually(t, "200 samples", 30*time.Second, func() (bool, string) { return src.calls.Load() >= 200, "" })
	cancel()
	wg.Wait()

	if m := src.maxInFlight.Load(); m != 1 {
		t.Errorf("max samples in flight = %d, want 1", m)
	}
	if n := sampleNowErrs.Load(); n != 0 {
		t.Errorf("SampleNow failed %d times", n)
	}
}

func TestUpsertGenerations(t *testing.T) {
	src := newSource()
	src.value.Store(3)
	h := start(t, src, Options{})
	ctx := context.Background()
	s := spec("gen", 1, 20*time.Millisecond, "test", "a")
	key := s.Key

	mustUpsert(t, h.p, s)
	testenv.Eventually(t, "first sample", 30*time.Second, func() (bool, string) { return src.calls.Load() >= 1, "" })

	t.Run("same generation is a no-op", func(t *testing.T) {
		s2 := s
		s2.Triggers = append([]scalers.TriggerConfig(nil), s.Triggers...)
		s2.Triggers[0].Metadata = map[string]string{"name": "changed"}
		mustUpsert(t, h.p, s2)
		if b, c := src.built.Load(), src.closed.Load(); b != 1 || c != 0 {
			t.Errorf("built=%d closed=%d after same-generation Upsert, want 1 and 0", b, c)
		}
		if _, _, err := h.p.Lookup(key, metricName(0, "changed")); !errors.Is(err, ErrNotFound) {
			t.Errorf("metric of the ignored spec: err=%v, want ErrNotFound", err)
		}
	})

	t.Run("new generation rebuilds and closes the old scaler", func(t *testing.T) {
		s3 := spec("gen", 2, 20*time.Millisecond, "test", "b")
		mustUpsert(t, h.p, s3)
		if b, c := src.built.Load(), src.closed.Load(); b != 2 || c != 1 {
			t.Errorf("built=%d closed=%d after new generation, want 2 and 1", b, c)
		}
		src.mu.Lock()
		first, second := src.scalers[0], src.scalers[1]
		src.mu.Unlock()
		if !first.closed.Load() || second.closed.Load() {
			t.Errorf("old closed=%v new closed=%v, want true false", first.closed.Load(), second.closed.Load())
		}
		testenv.Eventually(t, "sample of the new generation", 30*time.Second, func() (bool, string) {
			_, _, err := h.p.Lookup(key, metricName(0, "b"))
			return err == nil, ""
		})
		if _, _, err := h.p.Lookup(key, metricName(0, "a")); !errors.Is(err, ErrNotFound) {
			t.Errorf("metric of the old generation: err=%v, want ErrNotFound", err)
		}
		st, err := h.p.State(key)
		if err != nil || st.Generation != 2 {
			t.Errorf("State = %+v, %v; want generation 2", st, err)
		}
		specs := h.p.MetricSpecs(key)
		if len(specs) != 1 || specs[0].External.Metric.Name != metricName(0, "b") {
			t.Errorf("MetricSpecs = %+v", specs)
		}
	})

	t.Run("delete closes scalers", func(t *testing.T) {
		h.p.Delete(ctx, key)
		if c := src.closed.Load(); c != 2 {
			t.Errorf("closed=%d after Delete, want 2", c)
		}
		if _, _, err := h.p.Lookup(key, metricName(0, "b")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup after Delete: err=%v, want ErrNotFound", err)
		}
		if specs := h.p.MetricSpecs(key); specs != nil {
			t.Errorf("MetricSpecs after Delete = %v", specs)
		}
		if err := h.p.SampleNow(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("SampleNow after Delete: err=%v, want ErrNotFound", err)
		}
		h.p.Delete(ctx, key) // unknown key: nothing happens
	})

	if n := src.afterClose.Load(); n != 0 {
		t.Errorf("%d calls on closed scalers", n)
	}
	if got := testutil.ToFloat64(h.p.metrics.objects); got != 0 {
		t.Errorf("objects gauge = %v, want 0", got)
	}
}

func TestUpsertValidation(t *testing.T) {
	src := newSource()
	p, err := New(Options{Registry: newTestRegistry(src)})
	if err != nil {
		t.Fatal(err)
	}
	good := spec("valid", 1, time.Second, "test", "a", "b")
	cases := []struct {
		name   string
		mutate func(*samples.ObjectSpec)
		field  string
	}{
		{"bad kind", func(s *samples.ObjectSpec) { s.Key.Kind = "Deployment" }, "key.kind"},
		{"empty namespace", func(s *samples.ObjectSpec) { s.Key.Namespace = "" }, "key.namespace"},
		{"empty name", func(s *samples.ObjectSpec) { s.Key.Name = "" }, "key.name"},
		{"negative interval", func(s *samples.ObjectSpec) { s.PollingInterval = -time.Second }, "pollingInterval"},
		{"too many useCachedMetrics", func(s *samples.ObjectSpec) { s.UseCachedMetrics = []bool{true, true, true} }, "useCachedMetrics"},
		{"duplicate index", func(s *samples.ObjectSpec) { s.Triggers[1].Index = 0 }, "triggers[1].index"},
		{"negative index", func(s *samples.ObjectSpec) { s.Triggers[0].Index = -1 }, "triggers[0].index"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			s.Triggers = append([]scalers.TriggerConfig(nil), good.Triggers...)
			tc.mutate(&s)
			errs := p.Upsert(context.Background(), s)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.field) {
				t.Fatalf("errs = %v, want one naming %q", errs, tc.field)
			}
			if len(p.Snapshot()) != 0 {
				t.Errorf("invalid spec was installed")
			}
		})
	}
	if src.built.Load() != 0 {
		t.Errorf("scalers built for invalid specs: %d", src.built.Load())
	}

	t.Run("bad options", func(t *testing.T) {
		if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "registry") {
			t.Errorf("New without registry: %v", err)
		}
		if _, err := New(Options{Registry: newTestRegistry(src), Workers: -1}); err == nil || !strings.Contains(err.Error(), "workers") {
			t.Errorf("New with negative workers: %v", err)
		}
	})
}

func TestBuildErrorsAreKeptPerTrigger(t *testing.T) {
	src := newSource()
	src.value.Store(9)
	h := start(t, src, Options{})
	s := spec("mixed", 1, 20*time.Millisecond, "test", "good")
	s.Triggers = append(s.Triggers,
		scalers.TriggerConfig{Type: "nope", Index: 1},
		scalers.TriggerConfig{Type: "broken", Name: "bad", Index: 2, Metadata: map[string]string{"address": "::"},
			AuthParams: map[string]string{"password": "::"}},
		scalers.TriggerConfig{Type: "test", Name: "dup", Index: 3, Metadata: map[string]string{}},
	)
	s.UseCachedMetrics = nil

	errs := h.p.Upsert(context.Background(), s)
	if len(errs) != 3 {
		t.Fatalf("Upsert errors = %v, want 3", errs)
	}
	if !errors.Is(errs[0], scalers.ErrUnknownType) {
		t.Errorf("unknown type error = %v", errs[0])
	}
	for i, want := range []string{"broken trigger \"bad\": address", "test trigger \"dup\": name"} {
		if !strings.Contains(errs[i+1].Error(), want) || !strings.Contains(errs[i+1].Error(), "ns/mixed") {
			t.Errorf("error %d = %q, want it to contain %q and the object", i+1, errs[i+1], want)
		}
	}
	// Same generation again: the same errors, nothing rebuilt.
	if again := h.p.Upsert(context.Background(), s); len(again) != 3 || src.built.Load() != 1 {
		t.Errorf("same-generation Upsert returned %v, built %d", again, src.built.Load())
	}

	if err := h.p.SampleNow(context.Background(), s.Key); err == nil {
		t.Errorf("SampleNow returned nil, want the build errors")
	}
	st, err := h.p.State(s.Key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Triggers[0].Err != nil || st.Triggers[0].SampledAt.IsZero() {
		t.Errorf("good trigger state = %+v", st.Triggers[0])
	}
	for i := 1; i < 4; i++ {
		if st.Triggers[i].Err == nil || st.Triggers[i].Err.Error() != errs[i-1].Error() {
			t.Errorf("trigger %d Err = %v, want %v", i, st.Triggers[i].Err, errs[i-1])
		}
	}
	if _, _, err := h.p.Lookup(s.Key, metricName(0, "good")); err != nil {
		t.Errorf("good trigger Lookup: %v", err)
	}
}

// TestPollingIntervalHonoured: every trigger is polled at the object's pollingInterval, whatever
// useCachedMetrics says (Tidal used to cap uncached triggers at 15s, 30x KEDA's load on an idle source).
func TestPollingIntervalHonoured(t *testing.T) {
	t.Run("applied per trigger with timeout and staleness", func(t *testing.T) {
		src := newSource()
		p, err := New(Options{Registry: newTestRegistry(src), SampleTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s := spec("flags", 1, 0, "test", "uncached", "cached")
		s.UseCachedMetrics = []bool{false} // second trigger missing: false too
		mustUpsert(t, p, s)
		obj := p.object(s.Key)
		for i, want := range []time.Duration{tidalv1alpha1.PollingIntervalOrDefault(nil), tidalv1alpha1.PollingIntervalOrDefault(nil)} {
			tr := obj.triggers[i]
			if tr.interval != want || tr.timeout != want || tr.staleAfter != 90*time.Second {
				t.Errorf("trigger %d: interval %s timeout %s staleAfter %s", i, tr.interval, tr.timeout, tr.staleAfter)
			}
		}
		s.Generation = 2
		s.UseCachedMetrics = []bool{false, true}
		mustUpsert(t, p, s)
		tr := p.object(s.Key).triggers[1]
		if tr.interval != tidalv1alpha1.PollingIntervalOrDefault(nil) || tr.staleAfter != 90*time.Second {
			t.Errorf("cached trigger: interval %s staleAfter %s, want 30s and 90s", tr.interval, tr.staleAfter)
		}
	})
}

func TestStale(t *testing.T) {
	src := newSource()
	src.value.Store(4)
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	h := start(t, src, Options{Now: now})
	s := spec("stale", 1, time.Minute, "test", "a")
	mustUpsert(t, h.p, s)
	ctx := context.Background()
	if err := h.p.SampleNow(ctx, s.Key); err != nil {
		t.Fatalf("SampleNow: %v", err)
	}
	sample, st, err := h.p.Lookup(s.Key, metricName(0, "a"))
	if err != nil || sample.Value != 4 || !st.Active {
		t.Fatalf("fresh Lookup = %v %+v %v", sample, st, err)
	}

	offset.Store(int64(DefaultStaleAfter(time.Minute) + time.Second))
	sample, _, err = h.p.Lookup(s.Key, metricName(0, "a"))
	if !errors.Is(err, ErrStale) {
		t.Fatalf("Lookup past StaleAfter: err=%v, want ErrStale", err)
	}
	if sample.Value != 4 {
		t.Errorf("stale sample returned for information = %v, want 4", sample.Value)
	}

	// A failing sample on top of a stale one reports both.
	src.fail.Store(true)
	_ = h.p.SampleNow(ctx, s.Key)
	if _, _, err := h.p.Lookup(s.Key, metricName(0, "a")); !errors.Is(err, ErrStale) || !errors.Is(err, ErrSampleFailed) {
		t.Errorf("failed and stale: err=%v", err)
	}
	src.fail.Store(false)
	if err := h.p.SampleNow(ctx, s.Key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.p.Lookup(s.Key, metricName(0, "a")); err != nil {
		t.Errorf("Lookup after a fresh sample: %v", err)
	}

	t.Run("custom StaleAfter", func(t *testing.T) {
		h2 := start(t, newSource(), Options{Now: now, StaleAfter: func(time.Duration) time.Duration { return time.Hour }})
		mustUpsert(t, h2.p, s)
		if err := h2.p.SampleNow(ctx, s.Key); err != nil {
			t.Fatal(err)
		}
		offset.Add(int64(59 * time.Minute))
		if _, _, err := h2.p.Lookup(s.Key, metricName(0, "a")); err != nil {
			t.Errorf("59 minutes old with StaleAfter 1h: %v", err)
		}
		offset.Add(int64(2 * time.Minute))
		if _, _, err := h2.p.Lookup(s.Key, metricName(0, "a")); !errors.Is(err, ErrStale) {
			t.Errorf("61 minutes old with StaleAfter 1h: err=%v, want ErrStale", err)
		}
	})
}

func TestLookupNotFound(t *testing.T) {
	src := newSource()
	src.delay = time.Hour // never completes a sample before Delete/cleanup
	h := start(t, src, Options{})
	s := spec("pending", 1, time.Minute, "test", "a")
	mustUpsert(t, h.p, s)
	cases := []struct {
		name   string
		key    samples.Key
		metric string
	}{
		{"unknown object", samples.Key{Kind: samples.KindScaledObject, Namespace: "ns", Name: "nope"}, metricName(0, "a")},
		{"wrong kind", samples.Key{Kind: samples.KindScaledJob, Namespace: "ns", Name: "pending"}, metricName(0, "a")},
		{"unknown metric", s.Key, "s9-test-x"},
		{"not sampled yet", s.Key, metricName(0, "a")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := h.p.Lookup(tc.key, tc.metric); !errors.Is(err, ErrNotFound) {
				t.Errorf("err=%v, want ErrNotFound", err)
			}
		})
	}
}

func TestErrorsCountAndRecover(t *testing.T) {
	src := newSource()
	src.value.Store(11)
	src.activation = 5
	h := start(t, src, Options{})
	s := spec("flaky", 1, time.Minute, "test", "a")
	mustUpsert(t, h.p, s)
	ctx := context.Background()
	if err := h.p.SampleNow(ctx, s.Key); err != nil {
		t.Fatal(err)
	}

	src.fail.Store(true)
	for want := 1; want <= 3; want++ {
		err := h.p.SampleNow(ctx, s.Key)
		if err == nil {
			t.Fatalf("SampleNow of a failing source returned nil")
		}
		st, _ := h.p.State(s.Key)
		tr := st.Triggers[0]
		if tr.Err == nil || tr.ConsecutiveFailures != want {
			t.Fatalf("after failure %d: Err=%v ConsecutiveFailures=%d", want, tr.Err, tr.ConsecutiveFailures)
		}
		if strings.Contains(tr.Err.Error(), "hunter2-secret") {
			t.Fatalf("secret in trigger error: %v", tr.Err)
		}
		if len(tr.Samples) != 1 || tr.Samples[0].Value != 11 || !tr.Active {
			t.Errorf("last good sample not kept: %+v", tr)
		}
	}
	if _, _, err := h.p.Lookup(s.Key, metricName(0, "a")); !errors.Is(err, ErrSampleFailed) || errors.Is(err, ErrStale) {
		t.Errorf("Lookup of failing trigger: err=%v, want ErrSampleFailed only", err)
	}

	src.fail.Store(false)
	src.value.Store(2)
	if err := h.p.SampleNow(ctx, s.Key); err != nil {
		t.Fatalf("SampleNow after recovery: %v", err)
	}
	sample, st, err := h.p.Lookup(s.Key, metricName(0, "a"))
	if err != nil || st.ConsecutiveFailures != 0 || st.Err != nil || sample.Value != 2 || st.Active {
		t.Errorf("after recovery: %v %+v %v", sample, st, err)
	}
	if got := testutil.ToFloat64(h.p.metrics.samples.WithLabelValues("test", "error")); got != 3 {
		t.Errorf("error samples metric = %v, want 3", got)
	}
}

func TestPanicsBecomeErrors(t *testing.T) {
	src := newSource()
	src.panics.Store(true)
	h := start(t, src, Options{})
	s := spec("panicky", 1, time.Minute, "test", "a")
	mustUpsert(t, h.p, s)
	err := h.p.SampleNow(context.Background(), s.Key)
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("SampleNow of a panicking scaler: %v", err)
	}
}

func TestSampleTimeout(t *testing.T) {
	src := newSource()
	src.delay = time.Minute
	h := start(t, src, Options{SampleTimeout: time.Millisecond}) // floored at one second
	s := spec("slow", 1, time.Minute, "test", "a")
	mustUpsert(t, h.p, s)
	err := h.p.SampleNow(context.Background(), s.Key)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SampleNow of a hanging source: err=%v, want DeadlineExceeded", err)
	}
}

func TestRunClosesEverything(t *testing.T) {
	src := newSource()
	h := start(t, src, Options{})
	for _, name := range []string{"one", "two", "three"} {
		mustUpsert(t, h.p, spec(name, 1, 20*time.Millisecond, "testpush", "a"))
	}
	testenv.Eventually(t, "watches started", 30*time.Second, func() (bool, string) { return src.watchCalls.Load() == 3, "" })
	h.stop()
	if c := src.closed.Load(); c != 3 {
		t.Errorf("closed=%d after Run returned, want 3", c)
	}
	if n := src.afterClose.Load(); n != 0 {
		t.Errorf("%d calls on closed scalers", n)
	}
	errs := h.p.Upsert(context.Background(), spec("late", 1, time.Second, "test", "a"))
	if len(errs) != 1 || !errors.Is(errs[0], ErrClosed) {
		t.Errorf("Upsert after Run: %v, want ErrClosed", errs)
	}
	if err := h.p.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("second Run: %v, want ErrClosed", err)
	}
}

func TestMetrics(t *testing.T) {
	src := newSource()
	src.value.Store(1)
	h := start(t, src, Options{})
	s := spec("metered", 1, time.Minute, "testpush", "a", "b")
	mustUpsert(t, h.p, s)
	if err := h.p.SampleNow(context.Background(), s.Key); err != nil {
		t.Fatal(err)
	}
	src.signalPush()
	testenv.Eventually(t, "push wake-up counted", 30*time.Second, func() (bool, string) {
		return testutil.ToFloat64(h.p.metrics.pushWakeups.WithLabelValues("testpush")) >= 1, ""
	})
	if _, _, err := h.p.Lookup(s.Key, metricName(0, "a")); err != nil {
		t.Fatal(err)
	}

	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range []string{"tidal_poller_samples_total", "tidal_poller_sample_duration_seconds",
		"tidal_poller_scheduler_lag_seconds", "tidal_poller_cache_age_seconds", "tidal_poller_objects",
		"tidal_poller_triggers", "tidal_poller_push_wakeups_total"} {
		if !got[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
	if v := testutil.ToFloat64(h.p.metrics.objects); v != 1 {
		t.Errorf("objects = %v, want 1", v)
	}
	if v := testutil.ToFloat64(h.p.metrics.triggers); v != 2 {
		t.Errorf("triggers = %v, want 2", v)
	}
	if v := testutil.ToFloat64(h.p.metrics.samples.WithLabelValues("testpush", "success")); v < 2 {
		t.Errorf("successful samples = %v, want >= 2", v)
	}
	if n := testutil.CollectAndCount(h.p.metrics.cacheAge); n != 1 {
		t.Errorf("cache age histogram series = %d", n)
	}

	// Two pollers in one process do not collide.
	if _, err := New(Options{Registry: newTestRegistry(src), Metrics: h.reg}); err == nil {
		t.Errorf("registering a second poller's metrics on the same registry succeeded")
	}
}
