package onemetric

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestBase(t *testing.T) {
	logger, logs := scalertest.ObservedLogger()
	cfg := &scalers.TriggerConfig{Type: "test", Name: "jobs", Logger: logger, MetricType: autoscalingv2.ValueMetricType}
	value, readErr := 0.0, error(nil)
	var deadline time.Duration
	b := New(cfg, "s0-test-jobs", 4, 2, func(ctx context.Context) (float64, error) {
		d, _ := ctx.Deadline()
		deadline = time.Until(d)
		return value, readErr
	})
	specs := b.MetricSpecs()
	if len(specs) != 1 || specs[0].External.Metric.Name != "s0-test-jobs" || specs[0].External.Target.Value.Value() != 4 {
		t.Fatalf("specs = %+v, want one Value metric s0-test-jobs targeting 4", specs)
	}
	for _, tc := range []struct {
		value  float64
		active bool
	}{{0, false}, {2, false}, {2.5, true}} {
		value = tc.value
		if v, active := scalertest.Sample(t, &b, "s0-test-jobs"); v != tc.value || active != tc.active {
			t.Errorf("value %v: Sample = (%v, %v), want (%v, %v)", tc.value, v, active, tc.value, tc.active)
		}
	}
	if deadline <= 0 || deadline > scalers.CallTimeout {
		t.Errorf("read ran %v before its deadline, want at most CallTimeout", deadline)
	}
	b.Timeout = 30 * time.Second
	scalertest.Sample(t, &b, "")
	if deadline <= scalers.CallTimeout {
		t.Errorf("with Timeout 30s the read ran %v before its deadline", deadline)
	}

	readErr = cfg.Errorf("queue: gone")
	if _, active, err := b.Sample(context.Background()); !errors.Is(err, readErr) || active {
		t.Fatalf("Sample = (%v, %v), want the read's error, inactive", active, err)
	}
	if entries := logs.FilterMessage("test sample failed").All(); len(entries) != 1 || entries[0].ContextMap()["trigger"] != cfg.ID() {
		t.Errorf("failure log = %+v, want one entry naming the trigger", logs.All())
	}

	b.Source, readErr = `queue "orders"`, errors.New("connection refused")
	if _, _, err := b.Sample(context.Background()); !errors.Is(err, readErr) || !strings.Contains(err.Error(), `test trigger "jobs": queue "orders": connection refused`) {
		t.Fatalf("Sample error = %v, want the read's error named by the trigger and Source", err)
	}

	released := 0
	b.Release = func() error { released++; return errors.New("released") }
	if err := b.Close(context.Background()); err == nil || released != 1 {
		t.Fatalf("Close = %v after %d releases, want Release's error", err, released)
	}
	if err := b.Close(context.Background()); err != nil || released != 1 {
		t.Fatalf("second Close = %v after %d releases, want nil and no second release", err, released)
	}
}
