package cron

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
)

// clock is a settable fake time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func trigger(md map[string]string) *scalers.TriggerConfig {
	return &scalers.TriggerConfig{Type: Type, Name: "window", Metadata: md}
}

func newAt(t testing.TB, md map[string]string, c *clock) *scaler {
	t.Helper()
	s, err := NewWithOptions(context.Background(), trigger(md), Options{Now: c.now})
	if err != nil {
		t.Fatalf("NewWithOptions(%v): %v", md, err)
	}
	return s.(*scaler)
}

// TestWindowByClock drives the scaler with an injected clock across window edges, weekdays, a window spanning
// midnight, time zone conversion and a daylight-saving change.
func TestWindowByClock(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	ny := mustLoad(t, "America/New_York")
	business := map[string]string{"timezone": "Europe/Paris", "start": "0 8 * * 1-5", "end": "0 17 * * 1-5", "desiredReplicas": "5"}
	overnight := map[string]string{"timezone": "Europe/Paris", "start": "0 22 * * *", "end": "0 6 * * *", "desiredReplicas": "3"}
	morningNY := map[string]string{"timezone": "America/New_York", "start": "0 9 * * *", "end": "0 10 * * *", "desiredReplicas": "2"}
	quarter := map[string]string{"timezone": "UTC", "start": "*/15 * * * *", "end": "5-59/15 * * * *", "desiredReplicas": "7"}

	cases := []struct {
		name       string
		md         map[string]string
		now        time.Time
		wantActive bool
		wantValue  float64
	}{
		{"business hours: a minute before start", business, time.Date(2026, 11, 25, 7, 59, 0, 0, paris), false, 1},
		{"business hours: exactly at start is inside", business, time.Date(2026, 11, 25, 8, 0, 0, 0, paris), true, 5},
		{"business hours: midday", business, time.Date(2026, 11, 25, 12, 0, 0, 0, paris), true, 5},
		{"business hours: last second", business, time.Date(2026, 11, 25, 16, 59, 59, 0, paris), true, 5},
		{"business hours: exactly at end is outside", business, time.Date(2026, 11, 25, 17, 0, 0, 0, paris), false, 1},
		{"business hours: saturday", business, time.Date(2026, 11, 28, 10, 0, 0, 0, paris), false, 1},
		{"business hours: clock in UTC, 07:30 UTC is 08:30 in Paris", business, time.Date(2026, 11, 25, 7, 30, 0, 0, time.UTC), true, 5},
		{"business hours: clock in UTC, 16:30 UTC is 17:30 in Paris", business, time.Date(2026, 11, 25, 16, 30, 0, 0, time.UTC), false, 1},
		{"overnight: before start", overnight, time.Date(2026, 11, 25, 21, 59, 0, 0, paris), false, 1},
		{"overnight: at start", overnight, time.Date(2026, 11, 25, 22, 0, 0, 0, paris), true, 3},
		{"overnight: after midnight", overnight, time.Date(2026, 11, 26, 2, 0, 0, 0, paris), true, 3},
		{"overnight: at end", overnight, time.Date(2026, 11, 26, 6, 0, 0, 0, paris), false, 1},
		{"overnight: midday", overnight, time.Date(2026, 11, 26, 12, 0, 0, 0, paris), false, 1},
		{"dst: 09:30 EST is 14:30 UTC the day before the change", morningNY, time.Date(2026, 3, 7, 14, 30, 0, 0, time.UTC), true, 2},
		{"dst: 14:30 UTC is 10:30 EDT after the change", morningNY, time.Date(2026, 3, 8, 14, 30, 0, 0, time.UTC), false, 1},
		{"dst: 13:30 UTC is 09:30 EDT after the change", morningNY, time.Date(2026, 3, 8, 13, 30, 0, 0, time.UTC), true, 2},
		{"dst: local clock in New York", morningNY, time.Date(2026, 3, 8, 9, 59, 0, 0, ny), true, 2},
		{"every quarter hour: inside the first five minutes", quarter, time.Date(2026, 11, 25, 10, 33, 0, 0, time.UTC), true, 7},
		{"every quarter hour: after the five minutes", quarter, time.Date(2026, 11, 25, 10, 37, 0, 0, time.UTC), false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newAt(t, tc.md, &clock{t: tc.now})
			got, active, err := s.Sample(context.Background())
			if err != nil {
				t.Fatalf("Sample: %v", err)
			}
			if active != tc.wantActive {
				t.Errorf("active = %v, want %v", active, tc.wantActive)
			}
			if len(got) != 1 || got[0].Value != tc.wantValue {
				t.Fatalf("samples = %+v, want one with value %v", got, tc.wantValue)
			}
			if got[0].MetricName != s.metric {
				t.Errorf("metric name %q, want %q", got[0].MetricName, s.metric)
			}
		})
	}
}

// TestWindowAcrossADay walks one day minute by minute and checks the business-hours window is open for exactly
// 9 hours, from 08:00 to 16:59 Paris time.
func TestWindowAcrossADay(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	c := &clock{}
	s := newAt(t, map[string]string{"timezone": "Europe/Paris", "start": "0 8 * * *", "end": "0 17 * * *", "desiredReplicas": "4"}, c)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, paris)
	var open []time.Time
	for m := 0; m < 24*60; m++ {
		c.t = day.Add(time.Duration(m) * time.Minute)
		if _, active, _ := s.Sample(context.Background()); active {
			open = append(open, c.t)
		}
	}
	if len(open) != 9*60 {
		t.Fatalf("window open %d minutes, want %d", len(open), 9*60)
	}
	if first, last := open[0], open[len(open)-1]; first.Hour() != 8 || first.Minute() != 0 || last.Hour() != 16 || last.Minute() != 59 {
		t.Fatalf("window from %s to %s, want 08:00 to 16:59", first.Format("15:04"), last.Format("15:04"))
	}
}

func TestMetricSpec(t *testing.T) {
	s := newAt(t, map[string]string{"timezone": "Europe/Paris", "start": "0 8 * * 1-5", "end": "0 17 * * 1-5", "desiredReplicas": "5"}, &clock{t: time.Now()})
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External == nil {
		t.Fatalf("specs = %+v, want one External", specs)
	}
	ext := specs[0].External
	if want := "s0-cron-europe-paris-08xx1-5-017xx1-5"; ext.Metric.Name != want {
		t.Errorf("metric name %q, want %q", ext.Metric.Name, want)
	}
	if ext.Target.Type != autoscalingv2.AverageValueMetricType || ext.Target.AverageValue == nil || ext.Target.AverageValue.Value() != 1 {
		t.Errorf("target %+v, want AverageValue 1", ext.Target)
	}
}

func TestMetadataErrors(t *testing.T) {
	valid := func(edit func(map[string]string)) map[string]string {
		md := map[string]string{"timezone": "Europe/Paris", "start": "0 8 * * *", "end": "0 17 * * *", "desiredReplicas": "5"}
		edit(md)
		return md
	}
	cases := []struct {
		name      string
		md        map[string]string
		wantField string // "" means no error
	}{
		{"valid", valid(func(map[string]string) {}), ""},
		{"valid with whitespace and ranges", valid(func(m map[string]string) { m["start"] = " 30 7 * * 1-5 " }), ""},
		{"timezone missing", valid(func(m map[string]string) { delete(m, "timezone") }), "timezone"},
		{"timezone empty", valid(func(m map[string]string) { m["timezone"] = "" }), "timezone"},
		{"timezone unknown", valid(func(m map[string]string) { m["timezone"] = "Mars/Olympus_Mons" }), "timezone"},
		{"start missing", valid(func(m map[string]string) { delete(m, "start") }), "start"},
		{"start not cron", valid(func(m map[string]string) { m["start"] = "at eight" }), "start"},
		{"start minute out of range", valid(func(m map[string]string) { m["start"] = "61 8 * * *" }), "start"},
		{"start with six fields", valid(func(m map[string]string) { m["start"] = "0 0 8 * * *" }), "start"},
		{"start TZ prefix without expression", valid(func(m map[string]string) { m["start"] = "TZ=UTC" }), "start"},
		{"start never fires", valid(func(m map[string]string) { m["start"] = "0 0 30 2 *" }), "start"},
		{"end missing", valid(func(m map[string]string) { delete(m, "end") }), "end"},
		{"end bad", valid(func(m map[string]string) { m["end"] = "* * *" }), "end"},
		{"end equals start", valid(func(m map[string]string) { m["end"] = "0  8 * * *" }), "end"},
		{"desiredReplicas missing", valid(func(m map[string]string) { delete(m, "desiredReplicas") }), "desiredReplicas"},
		{"desiredReplicas zero", valid(func(m map[string]string) { m["desiredReplicas"] = "0" }), "desiredReplicas"},
		{"desiredReplicas negative", valid(func(m map[string]string) { m["desiredReplicas"] = "-3" }), "desiredReplicas"},
		{"desiredReplicas not a number", valid(func(m map[string]string) { m["desiredReplicas"] = "five" }), "desiredReplicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewWithOptions(context.Background(), trigger(tc.md), Options{Now: (&clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}).now})
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %q, got none", tc.wantField)
			}
			msg := err.Error()
			if !strings.Contains(msg, `cron trigger "window"`) || !strings.Contains(msg, tc.wantField) {
				t.Fatalf("error %q does not name the trigger and field %q", msg, tc.wantField)
			}
		})
	}
}

// TestWatchWakesAtEdges checks Watch sleeps exactly until the next window edge and wakes the caller there.
func TestWatchWakesAtEdges(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	c := &clock{t: time.Date(2026, 11, 25, 7, 30, 0, 0, paris)}
	type wait struct {
		d  time.Duration
		ch chan time.Time
	}
	waits := make(chan wait, 4)
	opts := Options{Now: c.now, After: func(d time.Duration) <-chan time.Time {
		ch := make(chan time.Time, 1)
		waits <- wait{d, ch}
		return ch
	}}
	s, err := NewWithOptions(context.Background(), trigger(map[string]string{"timezone": "Europe/Paris", "start": "0 8 * * *", "end": "0 17 * * *", "desiredReplicas": "5"}), opts)
	if err != nil {
		t.Fatal(err)
	}
	ps := s.(scalers.PushScaler)
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- ps.Watch(ctx, changed) }()

	steps := []struct {
		wantWait   time.Duration
		advanceTo  time.Time
		wantActive bool
	}{
		{30 * time.Minute, time.Date(2026, 11, 25, 8, 0, 0, 0, paris), true},
		{9 * time.Hour, time.Date(2026, 11, 25, 17, 0, 0, 0, paris), false},
		{15 * time.Hour, time.Date(2026, 11, 26, 8, 0, 0, 0, paris), true},
	}
	for i, st := range steps {
		var w wait
		select {
		case w = <-waits:
		case <-time.After(10 * time.Second):
			t.Fatalf("step %d: Watch never waited", i)
		}
		if w.d != st.wantWait {
			t.Fatalf("step %d: Watch waits %v, want %v", i, w.d, st.wantWait)
		}
		c.t = st.advanceTo
		w.ch <- st.advanceTo
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("step %d: no wake-up at the edge", i)
		}
		if _, active, _ := s.Sample(ctx); active != st.wantActive {
			t.Fatalf("step %d: active = %v after the edge, want %v", i, active, st.wantActive)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch returned %v after cancel, want nil", err)
	}
}

func TestRegister(t *testing.T) {
	r := scalers.NewRegistry()
	Register(r)
	if !r.Has(Type) {
		t.Fatalf("registry lacks %q", Type)
	}
	s, err := r.New(context.Background(), scalers.TriggerConfig{Type: Type, Metadata: map[string]string{
		"timezone": "UTC", "start": "0 0 * * *", "end": "0 12 * * *", "desiredReplicas": "2"}})
	if err != nil {
		t.Fatalf("registry New: %v", err)
	}
	defer s.Close(context.Background())
	vals, active, err := s.Sample(context.Background())
	if err != nil || len(vals) != 1 {
		t.Fatalf("Sample = %v, %v", vals, err)
	}
	wantActive := time.Now().UTC().Hour() < 12
	if active != wantActive || (active && vals[0].Value != 2) || (!active && vals[0].Value != 1) {
		t.Fatalf("real clock: active=%v value=%v at %s", active, vals[0].Value, time.Now().UTC().Format(time.RFC3339))
	}
}

func FuzzParseCronMetadata(f *testing.F) {
	f.Add("Europe/Paris", "0 8 * * 1-5", "0 17 * * 1-5", "5")
	f.Add("UTC", "*/15 * * * *", "5-59/15 * * * *", "1")
	f.Add("", "", "", "")
	f.Add("Local", "TZ=UTC", "CRON_TZ=Europe/Paris 0 8 * * *", "-1")
	f.Add("America/New_York", "0 0 30 2 *", "@daily", "99999999999999999999")
	f.Add("Asia/Kolkata", "1-2/0 * * * *", "0 0 ? * MON", "3")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, tz, start, end, desired string) {
		md := map[string]string{"timezone": tz, "start": start, "end": end, "desiredReplicas": desired}
		s, err := NewWithOptions(context.Background(), trigger(md), Options{Now: func() time.Time { return now }})
		if err != nil {
			if !strings.Contains(err.Error(), `cron trigger "window"`) {
				t.Fatalf("error does not name the trigger: %v", err)
			}
			return
		}
		vals, active, err := s.Sample(context.Background())
		if err != nil || len(vals) != 1 {
			t.Fatalf("Sample = %v, %v", vals, err)
		}
		if !active && vals[0].Value != 1 {
			t.Fatalf("inactive value %v, want 1", vals[0].Value)
		}
	})
}

func BenchmarkSample(b *testing.B) {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	s := newAt(b, map[string]string{"timezone": "Europe/Paris", "start": "0 8 * * 1-5", "end": "0 17 * * 1-5", "desiredReplicas": "5"}, c)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.t = c.t.Add(time.Minute)
		t0 := time.Now()
		if _, _, err := s.Sample(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)*50/100].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds()), "p99-ns")
}
