package samples_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tidalscale/tidal/autoscaler/samples"
)

// OlderThan orders two states of a trigger by their latest sample, a failure included, and falls back to the
// last success for a sender that stamps no attempts.
func TestOlderThan(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		a, b  samples.TriggerState
		older bool
	}{
		{"earlier success", samples.TriggerState{Generation: 1, SampledAt: at(1), AttemptedAt: at(1)},
			samples.TriggerState{Generation: 1, SampledAt: at(2), AttemptedAt: at(2)}, true},
		{"later failure after an earlier success", samples.TriggerState{Generation: 1, SampledAt: at(1), AttemptedAt: at(3), Err: boom},
			samples.TriggerState{Generation: 1, SampledAt: at(2), AttemptedAt: at(2)}, false},
		{"earlier failure", samples.TriggerState{Generation: 1, SampledAt: at(1), AttemptedAt: at(2), Err: boom},
			samples.TriggerState{Generation: 1, SampledAt: at(3), AttemptedAt: at(3)}, true},
		{"no attempt times: last successes", samples.TriggerState{Generation: 1, SampledAt: at(1), Err: boom},
			samples.TriggerState{Generation: 1, SampledAt: at(2)}, true},
		{"another generation", samples.TriggerState{Generation: 1, SampledAt: at(1), AttemptedAt: at(1)},
			samples.TriggerState{Generation: 2, SampledAt: at(2), AttemptedAt: at(2)}, false},
		{"no time at all (build error)", samples.TriggerState{Generation: 1, Err: boom},
			samples.TriggerState{Generation: 1, SampledAt: at(2), AttemptedAt: at(2)}, false},
	} {
		if got := tc.a.OlderThan(&tc.b); got != tc.older {
			t.Errorf("%s: OlderThan = %v, want %v", tc.name, got, tc.older)
		}
	}
}

// Consume hands every update to fn in order and returns when the channel closes or ctx ends.
func TestConsume(t *testing.T) {
	ch := make(chan samples.Update, 3)
	for i := range 3 {
		ch <- samples.Update{Trigger: samples.TriggerState{Index: i}}
	}
	close(ch)
	var got []int
	samples.Consume(context.Background(), ch, func(u samples.Update) { got = append(got, u.Trigger.Index) })
	if len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("consumed %v, want [0 1 2]", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	samples.Consume(ctx, make(chan samples.Update), func(samples.Update) { t.Error("called after ctx ended") })
}
