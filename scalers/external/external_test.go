package external

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"

	"github.com/tidalscale/tidal/internal/testenv"
)

func queueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func newExternal(t testing.TB, cfg *scalers.TriggerConfig) scalers.Scaler {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := New
	if cfg.Type == PushType {
		b = NewPush
	}
	s, err := b(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func sampleOK(t testing.TB, s scalers.Scaler) (map[string]float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vals, active, err := s.Sample(ctx)
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	out := map[string]float64{}
	for _, v := range vals {
		out[v.MetricName] = v.Value
	}
	return out, active
}

func TestSpecMetricsActivity(t *testing.T) {
	srv := startServer(t, newQueueServer())
	cases := []struct {
		name        string
		queue       string
		targetSize  string
		twoMetrics  bool
		wantTargetM int64 // milli
	}{
		{name: "int targetSize", queue: queueName("orders"), targetSize: "5", wantTargetM: 5000},
		{name: "float targetSizeFloat", queue: queueName("orders"), targetSize: "2.5", wantTargetM: 2500},
		{name: "mixed-case name is sanitized", queue: queueName("Orders_X"), targetSize: "3", wantTargetM: 3000},
		{name: "two metrics", queue: queueName("jobs"), targetSize: "4", twoMetrics: true, wantTargetM: 4000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]string{"scalerAddress": srv.addr, "queueName": tc.queue, "targetSize": tc.targetSize,
				"apiKeyFromEnv": "API_KEY", "missingFromEnv": "NOPE"}
			if tc.twoMetrics {
				meta["twoMetrics"] = "true"
			}
			s := newExternal(t, &scalers.TriggerConfig{Type: Type, Index: 3, Metadata: meta,
				ResolvedEnv: map[string]string{"API_KEY": "k-123"}, AuthParams: map[string]string{"apiToken": "never-sent"},
				ObjectNamespace: "shop", ObjectName: "worker"})

			specs := s.MetricSpecs()
			wantName := scalers.SanitizeMetricName("s3-" + tc.queue)
			if specs[0].External == nil || specs[0].External.Metric.Name != wantName {
				t.Fatalf("spec[0] = %+v, want metric %s", specs[0], wantName)
			}
			if got := specs[0].External.Target.AverageValue.MilliValue(); got != tc.wantTargetM {
				t.Errorf("target = %dm, want %dm", got, tc.wantTargetM)
			}
			if tc.twoMetrics && (len(specs) != 2 || specs[1].External.Metric.Name != wantName+"-x2") {
				t.Fatalf("specs = %+v, want a second metric %s-x2", specs, wantName)
			}

			// The scaler saw the object and every metadata entry, FromEnv resolved, and no authParams.
			ref := srv.impl.ref()
			if ref.GetName() != "worker" || ref.GetNamespace() != "shop" {
				t.Errorf("ref = %s/%s, want shop/worker", ref.GetNamespace(), ref.GetName())
			}
			wantMeta := maps.Clone(meta)
			wantMeta["apiKeyFromEnv"] = "k-123"
			delete(wantMeta, "missingFromEnv")
			if !maps.Equal(ref.GetScalerMetadata(), wantMeta) {
				t.Errorf("scalerMetadata = %v, want %v", ref.GetScalerMetadata(), wantMeta)
			}

			vals, active := sampleOK(t, s)
			if vals[wantName] != 0 || active {
				t.Errorf("empty: %v active %v", vals, active)
			}
			srv.impl.push(tc.queue, 7)
			vals, active = sampleOK(t, s)
			if vals[wantName] != 7 || !active {
				t.Errorf("loaded: %v active %v, want 7 true", vals, active)
			}
			if tc.twoMetrics && vals[wantName+"-x2"] != 14 {
				t.Errorf("second metric = %v, want 14", vals[wantName+"-x2"])
			}
			srv.impl.push(tc.queue, -7)
			vals, active = sampleOK(t, s)
			if vals[wantName] != 0 || active {
				t.Errorf("drained: %v active %v, want 0 false", vals, active)
			}
		})
	}
}

func TestBadSpecs(t *testing.T) {
	srv := startServer(t, newQueueServer())
	cases := []struct {
		name    string
		meta    map[string]string
		wantErr string
	}{
		{name: "server rejects metadata", meta: map[string]string{}, wantErr: "GetMetricSpec: rpc error: code = InvalidArgument desc = queueName is required"},
		{name: "zero target", meta: map[string]string{"queueName": "q", "targetSize": "0"}, wantErr: "targetSize/targetSizeFloat must be between 0.001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := maps.Clone(tc.meta)
			meta["scalerAddress"] = srv.addr
			_, err := New(context.Background(), &scalers.TriggerConfig{Type: Type, Name: "ext", Metadata: meta})
			if err == nil || !strings.Contains(err.Error(), `external trigger "ext": scalerAddress `+srv.addr) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one naming the trigger and scalerAddress and containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestServerDown: one trigger's scaler going away fails that trigger only.
func TestServerDown(t *testing.T) {
	up := startServer(t, newQueueServer())
	down := startServer(t, newQueueServer())
	q := queueName("q")
	a := newExternal(t, &scalers.TriggerConfig{Type: Type, Name: "a", Metadata: map[string]string{"scalerAddress": up.addr, "queueName": q, "targetSize": "1"}})
	b := newExternal(t, &scalers.TriggerConfig{Type: Type, Name: "b", Metadata: map[string]string{"scalerAddress": down.addr, "queueName": q, "targetSize": "1"}})
	down.stop()
	up.impl.push(q, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := b.Sample(ctx); err == nil || !strings.Contains(err.Error(), `external trigger "b": scalerAddress `+down.addr) || !strings.Contains(err.Error(), "Unavailable") {
		t.Fatalf("down trigger: err = %v, want Unavailable naming trigger b and its scalerAddress", err)
	}
	if vals, active := sampleOK(t, a); !active || vals[scalers.SanitizeMetricName("s0-"+q)] != 2 {
		t.Fatalf("up trigger: %v active %v, want 2 true", vals, active)
	}
	// An error from the scaler itself is a Sample error too.
	up.impl.mu.Lock()
	up.impl.failNext = codes.Internal
	up.impl.mu.Unlock()
	if _, _, err := a.Sample(ctx); err == nil || !strings.Contains(err.Error(), "Internal") {
		t.Fatalf("injected failure: err = %v", err)
	}
	// A scaler that is down at build time fails the build, naming the address.
	_, err := New(ctx, &scalers.TriggerConfig{Type: Type, Name: "c", Metadata: map[string]string{"scalerAddress": down.addr, "queueName": q}})
	if err == nil || !strings.Contains(err.Error(), `external trigger "c": scalerAddress `+down.addr+": GetMetricSpec") {
		t.Fatalf("build against a down scaler: err = %v", err)
	}
}

func TestSharedConnection(t *testing.T) {
	srv := startServer(t, newQueueServer())
	shared := scalers.NewShared()
	mk := func(i int) scalers.Scaler {
		return newExternal(t, &scalers.TriggerConfig{Type: Type, Index: i, Shared: shared,
			Metadata: map[string]string{"scalerAddress": srv.addr, "queueName": queueName("q"), "targetSize": "1"}})
	}
	a, b := mk(0), mk(1)
	if shared.Len() != 1 {
		t.Fatalf("shared clients = %d, want 1", shared.Len())
	}
	sampleOK(t, a)
	_ = a.Close(context.Background())
	sampleOK(t, b)
	_ = b.Close(context.Background())
	if shared.Len() != 0 {
		t.Fatalf("after close: %d clients, want 0", shared.Len())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, what, 60*time.Second, func() (bool, string) { return cond(), "" })
}

// expectWake waits (well under the 60 s polling interval) for a wake-up and returns its latency.
func expectWake(t *testing.T, changed <-chan struct{}, since time.Time) time.Duration {
	t.Helper()
	select {
	case <-changed:
		return time.Since(since)
	case <-time.After(59 * time.Second):
		t.Fatal("no Watch wake-up before the 60s polling interval")
		return 0
	}
}

func TestPushWakeUpAndReconnect(t *testing.T) {
	srv := startServer(t, newQueueServer())
	q := queueName("push")
	s := newExternal(t, &scalers.TriggerConfig{Type: PushType, PollingInterval: 60 * time.Second,
		Metadata: map[string]string{"scalerAddress": srv.addr, "queueName": q, "targetSize": "1"}})
	ps, ok := s.(*PushScaler)
	if !ok {
		t.Fatalf("external-push built %T, want *PushScaler", s)
	}
	ps.minBackoff, ps.maxBackoff = 20*time.Millisecond, 200*time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- ps.Watch(ctx, changed) }()

	waitFor(t, "stream to open", func() bool { return srv.impl.openStreams() == 1 })
	select {
	case <-changed:
		t.Fatal("woken while the queue is empty")
	default:
	}
	start := time.Now()
	srv.impl.push(q, 1)
	lat := expectWake(t, changed, start)
	t.Logf("push wake-up latency: %v (polling interval 60s)", lat)
	if _, active := sampleOK(t, s); !active {
		t.Error("woken but Sample says inactive")
	}

	// The scaler restarts: Watch reconnects with backoff and wakes on the next message.
	srv.restart()
	waitFor(t, "stream to reopen", func() bool { return srv.impl.openStreams() == 1 })
	// The reopened stream's first message reports the queue active again.
	expectWake(t, changed, time.Now())
	start = time.Now()
	srv.impl.push(q, 1)
	lat = expectWake(t, changed, start)
	t.Logf("wake-up latency after reconnect: %v", lat)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestPushUnimplementedFallsBack(t *testing.T) {
	impl := newQueueServer()
	impl.noStream = true
	srv := startServer(t, impl)
	s := newExternal(t, &scalers.TriggerConfig{Type: PushType, Name: "nostream",
		Metadata: map[string]string{"scalerAddress": srv.addr, "queueName": queueName("q"), "targetSize": "1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.(scalers.PushScaler).Watch(ctx, make(chan struct{}, 1))
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), `external-push trigger "nostream"`) || !strings.Contains(err.Error(), "Unimplemented") {
		t.Fatalf("Watch = %v, want an Unimplemented error naming the trigger before ctx ends", err)
	}
}

func TestExternalIsNotPush(t *testing.T) {
	srv := startServer(t, newQueueServer())
	r := scalers.NewRegistry()
	Register(r)
	for _, tc := range []struct {
		typ      string
		wantPush bool
	}{{Type, false}, {PushType, true}} {
		s, err := r.New(context.Background(), scalers.TriggerConfig{Type: tc.typ, Metadata: map[string]string{"scalerAddress": srv.addr, "queueName": "q", "targetSize": "1"}})
		if err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		if _, isPush := s.(scalers.PushScaler); isPush != tc.wantPush {
			t.Errorf("%s: PushScaler = %v, want %v", tc.typ, isPush, tc.wantPush)
		}
		_ = s.Close(context.Background())
	}
}

func TestTLS(t *testing.T) {
	pki := scalertest.NewPKI(t)
	srv := startServer(t, newQueueServer(), mTLSServerOption(pki))
	plain := startServer(t, newQueueServer())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(pki.CA), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		addr    string
		meta    map[string]string
		auth    map[string]string
		wantErr string
	}{
		{name: "mTLS with caCert", addr: srv.addr, auth: map[string]string{"caCert": pki.CA, "tlsClientCert": pki.ClientCert, "tlsClientKey": pki.ClientKey}},
		{name: "tlsCertFile is refused, never read", addr: srv.addr, meta: map[string]string{"tlsCertFile": caFile}, auth: map[string]string{"tlsClientCert": pki.ClientCert, "tlsClientKey": pki.ClientKey}, wantErr: "tlsCertFile: not supported"},
		{name: "mTLS with unsafeSsl", addr: srv.addr, meta: map[string]string{"unsafeSsl": "true"}, auth: map[string]string{"tlsClientCert": pki.ClientCert, "tlsClientKey": pki.ClientKey}},
		{name: "no client certificate", addr: srv.addr, auth: map[string]string{"caCert": pki.CA}, wantErr: "GetMetricSpec"},
		{name: "unknown CA", addr: srv.addr, meta: map[string]string{"enableTLS": "true"}, auth: map[string]string{"tlsClientCert": pki.ClientCert, "tlsClientKey": pki.ClientKey}, wantErr: "certificate"},
		{name: "plaintext to a TLS server", addr: srv.addr, wantErr: "GetMetricSpec"},
		{name: "TLS to a plaintext server", addr: plain.addr, meta: map[string]string{"enableTLS": "true"}, wantErr: "GetMetricSpec"},
		{name: "garbage caCert", addr: srv.addr, auth: map[string]string{"caCert": "not a pem"}, wantErr: "caCert: no PEM certificate found"},
		{name: "missing tlsCertFile", addr: srv.addr, meta: map[string]string{"tlsCertFile": "/nonexistent/ca.pem"}, wantErr: "tlsCertFile: not supported"},
		{name: "mismatched key", addr: srv.addr, auth: map[string]string{"caCert": pki.CA, "tlsClientCert": pki.ClientCert, "tlsClientKey": scalertest.NewPKI(t).ClientKey}, wantErr: "tlsClientCert, tlsClientKey: not a matching"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]string{"scalerAddress": tc.addr, "queueName": queueName("tls"), "targetSize": "1"}
			maps.Copy(meta, tc.meta)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := New(ctx, &scalers.TriggerConfig{Type: Type, Name: "tls", Metadata: meta, AuthParams: tc.auth})
			if tc.wantErr != "" {
				if err == nil {
					_ = s.Close(context.Background())
					t.Fatalf("New succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), `external trigger "tls"`) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to name the trigger and contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Fatalf("error leaks key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close(context.Background())
			if _, active := sampleOK(t, s); active {
				t.Error("empty queue reported active")
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	cases := []struct {
		name    string
		meta    map[string]string
		auth    map[string]string
		want    Metadata
		wantErr string
		mt      autoscalingv2.MetricTargetType
	}{
		{name: "address only", meta: map[string]string{"scalerAddress": "svc:6000"}, want: Metadata{ScalerAddress: "svc:6000"}},
		{name: "tls fields", meta: map[string]string{"scalerAddress": "svc:6000", "enableTLS": "true", "unsafeSsl": "true"},
			auth: map[string]string{"caCert": "CA", "tlsClientCert": "C", "tlsClientKey": "K"},
			want: Metadata{ScalerAddress: "svc:6000", EnableTLS: true, UnsafeSsl: true, CACert: "CA", TLSClientCert: "C", TLSClientKey: "K"}},
		{name: "tlsCertFile refused", meta: map[string]string{"scalerAddress": "svc:6000", "tlsCertFile": "/etc/shadow"}, wantErr: "tlsCertFile: not supported"},
		{name: "tlsCertFile from auth refused", meta: map[string]string{"scalerAddress": "svc:6000"}, auth: map[string]string{"tlsCertFile": "/ca.pem"}, wantErr: "tlsCertFile: not supported"},
		{name: "scalerAddress from env", meta: map[string]string{"scalerAddressFromEnv": "ADDR"}, want: Metadata{ScalerAddress: "svc:1"}},
		{name: "utilization metricType", meta: map[string]string{"scalerAddress": "a:1"}, mt: autoscalingv2.UtilizationMetricType, wantErr: "metricType: Utilization is only for cpu and memory"},
		{name: "missing scalerAddress", meta: map[string]string{"queueName": "q"}, wantErr: `missing required parameter "scalerAddress"`},
		{name: "empty scalerAddress", meta: map[string]string{"scalerAddress": " "}, wantErr: "scalerAddress: must not be empty"},
		{name: "bad enableTLS", meta: map[string]string{"scalerAddress": "a:1", "enableTLS": "yes please"}, wantErr: "enableTLS: want true or false"},
		{name: "bad unsafeSsl", meta: map[string]string{"scalerAddress": "a:1", "unsafeSsl": "2"}, wantErr: "unsafeSsl: want true or false"},
		{name: "cert without key", meta: map[string]string{"scalerAddress": "a:1"}, auth: map[string]string{"tlsClientCert": "C"}, wantErr: "tlsClientCert, tlsClientKey: give both or neither"},
		{name: "key without cert", meta: map[string]string{"scalerAddress": "a:1"}, auth: map[string]string{"tlsClientKey": "K"}, wantErr: "give both or neither"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &scalers.TriggerConfig{Type: Type, Name: "ext", Metadata: tc.meta, AuthParams: tc.auth, ResolvedEnv: map[string]string{"ADDR": "svc:1"}, MetricType: tc.mt}
			got, err := ParseMetadata(cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), `external trigger "ext"`) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to name the trigger and contain %q", err, tc.wantErr)
				}
				// New reports the same problem without connecting anywhere.
				if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMetadata: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestSecretsNeverLeak: TLS credentials in authParams never appear in errors or logs, also while the
// external-push watch keeps failing against a scaler that went away.
func TestSecretsNeverLeak(t *testing.T) {
	pki := scalertest.NewPKI(t)
	srv := startServer(t, newQueueServer(), mTLSServerOption(pki))
	auth := map[string]string{"caCert": pki.CA, "tlsClientCert": pki.ClientCert, "tlsClientKey": pki.ClientKey}
	keyBody := strings.Split(pki.ClientKey, "\n")[1] // a line of the base64 key body

	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	s := newExternal(t, &scalers.TriggerConfig{Type: PushType, Name: "leak", Logger: logger, AuthParams: auth,
		Metadata: map[string]string{"scalerAddress": srv.addr, "queueName": queueName("s"), "targetSize": "1"}})
	ps := s.(*PushScaler)
	ps.minBackoff, ps.maxBackoff = 10*time.Millisecond, 50*time.Millisecond
	srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, _, err := s.Sample(ctx)
	if err == nil {
		t.Fatal("Sample against a stopped scaler succeeded")
	}
	check(err)
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ps.Watch(wctx, make(chan struct{}, 1)) }()
	waitFor(t, "reconnect attempts to be logged", func() bool { return logs.FilterMessage("StreamIsActive ended; reconnecting").Len() >= 3 })
	wcancel()
	check(<-done)
	cancel()

	// Build errors: a down address, and a mismatched pair.
	_, err = New(context.Background(), &scalers.TriggerConfig{Type: Type, Name: "leak", Logger: logger, AuthParams: auth,
		Metadata: map[string]string{"scalerAddress": srv.addr, "queueName": "q"}})
	check(err)
	bad := maps.Clone(auth)
	bad["tlsClientCert"] = scalertest.NewPKI(t).ClientCert
	_, err = New(context.Background(), &scalers.TriggerConfig{Type: Type, Name: "leak", Logger: logger, AuthParams: bad,
		Metadata: map[string]string{"scalerAddress": srv.addr, "queueName": "q"}})
	check(err)

	if len(errs) != 3 {
		t.Fatalf("got %d errors, want 3: %v", len(errs), errs)
	}
	for _, err := range errs {
		t.Logf("error: %v", err)
		if strings.Contains(err.Error(), keyBody) || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("error leaks the client key: %v", err)
		}
	}
	for _, e := range logs.All() {
		all := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(all, keyBody) || strings.Contains(all, "PRIVATE KEY") {
			t.Errorf("log entry leaks the client key: %q", all)
		}
	}
}

// TestCheckNeverDials: admission's offline check accepts a good trigger whose scaler is unreachable and refuses
// bad metadata, without any connection (the listener below must see none).
func TestCheckNeverDials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	r := scalers.NewRegistry()
	Register(r)
	for _, typ := range []string{Type, PushType} {
		if err := r.Check(context.Background(), scalers.TriggerConfig{Type: typ, Metadata: map[string]string{"scalerAddress": ln.Addr().String()}}); err != nil {
			t.Fatalf("%s: Check of a valid trigger: %v", typ, err)
		}
		err := r.Check(context.Background(), scalers.TriggerConfig{Type: typ, Metadata: map[string]string{"scalerAddress": ln.Addr().String(), "tlsCertFile": "/etc/passwd"}})
		if err == nil || !strings.Contains(err.Error(), "tlsCertFile") {
			t.Fatalf("%s: Check with tlsCertFile: want refused, got %v", typ, err)
		}
	}
	select {
	case <-accepted:
		t.Fatal("Check dialed the external scaler")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestNewErrorIsUntypedNil: a failed New returns a nil interface, so `if s != nil` checks hold.
func TestNewErrorIsUntypedNil(t *testing.T) {
	s, err := New(context.Background(), &scalers.TriggerConfig{Type: Type, Metadata: map[string]string{}})
	if err == nil {
		t.Fatal("want an error for missing scalerAddress")
	}
	if s != nil {
		t.Fatalf("New returned a non-nil %T with an error", s)
	}
}

func FuzzParseExternalMetadata(f *testing.F) {
	f.Add("127.0.0.1:1", "true", "false", "", "", "")
	f.Add("", "x", "", "/nope", "CERT", "")
	f.Add("dns:///svc:6000", "", "true", "", "", "KEY")
	f.Add("unix:///tmp/none.sock", "false", "1", "", "-----BEGIN CERTIFICATE-----", "-----BEGIN EC PRIVATE KEY-----")
	f.Add("[::1", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, addr, enableTLS, unsafeSsl, certFile, clientCert, clientKey string) {
		meta := map[string]string{"scalerAddress": addr, "enableTLS": enableTLS, "unsafeSsl": unsafeSsl, "tlsCertFile": certFile}
		for k, v := range meta {
			if v == "" {
				delete(meta, k)
			}
		}
		auth := map[string]string{"tlsClientCert": clientCert, "tlsClientKey": clientKey}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := New(ctx, &scalers.TriggerConfig{Type: Type, Metadata: meta, AuthParams: auth})
		if err == nil {
			_ = s.Close(context.Background())
			t.Fatal("New with a cancelled context cannot fetch metric specs, want error")
		}
		if !strings.Contains(err.Error(), "external trigger") {
			t.Fatalf("error %q does not name the trigger", err)
		}
	})
}

func BenchmarkSample(b *testing.B) {
	impl := newQueueServer()
	srv := startServer(b, impl)
	q := queueName("bench")
	impl.push(q, 3)
	s := newExternal(b, &scalers.TriggerConfig{Type: Type, Metadata: map[string]string{"scalerAddress": srv.addr, "queueName": q, "targetSize": "1"}})
	scalertest.BenchmarkSample(b, s)
}
