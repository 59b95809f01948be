package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth/oauthtest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const (
	amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	httpURL = "http://guest:guest@127.0.0.1:15672/"
)

// uniqueQueue returns a queue name unique to this test run.
func uniqueQueue(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("tidal-%s-%s", strings.ToLower(name), hex.EncodeToString(b))
}

// broker is a test-side AMQP connection used to create load.
type broker struct {
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newBroker(t testing.TB) *broker {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("RabbitMQ at 127.0.0.1:5672 is required (start it with `rabbitmq-server -detached`): %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// Publisher confirms make publish synchronous: a confirmed message is counted by the queue.
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &broker{conn: conn, ch: ch}
}

// declare creates a queue and deletes it when the test ends.
func (b *broker) declare(t testing.TB, name string) {
	t.Helper()
	if _, err := b.ch.QueueDeclare(name, false, false, false, false, nil); err != nil {
		t.Fatalf("declare %s: %v", name, err)
	}
	t.Cleanup(func() {
		ch, err := b.conn.Channel()
		if err == nil {
			_, _ = ch.QueueDelete(name, false, false, false)
			_ = ch.Close()
		}
	})
}

func (b *broker) publish(t testing.TB, queue string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		conf, err := b.ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{Body: []byte("m")})
		if err != nil {
			t.Fatalf("publish to %s: %v", queue, err)
		}
		if ok, err := conf.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("publish to %s: confirmed=%v err=%v", queue, ok, err)
		}
	}
}

func (b *broker) purge(t testing.TB, queue string) {
	t.Helper()
	if _, err := b.ch.QueuePurge(queue, false); err != nil {
		t.Fatalf("purge %s: %v", queue, err)
	}
}

func newScaler(t testing.TB, tr scalertest.Trigger) *Scaler {
	t.Helper()
	return scalertest.New[*Scaler](t, New, tr.Config(t, TriggerType, "orders"))
}

// sample returns the single metric value and activity, failing the test on error.
func sample(t testing.TB, s *Scaler) (float64, bool) {
	t.Helper()
	return scalertest.Sample(t, s, s.MetricName())
}

// sampleUntil samples until cond holds or the timeout passes. The management API refreshes its statistics every
// ~5s and may not know a just-declared queue yet (404), so HTTP tests wait for it and retry errors.
func sampleUntil(t testing.TB, s *Scaler, timeout time.Duration, what string, cond func(v float64, active bool) bool) (float64, bool) {
	t.Helper()
	var v float64
	var active bool
	testenv.Eventually(t, what, timeout, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		vals, a, err := s.Sample(ctx)
		if err != nil {
			return false, fmt.Sprintf("Sample still failing: %v", err)
		}
		v, active = vals[0].Value, a
		return cond(v, active), fmt.Sprintf("value=%v active=%v", v, active)
	})
	return v, active
}

func TestAMQPQueueLength(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q := uniqueQueue(t)
	b.declare(t, q)
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": amqpURL, "queueName": q, "mode": "QueueLength", "value": "5"}})

	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External.Metric.Name != "s0-rabbitmq-"+q {
		t.Fatalf("metric spec name = %+v, want s0-rabbitmq-%s", specs, q)
	}
	if got := specs[0].External.Target.AverageValue.MilliValue(); got != 5000 {
		t.Fatalf("target = %dm, want 5000m", got)
	}

	if v, active := sample(t, s); v != 0 || active {
		t.Fatalf("empty queue: value=%v active=%v, want 0/false", v, active)
	}
	b.publish(t, q, 7)
	if v, active := sample(t, s); v != 7 || !active {
		t.Fatalf("after 7 publishes: value=%v active=%v, want 7/true", v, active)
	}
	// Consume 3 with ack: 4 remain ready.
	for i := 0; i < 3; i++ {
		if _, ok, err := b.ch.Get(q, true); err != nil || !ok {
			t.Fatalf("get: ok=%v err=%v", ok, err)
		}
	}
	if v, _ := sample(t, s); v != 4 {
		t.Fatalf("after consuming 3: value=%v, want 4", v)
	}
	b.purge(t, q)
	if v, active := sample(t, s); v != 0 || active {
		t.Fatalf("after purge: value=%v active=%v, want 0/false", v, active)
	}
}

func TestAMQPActivationValue(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q := uniqueQueue(t)
	b.declare(t, q)
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": amqpURL, "queueName": q, "value": "10", "mode": "QueueLength", "activationValue": "3"}})
	b.publish(t, q, 3)
	if v, active := sample(t, s); v != 3 || active {
		t.Fatalf("3 messages, activationValue 3: value=%v active=%v, want 3/false", v, active)
	}
	b.publish(t, q, 1)
	if v, active := sample(t, s); v != 4 || !active {
		t.Fatalf("4 messages, activationValue 3: value=%v active=%v, want 4/true", v, active)
	}
}

func TestAMQPMissingQueueRecovers(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q := uniqueQueue(t)
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": amqpURL, "queueName": q}})
	_, _, err := s.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rabbitmq trigger") || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("missing queue: err=%v, want a rabbitmq trigger NOT_FOUND error", err)
	}
	// The failed passive declare closed the channel; the scaler must open a new one once the queue exists.
	b.declare(t, q)
	b.publish(t, q, 2)
	if v, active := sample(t, s); v != 2 || !active {
		t.Fatalf("after creating the queue: value=%v active=%v, want 2/true", v, active)
	}
}

func TestAMQPVhostNameAndAuthParams(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q := uniqueQueue(t)
	b.declare(t, q)
	b.publish(t, q, 2)
	// Credentials from authParams, host from the container environment, vhost from vhostName.
	s := newScaler(t, scalertest.Trigger{
		MD:   map[string]string{"hostFromEnv": "RABBIT_HOST", "queueName": q, "vhostName": "/"},
		Env:  map[string]string{"RABBIT_HOST": "amqp://127.0.0.1:5672/ignored"},
		Auth: map[string]string{"username": "guest", "password": "guest"},
	})
	if v, _ := sample(t, s); v != 2 {
		t.Fatalf("value=%v, want 2", v)
	}
	if s.MetricSpecs()[0].External.Target.AverageValue.Value() != defaultQueueLength {
		t.Fatalf("default target: got %v, want %d", s.MetricSpecs()[0].External.Target.AverageValue, defaultQueueLength)
	}
}

func TestAMQPSharedConnection(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q1, q2 := uniqueQueue(t), uniqueQueue(t)
	b.declare(t, q1)
	b.declare(t, q2)
	shared := scalers.NewShared()
	s1 := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": amqpURL, "queueName": q1}, Shared: shared})
	s2 := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": amqpURL, "queueName": q2}, Shared: shared})
	b.publish(t, q2, 1)
	if v, _ := sample(t, s1); v != 0 {
		t.Fatalf("q1 = %v, want 0", v)
	}
	if v, _ := sample(t, s2); v != 1 {
		t.Fatalf("q2 = %v, want 1", v)
	}
	if n := shared.Len(); n != 1 {
		t.Fatalf("shared clients = %d, want 1 connection for two triggers on the same broker", n)
	}
	_ = s1.Close(context.Background())
	_ = s2.Close(context.Background())
	if n := shared.Len(); n != 0 {
		t.Fatalf("shared clients after Close = %d, want 0", n)
	}
}

func TestHTTPQueueLength(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q := uniqueQueue(t)
	b.declare(t, q)
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": httpURL, "queueName": q, "mode": "QueueLength", "value": "10"}})
	ready := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": httpURL, "queueName": q, "mode": "QueueLength", "value": "10", "excludeUnacknowledged": "true"}})
	sampleUntil(t, s, 60*time.Second, "empty queue", func(v float64, active bool) bool { return v == 0 && !active })
	b.publish(t, q, 6)
	sampleUntil(t, s, 60*time.Second, "6 published", func(v float64, active bool) bool { return v == 6 && active })

	// Take 2 without acking them: messages stays 6 (ready+unacked), messages_ready drops to 4.
	for i := 0; i < 2; i++ {
		if _, ok, err := b.ch.Get(q, false); err != nil || !ok {
			t.Fatalf("get: ok=%v err=%v", ok, err)
		}
	}
	sampleUntil(t, ready, 60*time.Second, "excludeUnacknowledged", func(v float64, _ bool) bool { return v == 4 })
	sampleUntil(t, s, 60*time.Second, "messages with 2 unacked", func(v float64, _ bool) bool { return v == 6 })
	if err := b.ch.Nack(0, true, false); err != nil { // drop the two unacked deliveries
		t.Fatal(err)
	}
	b.purge(t, q)
	sampleUntil(t, s, 60*time.Second, "purged", func(v float64, active bool) bool { return v == 0 && !active })
}

func TestHTTPMessageRate(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q := uniqueQueue(t)
	b.declare(t, q)
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": httpURL, "queueName": q, "mode": "MessageRate", "value": "100"}})
	sampleUntil(t, s, 60*time.Second, "no publishes yet", func(v float64, active bool) bool { return v == 0 && !active })
	// Publish steadily in the background; the rate is computed over the management API's sample window.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = b.ch.PublishWithContext(ctx, "", q, false, false, amqp.Publishing{Body: []byte("r")})
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-done }()
	v, active := sampleUntil(t, s, 90*time.Second, "publish rate", func(v float64, active bool) bool { return v > 0 && active })
	t.Logf("publish rate %.1f msg/s", v)
	_ = active
}

func TestHTTPRegexOperations(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	prefix := uniqueQueue(t)
	q1, q2 := prefix+"-a", prefix+"-b"
	b.declare(t, q1)
	b.declare(t, q2)
	b.publish(t, q1, 3)
	b.publish(t, q2, 4)
	for _, tc := range []struct {
		name      string
		operation string
		pageSize  string
		want      float64
	}{
		{name: "sum", operation: "sum", pageSize: "100", want: 7},
		{name: "max", operation: "max", pageSize: "100", want: 4},
		{name: "avg", operation: "avg", pageSize: "100", want: 3.5},
		{name: "sum over pages of one", operation: "sum", pageSize: "1", want: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScaler(t, scalertest.Trigger{MD: map[string]string{
				"host": httpURL, "queueName": "^" + regexp.QuoteMeta(prefix) + "-.$", "useRegex": "true",
				"operation": tc.operation, "pageSize": tc.pageSize, "mode": "QueueLength", "value": "5",
			}})
			sampleUntil(t, s, 60*time.Second, tc.name, func(v float64, active bool) bool { return v == tc.want && active })
		})
	}
}

// watchLatency starts Watch, makes the source active with activate, and returns how long the wake-up took.
func watchLatency(t *testing.T, s *Scaler, activate func()) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, changed) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
	}()
	// Let Watch observe the empty queue first.
	time.Sleep(3 * s.meta.watchInterval())
	select {
	case <-changed:
		t.Fatal("Watch signalled while the queue was empty")
	default:
	}
	start := time.Now()
	activate()
	select {
	case <-changed:
		return time.Since(start)
	case <-time.After(s.Cfg.PollingInterval):
		t.Fatalf("no Watch wake-up within the %v polling interval", s.Cfg.PollingInterval)
		return 0
	}
}

func TestWatchAMQP(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q := uniqueQueue(t)
	b.declare(t, q)
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": amqpURL, "queueName": q}})
	lat := watchLatency(t, s, func() { b.publish(t, q, 1) })
	t.Logf("amqp watch wake-up after publish: %v (watchInterval %v, pollingInterval 60s)", lat, s.meta.watchInterval())
	if v, active := sample(t, s); v != 1 || !active {
		t.Fatalf("after wake-up: value=%v active=%v", v, active)
	}
}

func TestWatchHTTP(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	q := uniqueQueue(t)
	b.declare(t, q)
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": httpURL, "queueName": q, "watchInterval": "500ms"}})
	lat := watchLatency(t, s, func() { b.publish(t, q, 1) })
	t.Logf("http watch wake-up after publish: %v (management statistics refresh ~5s)", lat)
}

func TestCredentialsNeverLeak(t *testing.T) {
	t.Parallel()
	const secret = "Sup3rS3cretPa55"
	for _, tc := range []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		env      map[string]string
	}{
		{name: "amqp password in host URL", metadata: map[string]string{"host": "amqp://guest:" + secret + "@127.0.0.1:5672/", "queueName": "q"}},
		{name: "amqp password in authParams", metadata: map[string]string{"host": "amqp://127.0.0.1:5672/", "queueName": "q"}, auth: map[string]string{"username": "guest", "password": secret}},
		{name: "amqp host from env", metadata: map[string]string{"hostFromEnv": "H", "queueName": "q"}, env: map[string]string{"H": "amqp://guest:" + secret + "@127.0.0.1:5672/"}},
		{name: "amqp host in authParams", metadata: map[string]string{"queueName": "q"}, auth: map[string]string{"host": "amqp://guest:" + secret + "@127.0.0.1:5672/"}},
		{name: "amqp unreachable", metadata: map[string]string{"host": "amqp://guest:" + secret + "@127.0.0.1:1/", "queueName": "q"}},
		{name: "http password in host URL", metadata: map[string]string{"host": "http://guest:" + secret + "@127.0.0.1:15672/", "queueName": "q"}},
		{name: "http password in authParams", metadata: map[string]string{"host": "http://127.0.0.1:15672/", "queueName": "q"}, auth: map[string]string{"username": "guest", "password": secret}},
		{name: "http unreachable", metadata: map[string]string{"host": "http://guest:" + secret + "@127.0.0.1:1/", "queueName": "q"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.DebugLevel)
			s := newScaler(t, scalertest.Trigger{MD: tc.metadata, Auth: tc.auth, Env: tc.env, Logger: zap.New(core)})
			var errs []string
			_, _, err := s.Sample(context.Background())
			if err == nil {
				t.Fatal("Sample with a wrong password succeeded")
			}
			errs = append(errs, err.Error())
			// Watch logs its read failures (RabbitMQ answers a bad password after ~3s).
			ctx, cancel := context.WithCancel(context.Background())
			watchDone := make(chan struct{})
			go func() { defer close(watchDone); _ = s.Watch(ctx, make(chan struct{}, 1)) }()
			for deadline := time.Now().Add(30 * time.Second); logs.Len() == 0 && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			<-watchDone
			if err := s.Close(context.Background()); err != nil {
				errs = append(errs, err.Error())
			}
			if logs.Len() == 0 {
				t.Fatal("Watch logged nothing about the failing reads")
			}
			scalertest.AssertNoSecret(t, secret, strings.Join(errs, "\n"), logs.All())
			t.Logf("error: %v", err)
		})
	}
	// A metadata error about a bad host must not echo it either.
	cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{"host": "amqp://guest:" + secret + "@127.0.0.1:5672/%zz", "queueName": "q"}}
	if _, err := New(context.Background(), cfg); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("bad host: err=%v, want an error without the password", err)
	}
}

// TestOAuth: the management API behind an OAuth2 gateway (RFC 6749 client credentials; the resource server
// checks the bearer token and answers as the management API does).
func TestOAuth(t *testing.T) {
	t.Parallel()
	oauthtest.CheckScaler(t, oauthtest.ScalerCase{Type: TriggerType, New: New, Want: 6,
		Resource: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"name":"orders","messages":6,"messages_ready":6}`))
		}),
		Metadata: func(u string) map[string]string {
			return map[string]string{"host": u + "/", "queueName": "orders", "mode": "QueueLength", "value": "1"}
		}})
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	names := map[string]string{}
	for _, q := range []string{"orders", "a/b", "Orders.V2"} {
		s := newScaler(t, scalertest.Trigger{MD: map[string]string{"host": amqpURL, "queueName": q}})
		names[q] = s.MetricSpecs()[0].External.Metric.Name
	}
	want := map[string]string{"orders": "s0-rabbitmq-orders", "a/b": "s0-rabbitmq-a-2fb", "Orders.V2": "s0-rabbitmq-orders-v2"}
	for q, w := range want {
		if names[q] != w {
			t.Errorf("metric name for %q = %q, want %q", q, names[q], w)
		}
	}
}
