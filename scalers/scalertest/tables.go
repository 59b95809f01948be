package scalertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
)

// NewCase is one row of a NewTable: a trigger's metadata, auth parameters, resolved environment and metricType,
// and either WantErr, a text New's error must contain (the field it names), or what the scaler must hold
// (WantMeta: its metadata, or the part of it a test compares) and the name of its one External metric
// (WantMetric; not checked when empty).
type NewCase[M comparable] struct {
	Name          string
	MD, Auth, Env map[string]string
	MetricType    autoscalingv2.MetricTargetType
	WantErr       string
	WantMeta      M
	WantMetric    string
}

// NewTable runs each case as a parallel subtest of a trigger of triggerType named name (empty: unnamed), built
// with newFn. A case with WantErr must fail to build with an error that names the trigger and contains WantErr;
// any other must build, hold WantMeta (read by meta) and have one External metric, named WantMetric, whose
// target type is the case's MetricType (AverageValue when empty).
func NewTable[M comparable, R scalers.Scaler](t *testing.T, triggerType, name string, newFn func(context.Context, *scalers.TriggerConfig) (R, error), meta func(R) M, cases []NewCase[M]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: triggerType, Name: name, Metadata: tc.MD, AuthParams: tc.Auth, ResolvedEnv: tc.Env, MetricType: tc.MetricType}
			s, err := newFn(context.Background(), cfg)
			if tc.WantErr != "" {
				if err == nil {
					_ = s.Close(context.Background())
					t.Fatalf("New succeeded, want error containing %q", tc.WantErr)
				}
				if !strings.Contains(err.Error(), cfg.ID()) || !strings.Contains(err.Error(), tc.WantErr) {
					t.Fatalf("error %q: want it to name the trigger and contain %q", err, tc.WantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close(context.Background())
			if got := meta(s); got != tc.WantMeta {
				t.Errorf("meta = %+v\nwant  %+v", got, tc.WantMeta)
			}
			specs := s.MetricSpecs()
			if len(specs) != 1 || specs[0].External == nil {
				t.Fatalf("specs = %+v, want one External metric", specs)
			}
			if got := specs[0].External.Metric.Name; tc.WantMetric != "" && got != tc.WantMetric {
				t.Errorf("metric = %q, want %q", got, tc.WantMetric)
			}
			wantType := tc.MetricType
			if wantType == "" {
				wantType = autoscalingv2.AverageValueMetricType
			}
			if got := specs[0].External.Target.Type; got != wantType {
				t.Errorf("target type = %s, want %s", got, wantType)
			}
		})
	}
}

// LeakCase is one row of a LeakTable: a trigger whose secret is wrong, or whose source is unreachable, so that it
// fails to build or to sample. Type, Name and Logger are set by LeakTable.
type LeakCase struct {
	Name string
	Cfg  scalers.TriggerConfig
}

// LeakTable runs each case as a subtest: it builds the trigger (of triggerType, named name, with a recording
// logger) with newFn and, when that succeeds, samples it once with a SampleFailsTimeout deadline. That Sample must
// fail with an error containing sampleErr (when not empty) and log the failure. Every error must name the
// trigger, and neither an error nor a log entry may hold secret.
func LeakTable[R scalers.Scaler](t *testing.T, triggerType, name string, newFn func(context.Context, *scalers.TriggerConfig) (R, error), secret, sampleErr string, cases []LeakCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			logger, logs := ObservedLogger()
			cfg := tc.Cfg
			cfg.Type, cfg.Name, cfg.Logger = triggerType, name, logger
			s, err := newFn(context.Background(), &cfg)
			if err == nil {
				defer s.Close(context.Background())
				if _, _, err = sampleWithin(s, SampleFailsTimeout); err == nil {
					t.Fatal("Sample succeeded, want it to fail")
				}
				if sampleErr != "" && !strings.Contains(err.Error(), sampleErr) {
					t.Errorf("error %q: want %q", err, sampleErr)
				}
				if len(logs.All()) == 0 {
					t.Error("expected a debug log entry for the failed Sample")
				}
			}
			t.Logf("error: %v", err)
			if strings.Contains(fmt.Sprintf("%+v", err), secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			if !strings.Contains(err.Error(), cfg.ID()) {
				t.Errorf("error %q does not name the trigger", err)
			}
			AssertNoSecret(t, secret, err.Error(), logs.All())
		})
	}
}

// FuzzNew is the body of a constructor fuzz test: New, with an already cancelled context so nothing connects,
// must either fail with an error that names the trigger or build a scaler with one metric spec of the trigger's
// metricType (AverageValue by default).
func FuzzNew[R scalers.Scaler](t *testing.T, newFn func(context.Context, *scalers.TriggerConfig) (R, error), cfg *scalers.TriggerConfig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := newFn(ctx, cfg)
	if err != nil {
		if !strings.Contains(err.Error(), cfg.Type+" trigger") {
			t.Fatalf("error %q does not name the trigger", err)
		}
		return
	}
	defer s.Close(context.Background())
	if specs := s.MetricSpecs(); len(specs) != 1 || specs[0].External.Target.Type != autoscalingv2.AverageValueMetricType {
		t.Fatalf("specs = %+v, want one AverageValue metric", specs)
	}
}

// SourceDownTimeout bounds the Sample of SourceDown, which may wait for a client's retries.
const SourceDownTimeout = 60 * time.Second

// SourceDown checks that s reads its source, then that once stop has taken the source away (closed the fake
// server) a Sample fails, within SourceDownTimeout, with an error containing want (the call that failed).
func SourceDown(t testing.TB, s scalers.Scaler, stop func(), want string) {
	t.Helper()
	Sample(t, s, "")
	stop()
	if _, _, err := sampleWithin(s, SourceDownTimeout); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("source down: err = %v, want an error containing %q", err, want)
	}
}
