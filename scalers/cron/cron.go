// Package cron implements KEDA's "cron" scaler: a fixed replica count inside a recurring time window.
//
// Metadata, as in KEDA: timezone (an IANA name such as Europe/Paris, required), start and end (standard 5-field
// cron expressions, required and different), desiredReplicas (required, > 0). The window is [start, end): it
// opens at a start time and closes at the first end time after it; a window may span midnight.
//
// The metric, as in KEDA, has target 1 and value desiredReplicas inside the window and 1 outside it, and the
// trigger is active only inside the window. So the HPA (or Tidal's direct mode) asks for desiredReplicas during
// the window; outside it this trigger asks for at most one replica, and, being inactive, lets the workload go to
// zero when minReplicaCount is 0 and no other trigger is active.
//
// The scaler is a scalers.PushScaler: Watch sleeps until the next window edge and then wakes the caller, so a
// window opens and closes on time rather than up to one polling interval late.
package cron

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // timezone must resolve in minimal images without /usr/share/zoneinfo.

	robfig "github.com/robfig/cron/v3"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
)

// Type is the trigger type.
const Type = "cron"

// inactiveValue is the metric value outside the window (KEDA's defaultDesiredReplicas).
const inactiveValue = 1

// Options injects time, so tests need not sleep. The zero value means the real clock.
type Options struct {
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// After is time.After; Watch waits on it for the next window edge.
	After func(d time.Duration) <-chan time.Time
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	return o
}

// Register adds the cron scaler.
func Register(r *scalers.Registry) {
	r.Register(New, Type)
	r.Describe(metadata{}, Type)
}

// New builds a cron scaler on the real clock. It is a scalers.Builder.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return NewWithOptions(ctx, cfg, Options{})
}

// metadata is the cron trigger's metadata.
type metadata struct {
	Timezone        string `tidal:"name=timezone"`
	Start           string `tidal:"name=start"`
	End             string `tidal:"name=end"`
	DesiredReplicas int64  `tidal:"name=desiredReplicas,range=1;"`

	loc        *time.Location
	start, end robfig.Schedule
}

// Validate resolves the time zone and parses both schedules; scalers.Parse calls it.
func (m *metadata) Validate() error {
	var errs []error
	if m.Timezone == "" {
		errs = append(errs, errors.New("timezone: must not be empty; give an IANA name such as Europe/Paris"))
	} else if loc, err := time.LoadLocation(m.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone: unknown IANA time zone %q", m.Timezone))
	} else {
		m.loc = loc
	}
	var err error
	if m.start, err = parseSchedule(m.Start); err != nil {
		errs = append(errs, fmt.Errorf("start: %w", err))
	}
	if m.end, err = parseSchedule(m.End); err != nil {
		errs = append(errs, fmt.Errorf("end: %w", err))
	}
	if len(errs) == 0 && normalize(m.Start) == normalize(m.End) {
		errs = append(errs, fmt.Errorf("end: must differ from start, both are %q", m.Start))
	}
	return errors.Join(errs...)
}

// parseSchedule parses a standard 5-field cron expression (minute hour day-of-month month day-of-week), the
// format KEDA accepts.
func parseSchedule(spec string) (sched robfig.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("must not be empty; give a 5-field cron expression such as \"0 8 * * 1-5\"")
	}
	// robfig/cron v3.0.1 slices out of range on a TZ= prefix without a following space.
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		return nil, fmt.Errorf("want a 5-field cron expression, got %q", spec)
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("want a 5-field cron expression, got %q", spec)
		}
	}()
	p := robfig.NewParser(robfig.Minute | robfig.Hour | robfig.Dom | robfig.Month | robfig.Dow)
	sched, err = p.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("want a 5-field cron expression, got %q: %w", spec, err)
	}
	return sched, nil
}

func normalize(spec string) string { return strings.Join(strings.Fields(spec), " ") }

// scaler reports desiredReplicas inside the window.
type scaler struct {
	cfg    *scalers.TriggerConfig
	meta   *metadata
	metric string
	opts   Options
}

var _ scalers.PushScaler = (*scaler)(nil)

// NewWithOptions builds a cron scaler with an injected clock.
func NewWithOptions(_ context.Context, cfg *scalers.TriggerConfig, opts Options) (scalers.Scaler, error) {
	cfg.Normalize()
	opts = opts.withDefaults()
	m := &metadata{}
	if err := scalers.Parse(cfg, m); err != nil {
		return nil, err
	}
	now := opts.Now().In(m.loc)
	if m.start.Next(now).IsZero() {
		return nil, cfg.Errorf("start: %q never fires", m.Start)
	}
	if m.end.Next(now).IsZero() {
		return nil, cfg.Errorf("end: %q never fires", m.End)
	}
	name := fmt.Sprintf("%s-%s-%s", m.Timezone, metricPart(m.Start), metricPart(m.End))
	return &scaler{cfg: cfg, meta: m, metric: cfg.MetricName("cron", name), opts: opts}, nil
}

// metricPart encodes a cron expression for the metric name the way KEDA does.
func metricPart(spec string) string {
	return strings.NewReplacer(" ", "", "*", "x", "/", "Sl", "?", "Qm").Replace(spec)
}

// MetricSpecs returns one External metric with target 1, as in KEDA.
func (s *scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metric, 1)}
}

// Sample returns desiredReplicas and active inside the window, 1 and inactive outside it.
func (s *scaler) Sample(context.Context) ([]scalers.Sample, bool, error) {
	active := s.inWindow(s.opts.Now())
	v := float64(inactiveValue)
	if active {
		v = float64(s.meta.DesiredReplicas)
	}
	return []scalers.Sample{{MetricName: s.metric, Value: v}}, active, nil
}

// inWindow reports whether t lies in [start, end): the next end comes no later than the next start. A
// schedule that no longer fires counts as firing never.
func (s *scaler) inWindow(t time.Time) bool {
	t = t.In(s.meta.loc)
	nextStart, nextEnd := s.meta.start.Next(t), s.meta.end.Next(t)
	if nextEnd.IsZero() {
		return false
	}
	return nextStart.IsZero() || !nextEnd.After(nextStart)
}

// Watch wakes the caller at each window edge (every start and end time) until ctx is done.
func (s *scaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	for {
		now := s.opts.Now().In(s.meta.loc)
		next := earliest(s.meta.start.Next(now), s.meta.end.Next(now))
		if next.IsZero() {
			<-ctx.Done()
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.opts.After(next.Sub(now)):
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero(), a.Before(b):
		return a
	}
	return b
}

// Close has nothing to release.
func (s *scaler) Close(context.Context) error { return nil }
