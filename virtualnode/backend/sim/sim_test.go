package sim

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

func TestParseLatency(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    Latency
		wantErr bool
	}{
		{name: "bare duration is fixed", in: "50ms", want: Latency{Kind: "fixed", Value: 50 * time.Millisecond}},
		{name: "fixed prefix", in: "fixed:1s", want: Latency{Kind: "fixed", Value: time.Second}},
		{name: "uniform", in: "uniform:10ms-100ms", want: Latency{Kind: "uniform", Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}},
		{name: "lognormal", in: "lognormal:50ms,200ms", want: Latency{Kind: "lognormal", Median: 50 * time.Millisecond, P99: 200 * time.Millisecond}},
		{name: "uniform decreasing", in: "uniform:100ms-10ms", wantErr: true},
		{name: "unknown kind", in: "poisson:1s", wantErr: true},
		{name: "not a duration", in: "soon", wantErr: true},
		{name: "negative", in: "-1s", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLatency("startLatency", tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseLatency(%q) = %+v, want error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLatency(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseLatency(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestLognormalQuantiles(t *testing.T) {
	l := Latency{Kind: "lognormal", Median: 50 * time.Millisecond, P99: 200 * time.Millisecond}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = l.Sample(r)
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	med, p99 := s[n/2], s[n*99/100]
	if med < 45*time.Millisecond || med > 55*time.Millisecond {
		t.Errorf("median = %s, want about 50ms", med)
	}
	if p99 < 170*time.Millisecond || p99 > 230*time.Millisecond {
		t.Errorf("p99 = %s, want about 200ms", p99)
	}
}

type recorder struct {
	mu  sync.Mutex
	got map[backend.Key][]*corev1.PodStatus
}

func (r *recorder) changed(k backend.Key, st *corev1.PodStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[k] = append(r.got[k], st)
}

func (r *recorder) last(k backend.Key) *corev1.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.got[k]
	if len(l) == 0 {
		return nil
	}
	return l[len(l)-1]
}

func simPodSpec(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-" + "x"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("100Mi")}}}}},
	}
}

func TestLifecycleWithFakeClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rec := &recorder{got: map[backend.Key][]*corev1.PodStatus{}}
	b, err := New(Options{Changed: rec.changed, StartLatency: Latency{Kind: "fixed", Value: time.Second},
		DeleteLatency: Latency{Kind: "fixed", Value: 100 * time.Millisecond}, Clock: clk, CPUUsage: 0.5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod := simPodSpec("a")
	key := backend.KeyOf(pod)
	if err := b.Create(ctx, backend.Pod{Pod: pod}); err != nil {
		t.Fatal(err)
	}
	st, err := b.Status(ctx, key)
	if err != nil || st.Phase != corev1.PodPending {
		t.Fatalf("before the start latency: status %+v, %v; want Pending", st, err)
	}
	clk.Step(time.Second)
	if st := rec.last(key); st == nil || st.Phase != corev1.PodRunning || !st.ContainerStatuses[0].Ready {
		t.Fatalf("after the start latency: %+v, want Running and Ready", st)
	}
	clk.Step(10 * time.Second)
	stats, err := b.PodStats(ctx)
	if err != nil || len(stats) != 1 {
		t.Fatalf("PodStats = %+v, %v", stats, err)
	}
	if got := *stats[0].CPU.UsageNanoCores; got != 250_000_000 {
		t.Errorf("cpu usage = %d nanocores, want 250m (half of the 500m request)", got)
	}
	if got := *stats[0].CPU.UsageCoreNanoSeconds; got != uint64(2500*time.Millisecond) {
		t.Errorf("cpu seconds = %d, want 2.5s over 10s at 250m", got)
	}
	if err := b.Delete(ctx, key, time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Step(100 * time.Millisecond)
	if st := rec.last(key); st == nil || (st.Phase != corev1.PodFailed && st.Phase != corev1.PodSucceeded) {
		t.Fatalf("after delete: %+v, want a terminal phase", st)
	}
	if _, err := b.Status(ctx, key); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Status after delete: %v, want ErrNotFound", err)
	}
}

func TestFailureRateOneFailsEveryPod(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	rec := &recorder{got: map[backend.Key][]*corev1.PodStatus{}}
	b, err := New(Options{Changed: rec.changed, FailureRate: 1, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	pod := simPodSpec("f")
	if err := b.Create(context.Background(), backend.Pod{Pod: pod}); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Millisecond)
	st := rec.last(backend.KeyOf(pod))
	if st == nil || st.Phase != corev1.PodFailed || st.Reason != backend.ReasonSimulatedFailure {
		t.Fatalf("status = %+v, want Failed with reason %s", st, backend.ReasonSimulatedFailure)
	}
}

func TestOptionsValidateNamesField(t *testing.T) {
	_, err := New(Options{Changed: func(backend.Key, *corev1.PodStatus) {}, FailureRate: 2})
	if err == nil || !contains(err.Error(), "failureRate") {
		t.Fatalf("err = %v, want one naming failureRate", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
