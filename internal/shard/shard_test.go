package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// clock is a fake clock shared by the members of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// cut makes a member's API calls fail while set, as a network partition would.
type cut struct{ on atomic.Bool }

// newMember builds a member on its own fake-clientset view of one shared tracker, so that a cut fails only this
// member's calls.
func newMember(t *testing.T, tracker k8stesting.ObjectTracker, clk *clock, id string, partition *cut) *Membership {
	t.Helper()
	return newMemberWith(t, tracker, partition, Options{Namespace: "tidal-system", Group: "tidal-operator", Identity: id,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second, Now: clk.Now})
}

// newMemberWith is newMember with opts (Client set here).
func newMemberWith(t *testing.T, tracker k8stesting.ObjectTracker, partition *cut, opts Options) *Membership {
	t.Helper()
	cs := fake.NewClientset()
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if partition != nil && partition.on.Load() {
			return true, nil, errors.New("connection refused")
		}
		return k8stesting.ObjectReaction(tracker)(a)
	})
	opts.Client = cs
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTracker() k8stesting.ObjectTracker {
	return fake.NewClientset().Tracker()
}

// rounds runs one round of every member, n times, stepping the clock by a retry period each time.
func rounds(t *testing.T, clk *clock, n int, members ...*Membership) {
	t.Helper()
	for range n {
		for _, m := range members {
			_ = m.Round(context.Background())
		}
		clk.Step(2 * time.Second)
	}
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("ns-%d/so-%d", i%7, i)
	}
	return out
}

// owners counts, for each key, how many members claim it.
func owners(members []*Membership, ks []string) (unowned, doubly int) {
	for _, k := range ks {
		n := 0
		for _, m := range members {
			if m.Owns(k) {
				n++
			}
		}
		switch {
		case n == 0:
			unowned++
		case n > 1:
			doubly++
		}
	}
	return unowned, doubly
}

func TestOwnerSpreadsAndMovesTheMinimum(t *testing.T) {
	ks := keys(3000)
	three := []string{"a", "b", "c"}
	count := map[string]int{}
	for _, k := range ks {
		count[Owner(three, k)]++
	}
	for _, m := range three {
		if count[m] < 800 || count[m] > 1200 {
			t.Errorf("member %s owns %d of 3000 keys; want about 1000", m, count[m])
		}
	}
	four := []string{"a", "b", "c", "d"}
	for _, k := range ks {
		before, after := Owner(three, k), Owner(four, k)
		if before != after && after != "d" {
			t.Fatalf("key %s moved from %s to %s when d joined; only moves to d are allowed", k, before, after)
		}
		if Owner([]string{"a", "c"}, k) != before && before != "b" {
			t.Fatalf("key %s moved away from %s when b left", k, before)
		}
	}
	if Owner(nil, "x/y") != "" {
		t.Error("no members must own nothing")
	}
}

func TestEachKeyOwnedByExactlyOne(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	tr := newTracker()
	ms := []*Membership{newMember(t, tr, clk, "a", nil), newMember(t, tr, clk, "b", nil), newMember(t, tr, clk, "c", nil)}
	ks := keys(300)
	rounds(t, clk, 3, ms...)
	if un, dbl := owners(ms, ks); un != 0 || dbl != 0 {
		t.Fatalf("unowned=%d doubly=%d; want 0 and 0", un, dbl)
	}
	for _, m := range ms {
		if got := len(m.Members()); got != 3 {
			t.Errorf("%s sees %d members, want 3", m.Identity(), got)
		}
	}
}

// TestNewcomerWaitsToBeSeen: a new member claims nothing until every live member has published a view with it,
// so the old owner (which has not seen it) and the newcomer never both claim a key.
func TestNewcomerWaitsToBeSeen(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	tr := newTracker()
	a, b := newMember(t, tr, clk, "a", nil), newMember(t, tr, clk, "b", nil)
	rounds(t, clk, 2, a, b)
	c := newMember(t, tr, clk, "c", nil)
	ks := keys(300)
	all := []*Membership{a, b, c}
	if err := c.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Claiming() {
		t.Fatal("c claims keys before a and b have seen it")
	}
	if _, dbl := owners(all, ks); dbl != 0 {
		t.Fatalf("%d keys doubly owned after c joined", dbl)
	}
	_ = a.Round(context.Background()) // a has seen c; b has not
	if c.Claiming() {
		t.Fatal("c claims keys before b has seen it")
	}
	if _, dbl := owners(all, ks); dbl != 0 {
		t.Fatalf("%d keys doubly owned while b has not seen c", dbl)
	}
	_ = b.Round(context.Background())
	_ = c.Round(context.Background())
	if !c.Claiming() {
		t.Fatal("c does not claim once every member has seen it")
	}
	rounds(t, clk, 1, all...)
	if un, dbl := owners(all, ks); un != 0 || dbl != 0 {
		t.Fatalf("after c joined: unowned=%d doubly=%d; want 0 and 0", un, dbl)
	}
}

// TestPartitionedMemberStopsBeforeTakeover: a member that cannot renew stops claiming after RenewDeadline, before
// the others consider its lease expired after LeaseDuration; then they take its keys over.
func TestPartitionedMemberStopsBeforeTakeover(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	tr := newTracker()
	var p cut
	a, b, c := newMember(t, tr, clk, "a", nil), newMember(t, tr, clk, "b", nil), newMember(t, tr, clk, "c", &p)
	all := []*Membership{a, b, c}
	ks := keys(300)
	rounds(t, clk, 3, all...)
	p.on.Store(true)
	stoppedAt, takenAt := time.Duration(-1), time.Duration(-1)
	for elapsed := time.Duration(0); elapsed <= 40*time.Second; elapsed += time.Second {
		if elapsed%(2*time.Second) == 0 {
			for _, m := range all {
				_ = m.Round(context.Background())
			}
		}
		un, dbl := owners(all, ks)
		if dbl != 0 {
			t.Fatalf("%s after the partition: %d keys doubly owned", elapsed, dbl)
		}
		if stoppedAt < 0 && !c.Claiming() {
			stoppedAt = elapsed
		}
		if takenAt < 0 && un == 0 && !c.Claiming() {
			takenAt = elapsed
		}
		clk.Step(time.Second)
	}
	if stoppedAt < 0 || stoppedAt > 10*time.Second {
		t.Errorf("partitioned member stopped claiming after %s; want within the renew deadline (10s)", stoppedAt)
	}
	if takenAt < 0 || takenAt > 2*15*time.Second {
		t.Errorf("its keys were taken over after %s; want within two lease durations", takenAt)
	}
	if got := a.Members(); len(got) != 2 {
		t.Errorf("a sees %v; want the partitioned member dropped", got)
	}
	// The partition heals: c renews, is seen again and claims its keys back, with no key doubly owned.
	p.on.Store(false)
	for range 4 {
		rounds(t, clk, 1, all...)
		if _, dbl := owners(all, ks); dbl != 0 {
			t.Fatalf("after healing: %d keys doubly owned", dbl)
		}
	}
	if un, _ := owners(all, ks); un != 0 || !c.Claiming() {
		t.Fatalf("after healing: unowned=%d, c claiming=%v", un, c.Claiming())
	}
}

// TestReleaseHandsOverAtOnce: a member that leaves deletes its lease; the others take its keys at their next
// round instead of waiting for it to expire.
func TestReleaseHandsOverAtOnce(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	tr := newTracker()
	a, b, c := newMember(t, tr, clk, "a", nil), newMember(t, tr, clk, "b", nil), newMember(t, tr, clk, "c", nil)
	rounds(t, clk, 2, a, b, c)
	c.release()
	if c.Claiming() {
		t.Fatal("a released member still claims")
	}
	rounds(t, clk, 1, a, b)
	if un, dbl := owners([]*Membership{a, b}, keys(300)); un != 0 || dbl != 0 {
		t.Fatalf("after release: unowned=%d doubly=%d", un, dbl)
	}
}

// TestExpiredLeaseDeleted: the lease of a member killed without releasing is deleted after two lease durations.
func TestExpiredLeaseDeleted(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	tr := newTracker()
	a, b := newMember(t, tr, clk, "a", nil), newMember(t, tr, clk, "b", nil)
	rounds(t, clk, 2, a, b)
	rounds(t, clk, 20, a) // b is gone
	l, err := a.opts.Client.CoordinationV1().Leases("tidal-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].Name != "tidal-operator-a" {
		names := []string{}
		for _, x := range l.Items {
			names = append(names, x.Name)
		}
		t.Fatalf("leases %v; want only tidal-operator-a", names)
	}
}

func TestOptions(t *testing.T) {
	cs := fake.NewClientset()
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{name: "no client", opts: Options{Namespace: "n", Group: "g"}},
		{name: "no group", opts: Options{Client: cs, Namespace: "n"}},
		{name: "deadline not below duration", opts: Options{Client: cs, Namespace: "n", Group: "g", LeaseDuration: time.Second, RenewDeadline: time.Second}},
		{name: "comma in identity", opts: Options{Client: cs, Namespace: "n", Group: "g", Identity: "a,b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if got := LeaseName("tidal-operator", "Pod_1.x"); got != "tidal-operator-pod-1.x" {
		t.Errorf("LeaseName = %q", got)
	}
}

// TestStartTogether: members that start at the same time never both claim a key, at any step of their first
// rounds (each claims only once a list held its own Lease).
func TestStartTogether(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	tr := newTracker()
	ms := []*Membership{newMember(t, tr, clk, "a", nil), newMember(t, tr, clk, "b", nil), newMember(t, tr, clk, "c", nil)}
	ks := keys(300)
	for range 4 {
		for _, m := range ms {
			_ = m.Round(context.Background())
			if _, dbl := owners(ms, ks); dbl != 0 {
				t.Fatalf("%d keys doubly owned after a round of %s", dbl, m.Identity())
			}
		}
		clk.Step(2 * time.Second)
	}
	if un, _ := owners(ms, ks); un != 0 {
		t.Fatalf("%d keys unowned after four rounds", un)
	}
}

// Annotations a member publishes reach the others through Peers, with the view annotation kept its own; a member
// that expired leaves Peers.
func TestPeersCarryAnnotations(t *testing.T) {
	tracker, clk := newTracker(), &clock{now: time.Unix(1_000_000, 0)}
	var part cut
	mk := func(id string, p *cut) *Membership {
		return newMemberWith(t, tracker, p, Options{Namespace: "tidal-system", Group: "tidal-metrics-adapter", Identity: id,
			Annotations: map[string]string{"tidal.dev/stream-address": id + ":9090"}, Now: clk.Now})
	}
	a, b := mk("a", nil), mk("b", &part)
	rounds(t, clk, 3, a, b)
	if got := a.Peers(); len(got) != 1 || got["b"]["tidal.dev/stream-address"] != "b:9090" || got["b"][AnnotationView] != "a,b" {
		t.Fatalf("a's peers = %v, want b with its address and view a,b", got)
	}
	if got := b.Peers()["a"]["tidal.dev/stream-address"]; got != "a:9090" {
		t.Fatalf("b sees a's address %q", got)
	}
	part.on.Store(true)
	rounds(t, clk, 10, a, b) // 20s > the 15s lease
	if got := a.Peers(); len(got) != 0 {
		t.Fatalf("a's peers after b expired = %v, want none", got)
	}
	if _, err := New(Options{Client: fake.NewClientset(), Namespace: "x", Group: "g", Identity: "c",
		Annotations: map[string]string{AnnotationView: "c"}}); err == nil {
		t.Fatal("an Options.Annotations entry for the view annotation was accepted")
	}
}
