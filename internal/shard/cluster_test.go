package shard

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// TestMembershipOnRealLeases runs three members on the dev cluster's Leases with a 3 s lease: every key owned by
// exactly one; a partitioned member stops claiming and its keys are taken over; a member that leaves hands its
// keys over at the next round; a newcomer takes its share without any key doubly owned.
func TestMembershipOnRealLeases(t *testing.T) {
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ks := keys(300)

	start := func(id string, cut *atomic.Bool) (*Membership, context.CancelFunc) {
		cfg := testenv.Partitioned(c.Config, cut)
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Options{Client: cs, Namespace: ns, Group: "test-shard", Identity: id,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond,
			Logger: zaptest.NewLogger(t).Named(id)})
		if err != nil {
			t.Fatal(err)
		}
		mctx, mcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Run(mctx) }()
		t.Cleanup(func() { mcancel(); <-done })
		return m, func() { mcancel(); <-done }
	}
	var cutA, cutB, cutC, cutD atomic.Bool
	a, _ := start("a", &cutA)
	b, stopB := start("b", &cutB)
	cc, _ := start("c", &cutC)
	all := []*Membership{a, b, cc}

	// check fails on any doubly owned key (sampled throughout) and reports whether every key has one owner.
	check := func(ms []*Membership) (bool, string) {
		un, dbl := owners(ms, ks)
		if dbl != 0 {
			t.Fatalf("%d keys owned by two members", dbl)
		}
		return un == 0, "unowned=" + strconv.Itoa(un)
	}
	testenv.Eventually(t, "three members own every key", 30*time.Second, func() (bool, string) { return check(all) })

	// Partition c: it stops claiming within its renew deadline, and a and b take its keys over.
	cutC.Store(true)
	cutAt := time.Now()
	testenv.Eventually(t, "c's keys taken over", 30*time.Second, func() (bool, string) {
		ok, s := check(all)
		return ok && !cc.Claiming() && len(a.Members()) == 2, s
	})
	if took := time.Since(cutAt); took > 2*3*time.Second+time.Second {
		t.Errorf("takeover after a partition took %s; want within about two lease durations", took)
	}
	cutC.Store(false)
	testenv.Eventually(t, "c back after the partition heals", 30*time.Second, func() (bool, string) {
		ok, s := check(all)
		return ok && cc.Claiming(), s
	})

	// b leaves: its Lease is deleted, so a and c take over without waiting for it to expire.
	stopB()
	testenv.Eventually(t, "b's keys handed over", 30*time.Second, func() (bool, string) {
		ok, s := check([]*Membership{a, cc})
		return ok && len(a.Members()) == 2, s
	})
	if _, err := c.Client.CoordinationV1().Leases(ns).Get(ctx, LeaseName("test-shard", "b"), metav1.GetOptions{}); err == nil {
		t.Error("b's Lease is still there after it left")
	}

	// d joins: keys move to it, none is dropped or doubly owned on the way.
	d, _ := start("d", &cutD)
	testenv.Eventually(t, "d owns its share", 30*time.Second, func() (bool, string) {
		ok, s := check([]*Membership{a, cc, d})
		return ok && d.Claiming(), s
	})
}
