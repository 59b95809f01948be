package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// recorder counts reconciles per key and answers from a script.
type recorder struct {
	mu     sync.Mutex
	calls  map[string]int
	answer func(key string, call int) (Result, error)
	seen   chan string
}

func (r *recorder) reconcile(ctx context.Context, key string) (Result, error) {
	if LoggerFrom(ctx) == nil {
		panic("no logger in ctx")
	}
	r.mu.Lock()
	r.calls[key]++
	n := r.calls[key]
	r.mu.Unlock()
	r.seen <- key
	return r.answer(key, n)
}

func start(t *testing.T, rec *recorder, reg prometheus.Registerer) *Runner {
	t.Helper()
	r, err := New(Options{
		Name: "things", Kind: "Thing", Reconcile: rec.reconcile, Metrics: NewMetrics(reg, "test"),
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

func waitKey(t *testing.T, seen <-chan string, want string) {
	t.Helper()
	select {
	case k := <-seen:
		if k != want {
			t.Fatalf("reconciled %q, want %q", k, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no reconcile of %q", want)
	}
}

func TestRetriesErrorsWithBackoffUntilSuccess(t *testing.T) {
	rec := &recorder{calls: map[string]int{}, seen: make(chan string, 16), answer: func(_ string, n int) (Result, error) {
		if n < 3 {
			return Result{}, errors.New("transient")
		}
		return Result{}, nil
	}}
	reg := prometheus.NewRegistry()
	r := start(t, rec, reg)
	r.Enqueue("ns/a")
	for range 3 {
		waitKey(t, rec.seen, "ns/a")
	}
	select {
	case k := <-rec.seen:
		t.Fatalf("reconciled %q after success without a new event", k)
	case <-time.After(200 * time.Millisecond):
	}
	if got := testutil.ToFloat64(r.opts.Metrics.reconciles.WithLabelValues("Thing", "error")); got != 2 {
		t.Errorf("error reconciles = %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.opts.Metrics.reconciles.WithLabelValues("Thing", "success")); got != 1 {
		t.Errorf("success reconciles = %v, want 1", got)
	}
}

func TestRequeueAfterReconcilesAgain(t *testing.T) {
	rec := &recorder{calls: map[string]int{}, seen: make(chan string, 16), answer: func(_ string, n int) (Result, error) {
		if n == 1 {
			return Result{RequeueAfter: 50 * time.Millisecond}, nil
		}
		return Result{}, nil
	}}
	r := start(t, rec, prometheus.NewRegistry())
	r.Enqueue("ns/b")
	waitKey(t, rec.seen, "ns/b")
	waitKey(t, rec.seen, "ns/b")
}

func TestHandlerEnqueuesObjectsAndTombstones(t *testing.T) {
	rec := &recorder{calls: map[string]int{}, seen: make(chan string, 16), answer: func(string, int) (Result, error) { return Result{}, nil }}
	r := start(t, rec, prometheus.NewRegistry())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}}
	h := r.Handler()
	h.OnAdd(cm, false)
	waitKey(t, rec.seen, "ns/c")
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: cm})
	waitKey(t, rec.seen, "ns/gone")
}

func TestNewRefusesMissingOptions(t *testing.T) {
	if _, err := New(Options{Reconcile: func(context.Context, string) (Result, error) { return Result{}, nil }}); err == nil {
		t.Error("New without a name: want an error")
	}
	if _, err := New(Options{Name: "x"}); err == nil {
		t.Error("New without a reconcile func: want an error")
	}
}

func TestSetConditionKeepsTransitionTimeWhileStatusHolds(t *testing.T) {
	var conds []metav1.Condition
	SetCondition(&conds, 1, "Ready", metav1.ConditionTrue, "Ok", "fine")
	first := conds[0].LastTransitionTime
	SetCondition(&conds, 2, "Ready", metav1.ConditionTrue, "StillOk", "still fine")
	if len(conds) != 1 || conds[0].Reason != "StillOk" || conds[0].ObservedGeneration != 2 || !conds[0].LastTransitionTime.Equal(&first) {
		t.Errorf("conditions = %+v", conds)
	}
}
