package app

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/internal/shard"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers"
)

// An object moves from its old owner to a new one: whatever order their updates reach this replica in, the
// updates it relays to operators for a trigger never go back in sample time, and the activity flag is
// relative to what it relayed before, whichever replica sampled it.
func TestRelayNeverGoesBackInTime(t *testing.T) {
	m, err := shard.New(shard.Options{Client: fake.NewClientset(), Namespace: "tidal-system", Group: ShardGroup, Identity: "r0"})
	if err != nil {
		t.Fatal(err)
	}
	s := newSharded(nil, m, nil, zaptest.NewLogger(t))
	ctx := t.Context()
	out, cancel := s.Subscribe(64)
	defer cancel()
	// The two owners' streams as this replica's peer clients republish them: each through its own Hub.
	oldOwner, newOwner := poller.NewHub(nil), poller.NewHub(nil)
	s.forward(ctx, oldOwner)
	s.forward(ctx, newOwner)

	key := samples.Key{Kind: samples.KindScaledObject, Namespace: "shop", Name: "orders"}
	marker := samples.Key{Kind: samples.KindScaledObject, Namespace: "shop", Name: "marker"}
	t0 := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	update := func(k samples.Key, sampledAt time.Time, value float64, active bool, err error, changed bool) samples.Update {
		return samples.Update{Key: k, ActivityChanged: changed, Trigger: samples.TriggerState{
			Index: 0, Generation: 1, Name: "redis", Type: "redis", MetricNames: []string{"s0-redis-orders"},
			Samples: []scalers.Sample{{MetricName: "s0-redis-orders", Value: value}}, Active: active, Err: err,
			SampledAt: sampledAt,
		}}
	}
	next := func() samples.Update {
		t.Helper()
		select {
		case u := <-out:
			return u
		case <-ctx.Done():
			t.Fatal("no update relayed")
			return samples.Update{}
		}
	}
	// dropped publishes u on src, then a marker on the same source: the marker is relayed next, so u was dropped
	// (one source's updates are relayed in order).
	markers := 0
	dropped := func(src *poller.Hub, u samples.Update) {
		t.Helper()
		src.Publish(u)
		markers++
		src.Publish(update(marker, at(100+markers), 0, false, nil, false))
		if got := next(); got.Key != marker {
			t.Fatalf("relayed %s sampled at %s (value %v, err %v), want it dropped", got.Key, got.Trigger.SampledAt.Format(time.TimeOnly),
				got.Trigger.Samples, got.Trigger.Err)
		}
	}
	relayed := func(src *poller.Hub, u samples.Update) samples.Update {
		t.Helper()
		src.Publish(u)
		got := next()
		if got.Key != u.Key || !got.Trigger.SampledAt.Equal(u.Trigger.SampledAt) || (got.Trigger.Err == nil) != (u.Trigger.Err == nil) {
			t.Fatalf("relayed %s sampled at %s (err %v), want %s sampled at %s (err %v)", got.Key, got.Trigger.SampledAt.Format(time.TimeOnly),
				got.Trigger.Err, u.Key, u.Trigger.SampledAt.Format(time.TimeOnly), u.Trigger.Err)
		}
		return got
	}

	// The old owner's samples while it owns the object.
	if u := relayed(oldOwner, update(key, at(1), 3, true, nil, true)); !u.ActivityChanged {
		t.Error("the first active sample is relayed without ActivityChanged")
	}
	// The new owner's first sample: activity changed for its own poller (a new trigger starts inactive), not for
	// the operators, who saw the object active.
	if u := relayed(newOwner, update(key, at(3), 5, true, nil, true)); u.ActivityChanged {
		t.Error("the new owner's first sample is relayed with ActivityChanged, but the relayed activity did not change")
	}
	// The old owner's samples taken before it, still in flight or replayed by a reconnecting peer stream: a
	// success, and a failure that keeps that success's time.
	dropped(oldOwner, update(key, at(2), 4, false, nil, true))
	dropped(oldOwner, update(key, at(2), 4, false, errors.New("redis: connection refused"), false))
	// One taken after the new owner's (the old owner had not released the object yet) is news.
	relayed(oldOwner, update(key, at(4), 6, true, nil, false))
	// A failure of the new owner keeps its last success's time (3s), now older than the old owner's 4s sample.
	dropped(newOwner, update(key, at(3), 5, true, errors.New("redis: i/o timeout"), false))
	// Its next success is later than everything relayed; a failure keeping that time follows it.
	relayed(newOwner, update(key, at(5), 7, true, nil, false))
	relayed(newOwner, update(key, at(5), 7, true, errors.New("redis: i/o timeout"), false))
	// The old owner's earlier state, replayed again, is still dropped after the failure.
	dropped(oldOwner, update(key, at(4), 6, true, nil, false))

	// With attempt times on the wire, a failure is ordered by when it was taken, not by its last success: the
	// new owner's failure at 7s (last success 5s) is news after the old owner's late success at 6s, and the
	// old owner's failure taken at 6.5s is not.
	late := update(key, at(6), 8, true, nil, false)
	late.Trigger.AttemptedAt = at(6)
	relayed(oldOwner, late)
	failure := update(key, at(5), 7, true, errors.New("redis: i/o timeout"), false)
	failure.Trigger.AttemptedAt = at(7)
	relayed(newOwner, failure)
	stale := update(key, at(6), 8, true, errors.New("redis: connection refused"), false)
	stale.Trigger.AttemptedAt = at(6).Add(500 * time.Millisecond)
	dropped(oldOwner, stale)

	// A new generation is not ordered by time against the old one.
	gen2 := update(key, at(4), 1, false, nil, true)
	gen2.Trigger.Generation = 2
	relayed(newOwner, gen2)

	// A deleted object's stamps go: the same name created again starts afresh.
	s.ObjectDeleted(key)
	relayed(oldOwner, update(key, at(2), 4, false, nil, false))
}
