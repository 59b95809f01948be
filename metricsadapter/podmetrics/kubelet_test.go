package podmetrics

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A /metrics/resource response as the virtual node renders it (virtualnode/provider.GetMetricsResource).
const kubeletText = `# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="burn",namespace="ns",pod="p"} 12.5 1700000010000
container_cpu_usage_seconds_total{container="side",namespace="ns",pod="p"} 0.25 1700000010000
container_cpu_usage_seconds_total{container="w",namespace="other",pod="q"} 3
# HELP container_memory_working_set_bytes Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="burn",namespace="ns",pod="p"} 1.048576e+06 1700000010000
container_memory_working_set_bytes{container="side",namespace="ns",pod="p"} 4096 1700000010000
# HELP container_start_time_seconds Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="burn",namespace="ns",pod="p"} 1.7e+09 1700000010000
# HELP node_cpu_usage_seconds_total Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 15.75 1700000010000
# HELP pod_cpu_usage_seconds_total Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="ns",pod="p"} 12.75 1700000010000
# HELP scrape_error 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
`

func TestParseMetricsResource(t *testing.T) {
	scraped := time.Unix(1700000011, 0)
	got, err := parseMetricsResource(strings.NewReader(kubeletText), scraped)
	if err != nil {
		t.Fatal(err)
	}
	stamped := time.UnixMilli(1700000010000)
	want := map[containerKey]containerSample{
		{"ns", "p", "burn"}: {CPUSeconds: 12.5, CPUTime: stamped, HasCPU: true, MemoryBytes: 1 << 20, HasMemory: true, Start: 1.7e9},
		{"ns", "p", "side"}: {CPUSeconds: 0.25, CPUTime: stamped, HasCPU: true, MemoryBytes: 4096, HasMemory: true},
		{"other", "q", "w"}: {CPUSeconds: 3, CPUTime: scraped, HasCPU: true}, // no timestamp: the scrape's time
	}
	if len(got) != len(want) {
		t.Fatalf("got %d containers %+v, want %d", len(got), got, len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("container %+v missing", k)
		}
		if !g.CPUTime.Equal(w.CPUTime) {
			t.Errorf("%+v: CPU time %v, want %v", k, g.CPUTime, w.CPUTime)
		}
		g.CPUTime, w.CPUTime = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("%+v: got %+v, want %+v", k, g, w)
		}
	}
}

func TestParseMetricsResourceRejectsMalformedText(t *testing.T) {
	_, err := parseMetricsResource(strings.NewReader("container_cpu_usage_seconds_total{container=\"a\" 1\n"), time.Now())
	if err == nil || !strings.Contains(err.Error(), "parse /metrics/resource") {
		t.Fatalf("err = %v, want a parse error", err)
	}
}

func TestUsageBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sample := func(cpu float64, at time.Duration, mem float64, start float64) containerSample {
		return containerSample{CPUSeconds: cpu, CPUTime: t0.Add(at), HasCPU: true, MemoryBytes: mem, HasMemory: true, Start: start}
	}
	cases := []struct {
		name       string
		prev, cur  containerSample
		wantOK     bool
		wantMilli  int64
		wantBytes  int64
		wantWindow time.Duration
	}{
		{name: "one core over 15s", prev: sample(10, 0, 1, 5), cur: sample(25, 15*time.Second, 2<<20, 5), wantOK: true, wantMilli: 1000, wantBytes: 2 << 20, wantWindow: 15 * time.Second},
		{name: "a quarter core, rounded", prev: sample(1, 0, 1, 0), cur: sample(1.25, 1001*time.Millisecond, 100, 0), wantOK: true, wantMilli: 250, wantBytes: 100, wantWindow: 1001 * time.Millisecond},
		{name: "idle", prev: sample(3, 0, 1, 0), cur: sample(3, 10*time.Second, 64, 0), wantOK: true, wantMilli: 0, wantBytes: 64, wantWindow: 10 * time.Second},
		{name: "restarted: start time changed", prev: sample(10, 0, 1, 5), cur: sample(11, 15*time.Second, 1, 6)},
		{name: "counter went down", prev: sample(10, 0, 1, 0), cur: sample(2, 15*time.Second, 1, 0)},
		{name: "time did not advance", prev: sample(10, 15*time.Second, 1, 0), cur: sample(11, 15*time.Second, 1, 0)},
		{name: "no memory", prev: sample(1, 0, 1, 0), cur: containerSample{CPUSeconds: 2, CPUTime: t0.Add(time.Second), HasCPU: true}},
		{name: "no cpu before", prev: containerSample{MemoryBytes: 1, HasMemory: true}, cur: sample(2, time.Second, 1, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := usageBetween(tc.prev, tc.cur)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			cpu, mem := got.Usage[corev1.ResourceCPU], got.Usage[corev1.ResourceMemory]
			if cpu.MilliValue() != tc.wantMilli || mem.Value() != tc.wantBytes || got.Window != tc.wantWindow || !got.Time.Equal(tc.cur.CPUTime) {
				t.Fatalf("cpu=%dm memory=%d window=%v time=%v, want cpu=%dm memory=%d window=%v time=%v",
					cpu.MilliValue(), mem.Value(), got.Window, got.Time, tc.wantMilli, tc.wantBytes, tc.wantWindow, tc.cur.CPUTime)
			}
		})
	}
}

func TestRatesBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := func(cpu float64, at time.Duration) containerSample {
		return containerSample{CPUSeconds: cpu, CPUTime: t0.Add(at), HasCPU: true, MemoryBytes: 1, HasMemory: true}
	}
	prev := map[containerKey]containerSample{
		{"ns", "a", "c"}: s(0, 0),
		{"ns", "b", "c"}: s(0, 0),
	}
	cur := map[containerKey]containerSample{
		{"ns", "a", "c"}:   s(5, 10*time.Second),
		{"ns", "b", "c"}:   s(5, 10*time.Second),
		{"ns", "b", "new"}: s(1, 10*time.Second), // a container not in the previous scrape
		{"ns", "n", "c"}:   s(1, 10*time.Second), // a pod new since then
	}
	got := ratesBetween(prev, cur)
	a := got[podKey{"ns", "a"}]
	if a == nil || !a.complete || len(a.containers) != 1 {
		t.Fatalf("pod a: %+v, want complete with one container", a)
	}
	if q := a.containers["c"].Usage[corev1.ResourceCPU]; q.MilliValue() != 500 {
		t.Fatalf("pod a cpu = %v, want 500m", q.String())
	}
	if b := got[podKey{"ns", "b"}]; b == nil || b.complete {
		t.Fatalf("pod b: %+v, want present and incomplete", b)
	}
	if n := got[podKey{"ns", "n"}]; n == nil || n.complete {
		t.Fatalf("pod n: %+v, want present and incomplete", n)
	}
	if first := ratesBetween(nil, cur); len(first) != 3 || first[podKey{"ns", "a"}].complete {
		t.Fatalf("first scrape: %+v, want three pods without rates", first)
	}
}
