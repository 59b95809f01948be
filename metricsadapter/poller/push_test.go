package poller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidalscale/tidal/autoscaler/samples"

	"github.com/tidalscale/tidal/internal/testenv"
)

func TestPushSamplesImmediately(t *testing.T) {
	src := newSource()
	h := start(t, src, Options{})
	const interval = 60 * time.Second
	s := spec("pushed", 1, interval, "testpush", "q")
	updates, cancel := h.p.Subscribe(64)
	defer cancel()
	mustUpsert(t, h.p, s)
	if err := h.p.SampleNow(context.Background(), s.Key); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "watch started", 30*time.Second, func() (bool, string) { return src.watchCalls.Load() == 1, "" })

	src.value.Store(7)
	signalled := time.Now()
	src.signalPush()
	u := receive(t, updates, "pushed sample with value 7", func(u samples.Update) bool { return value(u) == 7 })
	latency := time.Since(signalled)
	t.Logf("push → sample latency %s (polling interval %s)", latency, interval)
	if latency >= interval {
		t.Errorf("pushed sample arrived after %s, not before the %s interval", latency, interval)
	}
	if !u.Trigger.Pushed || !u.Trigger.Active || !u.ActivityChanged {
		t.Errorf("pushed update = %+v, want Pushed, Active and ActivityChanged", u)
	}
}

func TestWatchFailureFallsBackToPolling(t *testing.T) {
	src := newSource()
	src.watchErr = errors.New("keyspace notifications disabled for user with password hunter2-secret")
	core, logs := observer.New(zapcore.DebugLevel)
	h := start(t, src, Options{Logger: zap.New(core)})
	s := spec("nopush", 1, 20*time.Millisecond, "testpush", "q")
	mustUpsert(t, h.p, s)

	// The first retry comes after a one-second backoff; meanwhile polling goes on.
	testenv.Eventually(t, "watch retried and failed again", 30*time.Second, func() (bool, string) {
		return logs.FilterMessage("push watch failed again").Len() >= 1, ""
	})
	testenv.Eventually(t, "polled samples", 30*time.Second, func() (bool, string) { return src.calls.Load() >= 5, "" })
	h.stop()

	warns := logs.FilterMessage("push watch failed; polling at the interval and retrying the watch").All()
	if len(warns) != 1 {
		t.Errorf("watch failure logged %d times at warn level, want once", len(warns))
	}
	for _, w := range warns {
		fields := w.ContextMap()
		if fields["scaledObject"] != "ns/nopush" || fields["trigger"] != "q" || fields["type"] != "testpush" {
			t.Errorf("warn fields = %v", fields)
		}
		if w.Level != zapcore.WarnLevel {
			t.Errorf("level = %s", w.Level)
		}
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		if strings.Contains(line, "hunter2-secret") {
			t.Errorf("secret in log entry: %s", line)
		}
	}
	if n := src.watchCalls.Load(); n < 2 {
		t.Errorf("watch called %d times, want retries", n)
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

func TestWatchRecoversAfterBackoff(t *testing.T) {
	src := newSource()
	src.watchErr = errors.New("connection refused")
	src.watchFailFirst = 1
	h := start(t, src, Options{Logger: zap.NewNop()})
	s := spec("flappy", 1, time.Minute, "testpush", "q")
	updates, cancel := h.p.Subscribe(64)
	defer cancel()
	mustUpsert(t, h.p, s)
	if err := h.p.SampleNow(context.Background(), s.Key); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "watch retried", 30*time.Second, func() (bool, string) { return src.watchCalls.Load() >= 2, "" })

	src.value.Store(5)
	src.signalPush()
	u := receive(t, updates, "pushed sample after the watch recovered", func(u samples.Update) bool { return value(u) == 5 })
	if !u.Trigger.Pushed {
		t.Errorf("update = %+v, want Pushed", u.Trigger)
	}
}
