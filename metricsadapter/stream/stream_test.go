package stream_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/stream"
	"github.com/tidalscale/tidal/scalers"

	"github.com/tidalscale/tidal/internal/testenv"
)

// gauge is an in-process event source: the test sets its value, the scaler samples it. It stands in for the
// scalers, which have their own tests against real servers; here only the transport is under test.
type gauge struct {
	value atomic.Int64
	calls atomic.Int64
}

type gaugeScaler struct {
	g      *gauge
	metric string
	cfg    *scalers.TriggerConfig
}

func (s *gaugeScaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metric, 5)}
}

func (s *gaugeScaler) Sample(context.Context) ([]scalers.Sample, bool, error) {
	s.g.calls.Add(1)
	v := s.g.value.Load()
	if v < 0 {
		return nil, false, errors.New("source down")
	}
	return []scalers.Sample{{MetricName: s.metric, Value: float64(v)}}, v > 0, nil
}

func (s *gaugeScaler) Close(context.Context) error { return nil }

func gaugeRegistry(g *gauge) *scalers.Registry {
	r := scalers.NewRegistry()
	r.Register(func(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
		return &gaugeScaler{g: g, metric: cfg.MetricName("gauge", cfg.Metadata["name"]), cfg: cfg}, nil
	}, "gauge")
	r.Register(func(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
		return nil, fmt.Errorf("broken trigger %q: metadata.name: required", cfg.Name)
	}, "broken")
	return r
}

func objectSpec(ns, name string, gen int64, interval time.Duration) samples.ObjectSpec {
	return samples.ObjectSpec{
		Key:             samples.Key{Kind: samples.KindScaledObject, Namespace: ns, Name: name},
		PollingInterval: interval,
		Generation:      gen,
		Triggers:        []scalers.TriggerConfig{{Type: "gauge", Name: "g", Index: 0, Metadata: map[string]string{"name": name}}},
	}
}

type fixture struct {
	t      *testing.T
	g      *gauge
	poller *poller.Poller
	server *stream.Server
	pki    *testpki.CA
	srvTLS testpki.Pair
	cliTLS testpki.Pair
	addr   string
	stopFn func()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	g := &gauge{}
	p, err := poller.New(poller.Options{Registry: gaugeRegistry(g), Logger: zaptest.NewLogger(t).Named("poller")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	f := serveFixture(t, g, p)
	return f
}

// serve starts the gRPC server on addr; stop() stops it as a crashed adapter would.
// serveFixture serves p's stream over mutual TLS with a CA of the test's own, on a loopback port.
func serveFixture(t *testing.T, g *gauge, p *poller.Poller) *fixture {
	t.Helper()
	srv, err := stream.NewServer(stream.ServerOptions{Source: p, Logger: zaptest.NewLogger(t).Named("server")})
	if err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCA(t, "stream")
	f := &fixture{t: t, g: g, poller: p, server: srv, pki: ca,
		srvTLS: ca.Server(t, "adapter", "localhost", "127.0.0.1"), cliTLS: ca.Client(t, "operator")}
	f.serve("127.0.0.1:0")
	return f
}

func (f *fixture) serve(addr string) {
	f.t.Helper()
	tlsCfg, err := stream.ServerTLSConfig(stream.TLSFiles{CertFile: f.srvTLS.CertFile, KeyFile: f.srvTLS.KeyFile, CAFile: f.pki.CertFile})
	if err != nil {
		f.t.Fatal(err)
	}
	var l net.Listener
	for i := 0; ; i++ { // the port of a stopped server may take a moment to free
		if l, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	g := stream.NewGRPCServer(tlsCfg, f.server)
	go func() { _ = g.Serve(l) }()
	f.addr = l.Addr().String()
	var once sync.Once
	f.stopFn = func() { once.Do(g.Stop) }
	f.t.Cleanup(f.stopFn)
}

func (f *fixture) client(files stream.TLSFiles) *stream.Client {
	f.t.Helper()
	tlsCfg, err := stream.ClientTLSConfig(files)
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := stream.NewClient(stream.ClientOptions{Address: f.addr, TLS: tlsCfg, Name: f.t.Name(),
		Logger: zaptest.NewLogger(f.t).Named("client"), MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done })
	return c
}

func (f *fixture) goodClient() *stream.Client {
	return f.client(stream.TLSFiles{CertFile: f.cliTLS.CertFile, KeyFile: f.cliTLS.KeyFile, CAFile: f.pki.CertFile, ServerName: "localhost"})
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, what, 30*time.Second, cond)
}

// waitUpdate reads updates until one carries want for key.
func waitUpdate(t *testing.T, updates <-chan samples.Update, key samples.Key, want float64) samples.Update {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				t.Fatal("subscription closed")
			}
			if u.Key == key && len(u.Trigger.Samples) == 1 && u.Trigger.Samples[0].Value == want {
				return u
			}
		case <-timeout:
			t.Fatalf("no update with value %v for %s", want, key)
		}
	}
}

func TestSnapshotThenUpdates(t *testing.T) {
	f := newFixture(t)
	f.g.value.Store(3)
	spec := objectSpec("ns", "before", 1, time.Hour)
	if errs := f.poller.Upsert(context.Background(), spec); len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := f.poller.SampleNow(context.Background(), spec.Key); err != nil {
		t.Fatal(err)
	}

	c := f.goodClient()
	updates, cancel := c.Subscribe(64)
	defer cancel()
	// The snapshot is published to subscribers as updates, so the operator re-observes everything.
	waitUpdate(t, updates, spec.Key, 3)
	if c.Err() != nil {
		t.Fatalf("connected client reports %v", c.Err())
	}
	snap := c.Snapshot()
	if len(snap) != 1 || snap[0].Key != spec.Key || snap[0].Generation != 1 || len(snap[0].Triggers) != 1 || !snap[0].Triggers[0].Active {
		t.Fatalf("snapshot = %+v", snap)
	}
	specs := c.MetricSpecs(spec.Key)
	if len(specs) != 1 || specs[0].External == nil || specs[0].External.Metric.Name != "s0-gauge-before" {
		t.Fatalf("metric specs = %+v", specs)
	}

	// Live updates follow, with activity changes flagged.
	f.g.value.Store(0)
	if err := f.poller.SampleNow(context.Background(), spec.Key); err != nil {
		t.Fatal(err)
	}
	u := waitUpdate(t, updates, spec.Key, 0)
	if !u.ActivityChanged || u.Trigger.Active {
		t.Fatalf("update = %+v, want an activity change to inactive", u)
	}

	// A failed sample arrives as the trigger's error, keeping the last good value.
	f.g.value.Store(-1)
	_ = f.poller.SampleNow(context.Background(), spec.Key)
	eventually(t, "failed sample streamed", func() (bool, string) {
		st := c.Snapshot()
		if len(st) != 1 || len(st[0].Triggers) != 1 {
			return false, fmt.Sprintf("%+v", st)
		}
		tr := st[0].Triggers[0]
		var re *stream.RemoteError
		return errors.As(tr.Err, &re) && !re.Build && tr.ConsecutiveFailures == 1 && tr.Samples[0].Value == 0, fmt.Sprintf("%+v", tr)
	})
}

func TestObjectInstallAndDelete(t *testing.T) {
	f := newFixture(t)
	c := f.goodClient()
	eventually(t, "connected", func() (bool, string) { return c.Err() == nil, fmt.Sprint(c.Err()) })

	spec := objectSpec("ns", "late", 1, time.Hour)
	f.poller.Upsert(context.Background(), spec)
	f.server.ObjectChanged(spec.Key)
	// The operator learns the metric specs before the first sample (HPA mode needs them to create its HPA).
	eventually(t, "metric specs streamed", func() (bool, string) {
		s := c.MetricSpecs(spec.Key)
		return len(s) == 1 && s[0].External.Metric.Name == "s0-gauge-late", fmt.Sprintf("%+v", s)
	})
	if errs := c.Upsert(context.Background(), spec); len(errs) != 0 {
		t.Fatalf("Upsert of a buildable object returned %v", errs)
	}

	// A trigger that cannot be built never samples; its error is streamed when the object is installed.
	broken := objectSpec("ns", "broken", 1, time.Hour)
	broken.Triggers[0].Type = "broken"
	updates, cancel := c.Subscribe(16)
	defer cancel()
	if errs := f.poller.Upsert(context.Background(), broken); len(errs) != 1 {
		t.Fatalf("poller build errors = %v", errs)
	}
	f.server.ObjectChanged(broken.Key)
	select {
	case u := <-updates:
		var re *stream.RemoteError
		if u.Key != broken.Key || !errors.As(u.Trigger.Err, &re) || !re.Build || !strings.Contains(re.Msg, "metadata.name: required") {
			t.Fatalf("update = %+v, want the build error", u)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("build error not streamed")
	}
	if errs := c.Upsert(context.Background(), broken); len(errs) != 1 {
		t.Fatalf("client Upsert returned %v, want the build error", errs)
	}

	f.poller.Delete(context.Background(), broken.Key)
	f.server.ObjectDeleted(broken.Key)
	f.poller.Delete(context.Background(), spec.Key)
	f.server.ObjectDeleted(spec.Key)
	eventually(t, "object dropped", func() (bool, string) {
		return c.MetricSpecs(spec.Key) == nil && len(c.Snapshot()) == 0, fmt.Sprintf("%+v", c.Snapshot())
	})
}

func TestMutualTLSRequired(t *testing.T) {
	f := newFixture(t)
	other := testpki.NewCA(t, "other")
	stranger := other.Client(t, "stranger")
	cases := []struct {
		name  string
		files stream.TLSFiles
	}{
		{"client certificate from another CA", stream.TLSFiles{CertFile: stranger.CertFile, KeyFile: stranger.KeyFile, CAFile: f.pki.CertFile, ServerName: "localhost"}},
		{"server not trusted by the client", stream.TLSFiles{CertFile: f.cliTLS.CertFile, KeyFile: f.cliTLS.KeyFile, CAFile: other.CertFile, ServerName: "localhost"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := f.client(tc.files)
			time.Sleep(time.Second)
			st := c.Status()
			if st.Connected || !errors.Is(c.Err(), stream.ErrUnreachable) {
				t.Fatalf("status = %+v, err = %v: want refused", st, c.Err())
			}
		})
	}
	if _, err := stream.ServerTLSConfig(stream.TLSFiles{CertFile: f.srvTLS.CertFile, KeyFile: f.srvTLS.KeyFile}); err == nil {
		t.Fatal("server TLS without a client CA accepted")
	}
}

func TestReconnectRebuildsFromSnapshot(t *testing.T) {
	f := newFixture(t)
	f.g.value.Store(2)
	keep, gone := objectSpec("ns", "keep", 1, time.Hour), objectSpec("ns", "gone", 1, time.Hour)
	for _, s := range []samples.ObjectSpec{keep, gone} {
		f.poller.Upsert(context.Background(), s)
		if err := f.poller.SampleNow(context.Background(), s.Key); err != nil {
			t.Fatal(err)
		}
	}
	c := f.goodClient()
	eventually(t, "two objects", func() (bool, string) { return len(c.Snapshot()) == 2, fmt.Sprintf("%+v", c.Snapshot()) })

	f.stopFn()
	eventually(t, "outage reported", func() (bool, string) {
		return errors.Is(c.Err(), stream.ErrUnreachable), fmt.Sprint(c.Err())
	})
	// While down, the client keeps its last state.
	if n := len(c.Snapshot()); n != 2 {
		t.Fatalf("view during the outage has %d objects, want the last state (2)", n)
	}
	// Changes the client cannot hear about: one object goes (no deletion event), the other's value moves.
	f.poller.Delete(context.Background(), gone.Key)
	f.g.value.Store(9)
	if err := f.poller.SampleNow(context.Background(), keep.Key); err != nil {
		t.Fatal(err)
	}

	updates, cancel := c.Subscribe(64)
	defer cancel()
	f.serve(f.addr)
	waitUpdate(t, updates, keep.Key, 9)
	snap := c.Snapshot()
	if len(snap) != 1 || snap[0].Key != keep.Key {
		t.Fatalf("view after reconnect = %+v, want only %s", snap, keep.Key)
	}
	// The client applies the snapshot (and tells its subscribers) before it marks itself connected.
	eventually(t, "connected again", func() (bool, string) {
		st := c.Status()
		return st.Connected && st.Reconnects == 1, fmt.Sprintf("%+v", st)
	})
}

// BenchmarkStreamDelivery measures sample→subscriber latency through the stream (poller publish, gRPC over
// loopback mTLS, client fan-out), from the sample's timestamp to its receipt by an operator-side subscriber.
func BenchmarkStreamDelivery(b *testing.B) {
	bt := b
	g := &gauge{}
	p, err := poller.New(poller.Options{Registry: gaugeRegistry(g)})
	if err != nil {
		bt.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Run(ctx) }()
	srv, err := stream.NewServer(stream.ServerOptions{Source: p})
	if err != nil {
		bt.Fatal(err)
	}
	ca := testpki.NewCA(bt, "bench")
	sp, cp := ca.Server(bt, "adapter", "127.0.0.1"), ca.Client(bt, "operator")
	stls, _ := stream.ServerTLSConfig(stream.TLSFiles{CertFile: sp.CertFile, KeyFile: sp.KeyFile, CAFile: ca.CertFile})
	ctls, _ := stream.ClientTLSConfig(stream.TLSFiles{CertFile: cp.CertFile, KeyFile: cp.KeyFile, CAFile: ca.CertFile})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		bt.Fatal(err)
	}
	gs := stream.NewGRPCServer(stls, srv)
	go func() { _ = gs.Serve(l) }()
	defer gs.Stop()
	c, _ := stream.NewClient(stream.ClientOptions{Address: l.Addr().String(), TLS: ctls})
	go func() { _ = c.Run(ctx) }()
	updates, unsub := c.Subscribe(1 << 16)
	defer unsub()
	for c.Err() != nil {
		time.Sleep(10 * time.Millisecond)
	}
	const objects = 100
	keys := make([]samples.Key, objects)
	for i := range keys {
		s := objectSpec("bench", "o"+strconv.Itoa(i), 1, time.Hour)
		keys[i] = s.Key
		p.Upsert(ctx, s)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.value.Store(int64(i + 1))
		key := keys[i%objects]
		if err := p.SampleNow(ctx, key); err != nil {
			bt.Fatal(err)
		}
		for {
			u := <-updates
			if u.Key == key && len(u.Trigger.Samples) == 1 && u.Trigger.Samples[0].Value == float64(i+1) {
				lat = append(lat, time.Since(u.Trigger.SampledAt))
				break
			}
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sorted := append([]time.Duration(nil), lat...)
	slices.Sort(sorted)
	b.ReportMetric(float64(sorted[len(sorted)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(sorted[len(sorted)*99/100].Microseconds()), "p99-µs")
}

// TestSnapshotLeavesOutUnsampledTriggers reproduces issue 18's adapter restart: the snapshot used to carry
// triggers not sampled yet (SampledAt zero, no error), which the operator read as inactive and scaled 5 → 0.
// Now an unsampled trigger is simply absent, and the operator waits for its first sample.
func TestSnapshotLeavesOutUnsampledTriggers(t *testing.T) {
	g := &gauge{}
	g.value.Store(3)
	// A poller that is never run: its objects are installed but never sampled, like a restarted adapter's
	// before the first (jittered) poll.
	p, err := poller.New(poller.Options{Registry: gaugeRegistry(g)})
	if err != nil {
		t.Fatal(err)
	}
	spec := objectSpec("ns", "restarted", 4, time.Hour)
	if errs := p.Upsert(context.Background(), spec); len(errs) > 0 {
		t.Fatal(errs)
	}
	f := serveFixture(t, g, p)
	c := f.goodClient()
	eventually(t, "connected", func() (bool, string) { return c.Err() == nil, fmt.Sprint(c.Err()) })
	snap := c.Snapshot()
	if len(snap) != 1 || snap[0].Generation != 4 {
		t.Fatalf("snapshot = %+v, want the object at generation 4", snap)
	}
	if len(snap[0].Triggers) != 0 {
		t.Fatalf("snapshot carries unsampled triggers: %+v", snap[0].Triggers)
	}
	if got := c.MetricSpecs(spec.Key); len(got) != 1 {
		t.Fatalf("metric specs = %+v, want the trigger's spec", got)
	}
}

// TestUpdatesCarryTheirGeneration: every streamed sample is stamped with the generation it was taken for, so the
// operator never decides on a sample of an edited trigger's previous spec.
func TestUpdatesCarryTheirGeneration(t *testing.T) {
	f := newFixture(t)
	f.g.value.Store(2)
	c := f.goodClient()
	updates, cancel := c.Subscribe(64)
	defer cancel()
	eventually(t, "connected", func() (bool, string) { return c.Err() == nil, fmt.Sprint(c.Err()) })
	for gen := int64(1); gen <= 2; gen++ {
		spec := objectSpec("ns", "edited", gen, time.Hour)
		if errs := f.poller.Upsert(context.Background(), spec); len(errs) > 0 {
			t.Fatal(errs)
		}
		if err := f.poller.SampleNow(context.Background(), spec.Key); err != nil {
			t.Fatal(err)
		}
		for {
			u := waitUpdate(t, updates, spec.Key, 2)
			if u.Trigger.Generation > gen {
				t.Fatalf("update of generation %d while generation %d is the newest", u.Trigger.Generation, gen)
			}
			if u.Trigger.Generation == gen {
				break
			}
		}
	}
}

// replica builds another adapter replica sharing f's certificates, with its own gauge and a poller stamping
// samples with now; it does not serve yet (see serve).
func (f *fixture) replica(now func() time.Time) *fixture {
	f.t.Helper()
	g := &gauge{}
	p, err := poller.New(poller.Options{Registry: gaugeRegistry(g), Logger: zaptest.NewLogger(f.t).Named("replica-poller"), Now: now})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done })
	srv, err := stream.NewServer(stream.ServerOptions{Source: p, Logger: zaptest.NewLogger(f.t).Named("replica-server")})
	if err != nil {
		f.t.Fatal(err)
	}
	return &fixture{t: f.t, g: g, poller: p, server: srv, pki: f.pki, srvTLS: f.srvTLS, cliTLS: f.cliTLS}
}

// TestReconnectNeverGoesBackInTime: an operator's client that reconnects to another adapter replica (as behind
// a Service) keeps its sample of a trigger when the replica's snapshot or updates hold an older one of the same
// generation, takes a newer generation whatever its time, still drops objects the replica does not have, and
// takes the replica's next newer sample.
func TestReconnectNeverGoesBackInTime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.g.value.Store(2)
	same, edited, gone := objectSpec("ns", "same", 1, time.Hour), objectSpec("ns", "edited", 1, time.Hour), objectSpec("ns", "gone", 1, time.Hour)
	for _, s := range []samples.ObjectSpec{same, edited, gone} {
		f.poller.Upsert(ctx, s)
		if err := f.poller.SampleNow(ctx, s.Key); err != nil {
			t.Fatal(err)
		}
	}
	c := f.goodClient()
	eventually(t, "three objects", func() (bool, string) { return len(c.Snapshot()) == 3, fmt.Sprintf("%+v", c.Snapshot()) })
	held, err := c.State(same.Key)
	if err != nil {
		t.Fatal(err)
	}

	// The other replica's clock runs an hour behind until the test moves it: its samples are older.
	var behind atomic.Int64
	behind.Store(int64(time.Hour))
	r := f.replica(func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) })
	r.g.value.Store(1)
	editedV2 := objectSpec("ns", "edited", 2, time.Hour)
	for _, s := range []samples.ObjectSpec{same, editedV2} {
		r.poller.Upsert(ctx, s)
		if err := r.poller.SampleNow(ctx, s.Key); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := r.poller.State(same.Key); !st.Triggers[0].SampledAt.Before(held.Triggers[0].SampledAt) {
		t.Fatalf("replica's sample at %v is not older than the held one at %v", st.Triggers[0].SampledAt, held.Triggers[0].SampledAt)
	}

	f.stopFn()
	eventually(t, "outage reported", func() (bool, string) {
		return errors.Is(c.Err(), stream.ErrUnreachable), fmt.Sprint(c.Err())
	})
	updates, cancel := c.Subscribe(64)
	defer cancel()
	r.serve(f.addr)
	// The client applies the snapshot before it marks itself connected.
	eventually(t, "connected to the replica", func() (bool, string) {
		st := c.Status()
		return st.Connected && st.Reconnects == 1, fmt.Sprintf("%+v", st)
	})
	// Same generation, older sample: the held state stays, and is what the snapshot republished.
	waitUpdate(t, updates, same.Key, 2)
	if st, err := c.State(same.Key); err != nil || st.Generation != 1 || st.Triggers[0].Samples[0].Value != 2 ||
		!st.Triggers[0].SampledAt.Equal(held.Triggers[0].SampledAt) {
		t.Fatalf("state of %s after reconnect = %+v, %v; want the held sample (value 2 at %v)", same.Key, st, err, held.Triggers[0].SampledAt)
	}
	// Newer generation, older sample: the replica's replaces the held one.
	if st, err := c.State(edited.Key); err != nil || st.Generation != 2 || len(st.Triggers) != 1 ||
		st.Triggers[0].Generation != 2 || st.Triggers[0].Samples[0].Value != 1 {
		t.Fatalf("state of %s after reconnect = %+v, %v; want generation 2's sample (value 1)", edited.Key, st, err)
	}
	// An object absent from the replica's snapshot is dropped as before.
	if _, err := c.State(gone.Key); !errors.Is(err, poller.ErrNotFound) {
		t.Fatalf("state of %s after reconnect: err = %v, want not found", gone.Key, err)
	}

	// Live updates: the replica's next sample, still older than the held one, is dropped; once its clock
	// catches up, its next sample is taken. Updates of a trigger arrive in order, so seeing the second without
	// the first proves the first was dropped.
	r.g.value.Store(4)
	if err := r.poller.SampleNow(ctx, same.Key); err != nil {
		t.Fatal(err)
	}
	behind.Store(0)
	// Its clock caught up, the replica's sample fails: the failure carries a last success an hour older than
	// the held sample, but was taken after it (the attempt time on the wire), so it is news.
	r.g.value.Store(-1)
	_ = r.poller.SampleNow(ctx, same.Key)
	for failed := false; !failed; {
		select {
		case u := <-updates:
			failed = u.Key == same.Key && u.Trigger.Err != nil
		case <-time.After(30 * time.Second):
			t.Fatal("the replica's failure, taken after the held sample, not streamed")
		}
	}
	if st, err := c.State(same.Key); err != nil || st.Triggers[0].Err == nil {
		t.Fatalf("state of %s = %+v, %v; want the replica's failure", same.Key, st, err)
	}
	r.g.value.Store(3)
	if err := r.poller.SampleNow(ctx, same.Key); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for taken := false; !taken; {
		select {
		case u := <-updates:
			if u.Key != same.Key {
				continue
			}
			switch v := u.Trigger.Samples[0].Value; {
			case v == 4:
				t.Fatalf("older update relayed: %+v", u)
			case v == 3:
				taken = true
			}
		case <-timeout:
			t.Fatal("the replica's newer sample (value 3) not streamed")
		}
	}
	if st, err := c.State(same.Key); err != nil || st.Triggers[0].Samples[0].Value != 3 {
		t.Fatalf("state of %s = %+v, %v; want the newer sample (value 3)", same.Key, st, err)
	}
}
