package scalertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
)

// FirstTimeout bounds each First and FirstNamed call; SampleFailsTimeout the Sample of SampleFails, which may
// wait for a client's retries.
const (
	FirstTimeout       = 20 * time.Second
	SampleFailsTimeout = 30 * time.Second
)

// Config returns the trigger configuration scaler tests build by hand: the trigger type and name, metadata,
// auth parameters and a fresh Shared. Logger is left nil (the scalers treat it as a no-op logger).
func Config(triggerType, name string, md, auth map[string]string) *scalers.TriggerConfig {
	return &scalers.TriggerConfig{Type: triggerType, Name: name, Metadata: md, AuthParams: auth, Shared: scalers.NewShared()}
}

// New builds a scaler from cfg with newFn (a package's New, or any constructor of that shape), fails tb with
// "New: <error>" when it fails, closes the scaler when tb's test ends and returns it as S. Name S where the
// package's concrete type is wanted: scalertest.New[*Scaler](t, New, cfg); a newFn that returns something that
// is not an S fails tb.
func New[S scalers.Scaler, R scalers.Scaler](tb testing.TB, newFn func(context.Context, *scalers.TriggerConfig) (R, error), cfg *scalers.TriggerConfig) S {
	tb.Helper()
	r, err := newFn(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close(context.Background()) })
	s, ok := any(r).(S)
	if !ok {
		tb.Fatalf("New returned a %T, want a %T", r, s)
	}
	return s
}

// First calls s.Sample with a FirstTimeout deadline and returns the first value, whether the trigger is active
// and the error, so that a test can check a failing Sample too. On an error, or when Sample returned no value,
// it returns 0, false and that error.
func First(s scalers.Scaler) (float64, bool, error) {
	vals, active, err := sample(s)
	if err != nil {
		return 0, false, err
	}
	if len(vals) == 0 {
		return 0, false, fmt.Errorf("Sample returned no values")
	}
	return vals[0].Value, active, nil
}

// FirstNamed is First for a scaler that must return exactly one value, named metricName; anything else is an
// "unexpected samples" error.
func FirstNamed(s scalers.Scaler, metricName string) (float64, bool, error) {
	vals, active, err := sample(s)
	if err != nil {
		return 0, false, err
	}
	if len(vals) != 1 || vals[0].MetricName != metricName {
		return 0, false, fmt.Errorf("unexpected samples %+v, want one value named %q", vals, metricName)
	}
	return vals[0].Value, active, nil
}

func sample(s scalers.Scaler) ([]scalers.Sample, bool, error) {
	return sampleWithin(s, FirstTimeout)
}

func sampleWithin(s scalers.Scaler, d time.Duration) ([]scalers.Sample, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Sample(ctx)
}

// SampleFails builds a scaler from cfg with newFn and a logger that records every entry, samples it once (with a
// SampleFailsTimeout deadline) and returns the error, for "wrong credentials" and "source unreachable" tests. It fails
// tb when New fails, when Sample succeeds or reports the trigger active, when the error does not contain want
// or, for a named trigger (cfg.Name set), does not name it as cfg.ID() does, and (AssertNoSecret) when one of
// secrets appears in the error or in a logged message or field. cfg.Logger is replaced.
func SampleFails[R scalers.Scaler](tb testing.TB, newFn func(context.Context, *scalers.TriggerConfig) (R, error), cfg *scalers.TriggerConfig, want string, secrets ...string) error {
	tb.Helper()
	logger, logs := ObservedLogger()
	cfg.Logger = logger
	s := New[scalers.Scaler](tb, newFn, cfg)
	_, active, err := sampleWithin(s, SampleFailsTimeout)
	if err == nil || active || !strings.Contains(err.Error(), want) {
		tb.Fatalf("Sample = (active %v, %v), want an error containing %q", active, err, want)
	}
	if cfg.Name != "" && !strings.Contains(err.Error(), cfg.ID()) {
		tb.Fatalf("Sample error %v, want it to name the %s", err, cfg.ID())
	}
	for _, secret := range secrets {
		AssertNoSecret(tb, secret, err.Error(), logs.All())
	}
	return err
}

// ParseCase is one row of a metadata table test (ParseTable): the metadata, auth parameters and resolved
// environment (Env) of a trigger, and either WantErr, a text the parse error must contain, or Check, run on the
// parsed metadata (nil: no check).
type ParseCase[M any] struct {
	Name          string
	MD, Auth, Env map[string]string
	WantErr       string
	Check         func(t *testing.T, m M)
}

// ParseTable runs each case as a parallel subtest: it parses the case's metadata, auth and environment into a
// fresh M with scalers.Parse for a trigger of triggerType. A case with WantErr fails unless the error names the
// trigger ("<triggerType> trigger") and contains WantErr, or when the error contains one of secrets; any other
// case fails on an error, then runs Check.
func ParseTable[M any](t *testing.T, triggerType string, cases []ParseCase[M], secrets ...string) {
	t.Helper()
	ParseTableFunc(t, triggerType, func(cfg *scalers.TriggerConfig) (M, error) {
		var m M
		err := scalers.Parse(cfg, &m)
		return m, err
	}, cases, secrets...)
}

// ParseTableFunc is ParseTable for a package whose own parse function (a ParseMetadata that validates more, or
// returns a pointer) is under test.
func ParseTableFunc[M any](t *testing.T, triggerType string, parse func(*scalers.TriggerConfig) (M, error), cases []ParseCase[M], secrets ...string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			m, err := parse(&scalers.TriggerConfig{Type: triggerType, Metadata: tc.MD, AuthParams: tc.Auth, ResolvedEnv: tc.Env})
			if tc.WantErr != "" {
				if err == nil || !strings.Contains(err.Error(), triggerType+" trigger") || !strings.Contains(err.Error(), tc.WantErr) {
					t.Fatalf("error %v, want it to name the %s trigger and %q", err, triggerType, tc.WantErr)
				}
				for _, secret := range secrets {
					AssertNoSecret(t, secret, err.Error(), nil)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.Check != nil {
				tc.Check(t, m)
			}
		})
	}
}
