package poller

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tidalscale/tidal/autoscaler/samples"

	"github.com/tidalscale/tidal/internal/testenv"
)

func TestSubscribeGetsEveryUpdate(t *testing.T) {
	src := newSource()
	src.countValues = true // each scaler returns 1, 2, 3, ... so gaps and reordering show
	h := start(t, src, Options{})
	updates, cancel := h.p.Subscribe(1 << 14)
	defer cancel()
	s := spec("every", 1, 10*time.Millisecond, "test", "a", "b")
	mustUpsert(t, h.p, s)
	testenv.Eventually(t, "100 samples", 30*time.Second, func() (bool, string) { return src.calls.Load() >= 100, "" })
	// Delete waits for in-flight samples, and a sample is published before it ends: nothing more will come.
	h.p.Delete(context.Background(), s.Key)
	total := int(src.calls.Load())

	last := map[int]float64{}
	for i := range total {
		u := receive(t, updates, "update", func(samples.Update) bool { return true })
		idx := u.Trigger.Index
		if u.Key != s.Key {
			t.Fatalf("update %d for %v", i, u.Key)
		}
		if got, want := value(u), last[idx]+1; got != want {
			t.Fatalf("trigger %d: update value %v after %v: an update was lost or reordered", idx, got, last[idx])
		}
		last[idx] = value(u)
	}
	if int(last[0]+last[1]) != total {
		t.Errorf("received %v+%v updates for %d samples", last[0], last[1], total)
	}
	select {
	case u := <-updates:
		t.Errorf("extra update after Delete: %+v", u)
	default:
	}

	cancel()
	if _, open := <-updates; open {
		t.Errorf("channel still open after cancel")
	}
}

func TestSlowSubscriberKeepsLatestState(t *testing.T) {
	src := newSource()
	h := start(t, src, Options{})
	slow, cancelSlow := h.p.Subscribe(1) // never read until the end
	defer cancelSlow()
	s := spec("slow", 1, time.Minute, "test", "a", "b", "c")
	mustUpsert(t, h.p, s)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const rounds = 200
	for i := 1; i <= rounds; i++ {
		src.value.Store(int64(i))
		// SampleNow returns only once every trigger was sampled and published: the slow subscriber does not
		// hold polling up.
		if err := h.p.SampleNow(ctx, s.Key); err != nil {
			t.Fatalf("round %d: SampleNow: %v", i, err)
		}
	}

	received := 0
	last := map[int]float64{}
	for len(last) < 3 || last[0] != rounds || last[1] != rounds || last[2] != rounds {
		u := receive(t, slow, "latest state of every trigger", func(samples.Update) bool { return true })
		received++
		idx := u.Trigger.Index
		if prev, ok := last[idx]; ok && value(u) <= prev {
			t.Fatalf("trigger %d: value %v after %v: out of order", idx, value(u), prev)
		}
		last[idx] = value(u)
	}
	t.Logf("slow subscriber got %d updates for %d samples", received, 3*rounds)
	if received >= 3*rounds {
		t.Errorf("slow subscriber got %d updates, want fewer than %d (coalesced)", received, 3*rounds)
	}
	if c := testutil.ToFloat64(h.p.metrics.coalesced); c == 0 {
		t.Errorf("coalesced counter = 0")
	}
	// Latest state agrees with the snapshot a reconnecting client would read.
	snap := h.p.Snapshot()
	if len(snap) != 1 || len(snap[0].Triggers) != 3 {
		t.Fatalf("Snapshot = %+v", snap)
	}
	for _, tr := range snap[0].Triggers {
		if tr.Samples[0].Value != rounds {
			t.Errorf("snapshot trigger %d value %v, want %d", tr.Index, tr.Samples[0].Value, rounds)
		}
	}
}
