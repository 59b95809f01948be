package external_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	tidallisters "github.com/tidalscale/tidal/api/client/listers/api/v1alpha1"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/metricsadapter/external"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers"
)

// gauge is an in-process event source whose value the test sets. The provider under test only reads the
// poller's cache; the scalers have their own tests against real servers.
type gauge struct {
	value atomic.Int64
	fail  atomic.Bool
	calls atomic.Int64
}

type gaugeScaler struct {
	g       *gauge
	metrics []string
	cfg     *scalers.TriggerConfig
}

func (s *gaugeScaler) MetricSpecs() []autoscalingv2.MetricSpec {
	out := make([]autoscalingv2.MetricSpec, len(s.metrics))
	for i, m := range s.metrics {
		out[i] = scalers.ExternalMetric(s.cfg, m, 5)
	}
	return out
}

func (s *gaugeScaler) Sample(context.Context) ([]scalers.Sample, bool, error) {
	s.g.calls.Add(1)
	if s.g.fail.Load() {
		return nil, false, errors.New("connection refused")
	}
	out := make([]scalers.Sample, len(s.metrics))
	for i, m := range s.metrics {
		out[i] = scalers.Sample{MetricName: m, Value: float64(s.g.value.Load())}
	}
	return out, s.g.value.Load() > 0, nil
}

func (s *gaugeScaler) Close(context.Context) error { return nil }

func gaugeRegistry(g *gauge) *scalers.Registry {
	r := scalers.NewRegistry()
	r.Register(func(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
		return &gaugeScaler{g: g, metrics: []string{cfg.MetricName("gauge", cfg.Metadata["name"])}, cfg: cfg}, nil
	}, "gauge")
	return r
}

// clock is a settable Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	g      *gauge
	clock  *clock
	poller *poller.Poller
	reg    *prometheus.Registry
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	g := &gauge{}
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	p, err := poller.New(poller.Options{Registry: gaugeRegistry(g), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{g: g, clock: clk, poller: p, reg: reg}
}

// object installs a ScaledObject with n gauge triggers (polled hourly: only SampleNow samples) and samples it.
func (f *fixture) object(t testing.TB, ns, name string, n int) samples.Key {
	t.Helper()
	key := samples.Key{Kind: samples.KindScaledObject, Namespace: ns, Name: name}
	spec := samples.ObjectSpec{Key: key, PollingInterval: time.Hour, Generation: 1, UseCachedMetrics: make([]bool, n)}
	for i := range n {
		spec.Triggers = append(spec.Triggers, scalers.TriggerConfig{Type: "gauge", Index: i, Metadata: map[string]string{"name": "q" + strconv.Itoa(i)}})
		spec.UseCachedMetrics[i] = true
	}
	if errs := f.poller.Upsert(context.Background(), spec); len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := f.poller.SampleNow(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	return key
}

func (f *fixture) provider(t testing.TB, lister tidallisters.ScaledObjectLister) *external.Provider {
	t.Helper()
	p, err := external.New(external.Options{Cache: f.poller, Lister: lister, Metrics: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func selector(t testing.TB, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func lister(objs ...*tidalv1alpha1.ScaledObject) tidallisters.ScaledObjectLister {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		_ = idx.Add(o)
	}
	return tidallisters.NewScaledObjectLister(idx)
}

func TestGetExternalMetric(t *testing.T) {
	f := newFixture(t)
	f.g.value.Store(7)
	f.object(t, "ns", "orders", 2)
	f.object(t, "ns", "billing", 1)
	f.object(t, "other", "orders", 1)
	p := f.provider(t, lister(
		&tidalv1alpha1.ScaledObject{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "orders", Labels: map[string]string{"team": "a"}}},
		&tidalv1alpha1.ScaledObject{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "billing", Labels: map[string]string{"team": "a"}}},
	))
	cases := []struct {
		name      string
		namespace string
		selector  string
		metric    string
		wantNames []string // ScaledObjects answering; nil means an error
		wantCode  int32
	}{
		{"operator's selector", "ns", "scaledobject.tidal.dev/name=orders", "s1-gauge-q1", []string{"orders"}, 0},
		{"set selector", "ns", "scaledobject.tidal.dev/name in (orders,billing)", "s0-gauge-q0", []string{"billing", "orders"}, 0},
		{"selector on the ScaledObject's labels", "ns", "team=a", "s0-gauge-q0", []string{"billing", "orders"}, 0},
		{"namespace is part of the key", "other", "scaledobject.tidal.dev/name=orders", "s1-gauge-q1", nil, 404},
		{"unknown metric", "ns", "scaledobject.tidal.dev/name=orders", "s9-gauge-nope", nil, 404},
		{"unknown object", "ns", "scaledobject.tidal.dev/name=nope", "s0-gauge-q0", nil, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			list, err := p.GetExternalMetric(context.Background(), tc.namespace, selector(t, tc.selector), provider.ExternalMetricInfo{Metric: tc.metric})
			if tc.wantNames == nil {
				var status apierrors.APIStatus
				if !errors.As(err, &status) || status.Status().Code != tc.wantCode {
					t.Fatalf("err = %v, want HTTP %d", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, it := range list.Items {
				if it.MetricName != tc.metric || it.Value.MilliValue() != 7000 || !it.Timestamp.Time.Equal(f.clock.Now()) {
					t.Fatalf("item = %+v", it)
				}
				names = append(names, it.MetricLabels[external.LabelScaledObjectName])
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.wantNames) {
				t.Fatalf("answered for %v, want %v", names, tc.wantNames)
			}
		})
	}
}

func TestSelectorWithoutListerIsBadRequest(t *testing.T) {
	f := newFixture(t)
	f.object(t, "ns", "orders", 1)
	p := f.provider(t, nil)
	_, err := p.GetExternalMetric(context.Background(), "ns", selector(t, "team=a"), provider.ExternalMetricInfo{Metric: "s0-gauge-q0"})
	if !apierrors.IsBadRequest(err) {
		t.Fatalf("err = %v, want bad request", err)
	}
}

// Stale and failing samples are errors (503), never served as if fresh; recovery serves again.
func TestStaleAndFailedSamplesAreErrors(t *testing.T) {
	f := newFixture(t)
	f.g.value.Store(4)
	key := f.object(t, "ns", "orders", 1)
	p := f.provider(t, nil)
	get := func() error {
		_, err := p.GetExternalMetric(context.Background(), "ns", selector(t, "scaledobject.tidal.dev/name=orders"), provider.ExternalMetricInfo{Metric: "s0-gauge-q0"})
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("fresh sample: %v", err)
	}
	f.clock.Add(poller.DefaultStaleAfter(time.Hour) + time.Second)
	if err := get(); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("stale sample: err = %v, want 503", err)
	}
	f.g.fail.Store(true)
	_ = f.poller.SampleNow(context.Background(), key)
	err := get()
	if !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("failed sample: err = %v, want 503", err)
	}
	f.g.fail.Store(false)
	if err := f.poller.SampleNow(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil {
		t.Fatalf("recovered sample: %v", err)
	}
	if got := requests(t, f.reg, "503"); got != 2 {
		t.Fatalf("503 responses counted = %v, want 2", got)
	}
}

// requests reads tidal_metrics_adapter_external_requests_total{code}.
func requests(t *testing.T, reg *prometheus.Registry, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tidal_metrics_adapter_external_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestListAllExternalMetrics(t *testing.T) {
	f := newFixture(t)
	f.object(t, "a", "x", 2)
	f.object(t, "b", "y", 1) // s0-gauge-q0 again: listed once
	got := f.provider(t, nil).ListAllExternalMetrics()
	want := []provider.ExternalMetricInfo{{Metric: "s0-gauge-q0"}, {Metric: "s1-gauge-q1"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Requests read the cache only: a thousand of them call no scaler.
func TestRequestsCallNoScaler(t *testing.T) {
	f := newFixture(t)
	f.g.value.Store(1)
	f.object(t, "ns", "orders", 3)
	p := f.provider(t, nil)
	before := f.g.calls.Load()
	for i := range 1000 {
		metric := fmt.Sprintf("s%d-gauge-q%d", i%3, i%3)
		if _, err := p.GetExternalMetric(context.Background(), "ns", selector(t, "scaledobject.tidal.dev/name=orders"), provider.ExternalMetricInfo{Metric: metric}); err != nil {
			t.Fatal(err)
		}
	}
	if calls := f.g.calls.Load() - before; calls != 0 {
		t.Fatalf("1000 requests made %d scaler calls, want 0", calls)
	}
}

// BenchmarkGetExternalMetric: 1,000 ScaledObjects × 3 triggers, concurrent GETs of random metrics through the
// provider (what the API server calls per request). Reports p50/p99 latency and scaler calls per request.
func BenchmarkGetExternalMetric(b *testing.B) {
	f := newFixture(b)
	f.g.value.Store(3)
	const objects, triggers = 1000, 3
	for i := range objects {
		f.object(b, "bench", "so-"+strconv.Itoa(i), triggers)
	}
	p := f.provider(b, nil)
	sels := make([]labels.Selector, objects)
	for i := range sels {
		sels[i] = selector(b, "scaledobject.tidal.dev/name=so-"+strconv.Itoa(i))
	}
	calls := f.g.calls.Load()
	var mu sync.Mutex
	var lat []time.Duration
	var seq atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			n := int(seq.Add(1))
			t := n % triggers
			start := time.Now()
			_, err := p.GetExternalMetric(context.Background(), "bench", sels[(n*7919)%objects],
				provider.ExternalMetricInfo{Metric: "s" + strconv.Itoa(t) + "-gauge-q" + strconv.Itoa(t)})
			local = append(local, time.Since(start))
			if err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
	b.ReportMetric(float64(f.g.calls.Load()-calls)/float64(b.N), "scaler-calls/op")
}

// With spec.fallback, a trigger failing failureThreshold times in a row is answered with replicas × target, so
// the HPA goes to the fallback replica count (KEDA's behaviour); below the threshold it is still an error.
func TestFallbackValue(t *testing.T) {
	cases := []struct {
		name     string
		fallback tidalv1alpha1.Fallback
		current  *int32
		want     int64 // milli-units; the gauge's target is 5
	}{
		{"static", tidalv1alpha1.Fallback{FailureThreshold: 2, Replicas: 4}, ptr[int32](7), 20_000},
		{"currentReplicas", tidalv1alpha1.Fallback{FailureThreshold: 2, Replicas: 4, Behavior: tidalv1alpha1.FallbackBehaviorCurrentReplicas}, ptr[int32](7), 35_000},
		{"currentReplicasIfHigher", tidalv1alpha1.Fallback{FailureThreshold: 2, Replicas: 4, Behavior: tidalv1alpha1.FallbackBehaviorCurrentReplicasIfHigher}, ptr[int32](7), 35_000},
		{"currentReplicasIfLower", tidalv1alpha1.Fallback{FailureThreshold: 2, Replicas: 4, Behavior: tidalv1alpha1.FallbackBehaviorCurrentReplicasIfLower}, ptr[int32](7), 20_000},
		{"no current replicas yet: static", tidalv1alpha1.Fallback{FailureThreshold: 2, Replicas: 4, Behavior: tidalv1alpha1.FallbackBehaviorCurrentReplicas}, nil, 20_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.g.value.Store(1)
			key := f.object(t, "ns", "orders", 1)
			so := &tidalv1alpha1.ScaledObject{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "orders"}}
			fb := tc.fallback
			so.Spec.Fallback = &fb
			so.Status.CurrentReplicas = tc.current
			p := f.provider(t, lister(so))
			get := func() (int64, error) {
				list, err := p.GetExternalMetric(context.Background(), "ns", selector(t, "scaledobject.tidal.dev/name=orders"), provider.ExternalMetricInfo{Metric: "s0-gauge-q0"})
				if err != nil {
					return 0, err
				}
				return list.Items[0].Value.MilliValue(), nil
			}
			f.g.fail.Store(true)
			_ = f.poller.SampleNow(context.Background(), key)
			if _, err := get(); !apierrors.IsServiceUnavailable(err) {
				t.Fatalf("one failure (threshold 2): err = %v, want 503", err)
			}
			_ = f.poller.SampleNow(context.Background(), key)
			got, err := get()
			if err != nil || got != tc.want {
				t.Fatalf("after two failures: value %dm, err %v; want %dm", got, err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
