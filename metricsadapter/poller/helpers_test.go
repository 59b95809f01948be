package poller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"
)

// source is the event source behind the test scalers: the test sets its value and failure mode and reads
// what the poller did to the scalers built on it.
type source struct {
	value       atomic.Int64
	fail        atomic.Bool
	panics      atomic.Bool
	countValues bool          // each sample returns the scaler's own call count instead of value
	delay       time.Duration // how long Sample takes (honours ctx)
	activation  int64

	built, closed atomic.Int32
	calls         atomic.Int64
	inFlight      atomic.Int32
	maxInFlight   atomic.Int32
	afterClose    atomic.Int32 // Sample or Watch called on a closed scaler: a contract violation

	push           chan struct{} // test → Watch: the source changed
	watchErr       error         // Watch fails with this at once...
	watchFailFirst int32         // ...on its first watchFailFirst calls only, when > 0
	watchCalls     atomic.Int32

	mu      sync.Mutex
	scalers []*testScaler
}

func newSource() *source { return &source{push: make(chan struct{}, 1)} }

func (s *source) signalPush() {
	select {
	case s.push <- struct{}{}:
	default:
	}
}

// testScaler implements scalers.Scaler over a source.
type testScaler struct {
	src    *source
	cfg    *scalers.TriggerConfig
	calls  atomic.Int64
	closed atomic.Bool
}

func (s *testScaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName(), 5)}
}

func (s *testScaler) metricName() string { return s.cfg.MetricName("test", s.cfg.Metadata["name"]) }

func (s *testScaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	if s.closed.Load() {
		s.src.afterClose.Add(1)
	}
	n := s.src.inFlight.Add(1)
	defer s.src.inFlight.Add(-1)
	for {
		m := s.src.maxInFlight.Load()
		if n <= m || s.src.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	call := s.calls.Add(1)
	s.src.calls.Add(1)
	if s.src.delay > 0 {
		select {
		case <-time.After(s.src.delay):
		case <-ctx.Done():
			return nil, false, s.cfg.Errorf("reading source: %w", ctx.Err())
		}
	}
	if s.src.panics.Load() {
		panic("test scaler exploded")
	}
	if s.src.fail.Load() {
		return nil, false, s.cfg.Errorf("source unavailable (password %s)", s.cfg.AuthParams["password"])
	}
	v := s.src.value.Load()
	if s.src.countValues {
		v = call
	}
	return []scalers.Sample{{MetricName: s.metricName(), Value: float64(v)}}, v > s.src.activation, nil
}

func (s *testScaler) Close(context.Context) error {
	if s.closed.Swap(true) {
		return errors.New("closed twice")
	}
	s.src.closed.Add(1)
	return nil
}

// pushScaler adds Watch over the source's push channel.
type pushScaler struct{ *testScaler }

func (s pushScaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	if s.closed.Load() {
		s.src.afterClose.Add(1)
	}
	n := s.src.watchCalls.Add(1)
	if s.src.watchErr != nil && (s.src.watchFailFirst == 0 || n <= s.src.watchFailFirst) {
		return s.cfg.Errorf("subscribing: %w", s.src.watchErr)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.src.push:
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
}

// newTestRegistry registers "test" (polling) and "testpush" (push) scalers over src, and "broken", whose
// builder always fails, in a fresh registry.
func newTestRegistry(src *source) *scalers.Registry {
	r := scalers.NewRegistry()
	build := func(_ context.Context, cfg *scalers.TriggerConfig) (*testScaler, error) {
		if cfg.Metadata["name"] == "" {
			return nil, cfg.Errorf("name: missing required parameter")
		}
		s := &testScaler{src: src, cfg: cfg}
		src.built.Add(1)
		src.mu.Lock()
		src.scalers = append(src.scalers, s)
		src.mu.Unlock()
		return s, nil
	}
	r.Register(func(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
		s, err := build(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	}, "test")
	r.Register(func(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
		s, err := build(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return pushScaler{s}, nil
	}, "testpush")
	r.Register(func(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
		return nil, cfg.Errorf("address: cannot parse %q", cfg.Metadata["address"])
	}, "broken")
	return r
}

type harness struct {
	p      *Poller
	src    *source
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

// start builds a Poller over src (opts.Registry defaults to a test registry) and runs it until the test ends.
func start(t testing.TB, src *source, opts Options) *harness {
	t.Helper()
	if opts.Registry == nil {
		opts.Registry = newTestRegistry(src)
	}
	if opts.Logger == nil {
		if tt, ok := t.(*testing.T); ok {
			opts.Logger = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
		} else {
			opts.Logger = zap.NewNop()
		}
	}
	h := &harness{src: src, reg: prometheus.NewRegistry(), done: make(chan struct{})}
	if opts.Metrics == nil {
		opts.Metrics = h.reg
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.p = p
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	h.cancel()
	<-h.done
}

// spec builds a samples.ObjectSpec with one trigger of type typ per name.
func spec(name string, gen int64, interval time.Duration, typ string, triggerNames ...string) samples.ObjectSpec {
	s := samples.ObjectSpec{
		Key:             samples.Key{Kind: samples.KindScaledObject, Namespace: "ns", Name: name},
		PollingInterval: interval,
		Generation:      gen,
	}
	for i, tn := range triggerNames {
		s.Triggers = append(s.Triggers, scalers.TriggerConfig{
			Type: typ, Name: tn, Index: i, Metadata: map[string]string{"name": tn},
			AuthParams: map[string]string{"password": "hunter2-secret"},
		})
	}
	// Tests use short intervals; cached metrics keep the interval as given.
	s.UseCachedMetrics = make([]bool, len(triggerNames))
	for i := range s.UseCachedMetrics {
		s.UseCachedMetrics[i] = true
	}
	return s
}

func mustUpsert(t testing.TB, p *Poller, s samples.ObjectSpec) {
	t.Helper()
	if errs := p.Upsert(context.Background(), s); len(errs) > 0 {
		t.Fatalf("Upsert %s: %v", s.Key, errs)
	}
}

// receive reads updates until match accepts one, failing after a generous deadline.
func receive(t testing.TB, ch <-chan samples.Update, what string, match func(samples.Update) bool) samples.Update {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed while waiting for %s", what)
			}
			if match(u) {
				return u
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func value(u samples.Update) float64 {
	if len(u.Trigger.Samples) == 0 {
		return -1
	}
	return u.Trigger.Samples[0].Value
}

func metricName(index int, trigger string) string { return fmt.Sprintf("s%d-test-%s", index, trigger) }
