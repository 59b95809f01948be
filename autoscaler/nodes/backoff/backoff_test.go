package backoff_test

import (
	"testing"
	"time"

	"github.com/tidalscale/tidal/autoscaler/nodes/backoff"
)

func TestExponentialBackoff(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := backoff.New(backoff.Options{Initial: time.Minute, Max: 5 * time.Minute, Reset: time.Hour})
	steps := []struct {
		name      string
		at        time.Duration
		wantUntil time.Duration
	}{
		{name: "first failure: initial", at: 0, wantUntil: time.Minute},
		{name: "second: doubled", at: 2 * time.Minute, wantUntil: 4 * time.Minute},
		{name: "third: doubled again", at: 5 * time.Minute, wantUntil: 9 * time.Minute},
		{name: "fourth: capped at max", at: 10 * time.Minute, wantUntil: 15 * time.Minute},
		{name: "after reset period: initial again", at: 2 * time.Hour, wantUntil: 2*time.Hour + time.Minute},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			st := tr.Fail("g", "boom", t0.Add(s.at))
			if !st.Until.Equal(t0.Add(s.wantUntil)) {
				t.Fatalf("until = %v, want %v", st.Until.Sub(t0), s.wantUntil)
			}
			if _, on := tr.Get("g", t0.Add(s.wantUntil-time.Second)); !on {
				t.Fatal("not backed off just before until")
			}
			if _, on := tr.Get("g", t0.Add(s.wantUntil)); on {
				t.Fatal("still backed off at until")
			}
		})
	}
	tr.Succeed("g")
	if st, on := tr.Get("g", t0); on || st.Failures != 0 {
		t.Fatalf("after Succeed: %+v on=%v", st, on)
	}
	if _, on := tr.Get("other", t0); on {
		t.Fatal("unknown group backed off")
	}
}
