package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const natsURL = "nats://127.0.0.1:4222"

// fixture is a unique stream with a durable pull consumer on the local JetStream server.
type fixture struct {
	js       jetstream.JetStream
	stream   string
	consumer string
	subject  string // publish here to add to the stream
	cons     jetstream.Consumer
}

func unique(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "_")
	return fmt.Sprintf("tidal_%s_%s", name, hex.EncodeToString(b))
}

func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.Timeout(10*time.Second))
	if err != nil {
		t.Fatalf("NATS with JetStream at %s is required: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// newFixture creates a stream on subjects <name>.> and a durable pull consumer (optionally filtered), and
// deletes the stream when the test ends.
func newFixture(t testing.TB, url, filter string) *fixture {
	t.Helper()
	js := connect(t, url)
	name := unique(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	})
	cc := jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute}
	if filter != "" {
		cc.FilterSubject = name + "." + filter
	}
	cons, err := st.CreateConsumer(ctx, cc)
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	return &fixture{js: js, stream: name, consumer: "worker", subject: name + ".work", cons: cons}
}

func (f *fixture) publish(t testing.TB, subject string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		if _, err := f.js.Publish(ctx, subject, []byte("m")); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}
}

// fetch takes n messages from the consumer without acking them.
func (f *fixture) fetch(t testing.TB, n int) []jetstream.Msg {
	t.Helper()
	batch, err := f.cons.Fetch(n, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != n {
		t.Fatalf("fetched %d messages, want %d (err %v)", len(msgs), n, batch.Error())
	}
	return msgs
}

func ackAll(t testing.TB, msgs []jetstream.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range msgs {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

func newScaler(t testing.TB, tr scalertest.Trigger) *Scaler {
	t.Helper()
	return scalertest.New[*Scaler](t, New, tr.Config(t, TriggerType, "jobs"))
}

// sample returns the single metric value and activity, failing the test on error.
func sample(t testing.TB, s *Scaler) (float64, bool) {
	t.Helper()
	return scalertest.Sample(t, s, s.MetricName())
}

func TestAPILag(t *testing.T) {
	t.Parallel()
	f := newFixture(t, natsURL, "")
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServer": natsURL, "stream": f.stream, "consumer": f.consumer, "lagThreshold": "3"}})

	specs := s.MetricSpecs()
	if got, want := specs[0].External.Metric.Name, scalers.SanitizeMetricName("s0-nats-jetstream-"+f.stream); got != want {
		t.Fatalf("metric name %q, want %q", got, want)
	}
	if got := specs[0].External.Target.AverageValue.Value(); got != 3 {
		t.Fatalf("target %d, want 3", got)
	}
	if v, active := sample(t, s); v != 0 || active {
		t.Fatalf("empty: lag=%v active=%v, want 0/false", v, active)
	}
	f.publish(t, f.subject, 5)
	if v, active := sample(t, s); v != 5 || !active {
		t.Fatalf("after 5 publishes: lag=%v active=%v, want 5/true", v, active)
	}
	// Delivered but unacked messages still count (num_ack_pending), as in KEDA.
	msgs := f.fetch(t, 2)
	if v, _ := sample(t, s); v != 5 {
		t.Fatalf("2 fetched, unacked: lag=%v, want 5", v)
	}
	ackAll(t, msgs)
	if v, _ := sample(t, s); v != 3 {
		t.Fatalf("2 acked: lag=%v, want 3", v)
	}
	ackAll(t, f.fetch(t, 3))
	if v, active := sample(t, s); v != 0 || active {
		t.Fatalf("all acked: lag=%v active=%v, want 0/false", v, active)
	}
}

func TestAPIFilterAndActivation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, natsURL, "hot")
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServer": natsURL, "stream": f.stream, "consumer": f.consumer, "activationLagThreshold": "2"}})
	f.publish(t, f.stream+".cold", 4) // outside the consumer's filter: no lag
	f.publish(t, f.stream+".hot", 2)
	if v, active := sample(t, s); v != 2 || active {
		t.Fatalf("2 matching of 6: lag=%v active=%v, want 2/false (activationLagThreshold 2)", v, active)
	}
	f.publish(t, f.stream+".hot", 1)
	if v, active := sample(t, s); v != 3 || !active {
		t.Fatalf("3 matching: lag=%v active=%v, want 3/true", v, active)
	}
}

func TestAPIMissingConsumerAndStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, natsURL, "")
	f.publish(t, f.subject, 4)
	// KEDA: a consumer that does not exist yet has the whole stream as lag.
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServer": natsURL, "stream": f.stream, "consumer": "not-yet"}})
	if v, active := sample(t, s); v != 4 || !active {
		t.Fatalf("missing consumer: lag=%v active=%v, want last_seq 4/true", v, active)
	}
	missing := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServer": natsURL, "stream": f.stream + "_gone", "consumer": "c"}})
	_, _, err := missing.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "nats-jetstream trigger") || !strings.Contains(err.Error(), "stream not found") {
		t.Fatalf("missing stream: err=%v, want a nats-jetstream trigger 'stream not found' error", err)
	}
}

func TestAPISharedConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, natsURL, "")
	shared := scalers.NewShared()
	md := map[string]string{"natsServer": natsURL, "stream": f.stream, "consumer": f.consumer}
	s1 := newScaler(t, scalertest.Trigger{MD: md, Shared: shared})
	s2 := newScaler(t, scalertest.Trigger{MD: md, Shared: shared})
	sample(t, s1)
	sample(t, s2)
	if n := shared.Len(); n != 1 {
		t.Fatalf("shared clients = %d, want 1", n)
	}
	_ = s1.Close(context.Background())
	_ = s2.Close(context.Background())
	if n := shared.Len(); n != 0 {
		t.Fatalf("shared clients after Close = %d, want 0", n)
	}
}

// startWatch runs Watch in the background and stops it when the test ends.
func startWatch(t *testing.T, s *Scaler) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, changed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v, want nil after cancel", err)
		}
	})
	// Give the subscription time to reach the server; a publish before it would go unseen.
	time.Sleep(time.Second)
	return changed
}

func TestWatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, natsURL, "")
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServer": natsURL, "stream": f.stream, "consumer": f.consumer}})
	if _, active := sample(t, s); active {
		t.Fatal("empty stream is active")
	}
	changed := startWatch(t, s)
	select {
	case <-changed:
		t.Fatal("Watch signalled before any publish")
	default:
	}
	start := time.Now()
	f.publish(t, f.subject, 1)
	select {
	case <-changed:
		t.Logf("watch wake-up after publish: %v (pollingInterval %v)", time.Since(start), s.Cfg.PollingInterval)
	case <-time.After(s.Cfg.PollingInterval):
		t.Fatalf("no wake-up within the %v polling interval", s.Cfg.PollingInterval)
	}
	if v, active := sample(t, s); v != 1 || !active {
		t.Fatalf("after wake-up: lag=%v active=%v, want 1/true", v, active)
	}
	// While the last Sample was active the trigger is polled; publishes do not signal.
	f.publish(t, f.subject, 3)
	select {
	case <-changed:
		t.Fatal("Watch signalled while the trigger was active")
	case <-time.After(500 * time.Millisecond):
	}
}

func TestWatchFilterSubject(t *testing.T) {
	t.Parallel()
	f := newFixture(t, natsURL, "hot")
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServer": natsURL, "stream": f.stream, "consumer": f.consumer}})
	changed := startWatch(t, s)
	f.publish(t, f.stream+".cold", 1)
	select {
	case <-changed:
		t.Fatal("Watch signalled for a subject outside the consumer's filter")
	case <-time.After(500 * time.Millisecond):
	}
	f.publish(t, f.stream+".hot", 1)
	select {
	case <-changed:
	case <-time.After(s.Cfg.PollingInterval):
		t.Fatal("no wake-up for a publish on the consumer's filter subject")
	}
}

func TestWatchNeedsNatsServer(t *testing.T) {
	t.Parallel()
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServerMonitoringEndpoint": "127.0.0.1:8222", "account": "$G", "stream": "s", "consumer": "c"}})
	err := s.Watch(context.Background(), make(chan struct{}, 1))
	if err == nil || !strings.Contains(err.Error(), "nats-jetstream trigger") || !strings.Contains(err.Error(), "natsServer") {
		t.Fatalf("Watch without natsServer: err=%v, want an error naming natsServer", err)
	}
}

// natsServer is a nats-server process this test started.
type natsServer struct {
	url        string
	monitoring string // host:port, when started with monitoring
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNATS runs a private nats-server (JetStream on, monitoring on) with extra args, for what the shared
// server on :4222 cannot show: the monitoring endpoint and a password.
func startNATS(t testing.TB, extra ...string) *natsServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			t.Fatalf("nats-server binary not found: %v", err)
		}
		bin = "/usr/sbin/nats-server"
	}
	port, mport := freePort(t), freePort(t)
	args := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mport), "-js", "-sd", t.TempDir()}, extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	maddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(mport))
	for deadline := time.Now().Add(30 * time.Second); ; {
		c1, err1 := net.DialTimeout("tcp", addr, time.Second)
		c2, err2 := net.DialTimeout("tcp", maddr, time.Second)
		if err1 == nil && err2 == nil {
			c1.Close()
			c2.Close()
			break
		}
		if c1 != nil {
			c1.Close()
		}
		if c2 != nil {
			c2.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not listen on %s and %s", addr, maddr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &natsServer{url: "nats://" + addr, monitoring: maddr}
}

func TestCredentialsNeverLeak(t *testing.T) {
	t.Parallel()
	const secret = "N4tsS3cretPass"
	srv := startNATS(t, "--user", "tidal", "--pass", "right-password")
	for _, tc := range []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
	}{
		{name: "password in natsServer URL", metadata: map[string]string{"natsServer": strings.Replace(srv.url, "nats://", "nats://tidal:"+secret+"@", 1)}},
		{name: "password in authParams", metadata: map[string]string{"natsServer": srv.url}, auth: map[string]string{"username": "tidal", "password": secret}},
		{name: "token in authParams", metadata: map[string]string{"natsServer": srv.url}, auth: map[string]string{"token": secret}},
		{name: "natsServer in authParams", metadata: map[string]string{}, auth: map[string]string{"natsServer": strings.Replace(srv.url, "nats://", "nats://tidal:"+secret+"@", 1)}},
		{name: "unreachable", metadata: map[string]string{"natsServer": "nats://tidal:" + secret + "@127.0.0.1:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.DebugLevel)
			md := map[string]string{"stream": "s", "consumer": "c"}
			for k, v := range tc.metadata {
				md[k] = v
			}
			s := newScaler(t, scalertest.Trigger{MD: md, Auth: tc.auth, Logger: zap.New(core)})
			var texts []string
			_, _, err := s.Sample(context.Background())
			if err == nil {
				t.Fatal("Sample with wrong credentials succeeded")
			}
			texts = append(texts, err.Error())
			if werr := s.Watch(context.Background(), make(chan struct{}, 1)); werr == nil {
				t.Fatal("Watch with wrong credentials returned nil")
			} else {
				texts = append(texts, werr.Error())
			}
			if cerr := s.Close(context.Background()); cerr != nil {
				texts = append(texts, cerr.Error())
			}
			scalertest.AssertNoSecret(t, secret, strings.Join(texts, "\n"), logs.All())
			t.Logf("error: %v", err)
		})
	}
}

// TestAuthenticatedServer checks that right credentials work against a server that requires them.
func TestAuthenticatedServer(t *testing.T) {
	t.Parallel()
	srv := startNATS(t, "--user", "tidal", "--pass", "right-password")
	f := newFixture(t, strings.Replace(srv.url, "nats://", "nats://tidal:right-password@", 1), "")
	f.publish(t, f.subject, 2)
	s := newScaler(t, scalertest.Trigger{
		MD:   map[string]string{"natsServer": srv.url, "stream": f.stream, "consumer": f.consumer},
		Auth: map[string]string{"username": "tidal", "password": "right-password"},
	})
	if v, active := sample(t, s); v != 2 || !active {
		t.Fatalf("lag=%v active=%v, want 2/true", v, active)
	}
}
