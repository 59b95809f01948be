package podmetrics

import (
	"fmt"
	"io"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
)

// The kubelet's /metrics/resource series read here, as metrics-server reads them. The pod_* and node_* series
// are not needed: PodMetrics reports per container, and NodeMetrics sums the pods.
const (
	seriesContainerCPU   = "container_cpu_usage_seconds_total"
	seriesContainerMem   = "container_memory_working_set_bytes"
	seriesContainerStart = "container_start_time_seconds"
)

// containerKey names one container of one pod in a scrape.
type containerKey struct {
	Namespace, Pod, Container string
}

// podKey names one pod.
type podKey struct {
	Namespace, Name string
}

// containerSample is one container's figures in one scrape.
type containerSample struct {
	// CPUSeconds is the cumulative CPU time in core-seconds at CPUTime.
	CPUSeconds float64
	CPUTime    time.Time
	HasCPU     bool
	// MemoryBytes is the working set.
	MemoryBytes float64
	HasMemory   bool
	// Start is the container's start time (zero when the kubelet does not report it); a new start between two
	// scrapes means a restart, whose counter began again.
	Start float64
}

// parseMetricsResource parses a kubelet /metrics/resource response (Prometheus text format) into each container's
// sample. A sample without its own timestamp is stamped scraped.
func parseMetricsResource(r io.Reader, scraped time.Time) (map[containerKey]containerSample, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics/resource: %w", err)
	}
	out := map[containerKey]containerSample{}
	each := func(name string, f func(k containerKey, s *containerSample, m *dto.Metric)) {
		mf := families[name]
		if mf == nil {
			return
		}
		for _, m := range mf.GetMetric() {
			k, ok := keyOf(m)
			if !ok {
				continue
			}
			s := out[k]
			f(k, &s, m)
			out[k] = s
		}
	}
	each(seriesContainerCPU, func(_ containerKey, s *containerSample, m *dto.Metric) {
		v := value(m)
		if math.IsNaN(v) || v < 0 {
			return
		}
		s.CPUSeconds, s.HasCPU, s.CPUTime = v, true, scraped
		if m.TimestampMs != nil {
			s.CPUTime = time.UnixMilli(m.GetTimestampMs())
		}
	})
	each(seriesContainerMem, func(_ containerKey, s *containerSample, m *dto.Metric) {
		v := value(m)
		if math.IsNaN(v) || v < 0 {
			return
		}
		s.MemoryBytes, s.HasMemory = v, true
	})
	each(seriesContainerStart, func(_ containerKey, s *containerSample, m *dto.Metric) {
		s.Start = value(m)
	})
	return out, nil
}

// keyOf reads the namespace, pod and container labels; a series without all three is not a container's.
func keyOf(m *dto.Metric) (containerKey, bool) {
	var k containerKey
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "namespace":
			k.Namespace = l.GetValue()
		case "pod":
			k.Pod = l.GetValue()
		case "container":
			k.Container = l.GetValue()
		}
	}
	return k, k.Namespace != "" && k.Pod != "" && k.Container != ""
}

// value is a counter's, gauge's or untyped metric's value.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return math.NaN()
}

// containerUsage is one container's usage between two scrapes.
type containerUsage struct {
	Usage  corev1.ResourceList
	Time   time.Time
	Window time.Duration
}

// usageBetween computes a container's usage from two samples: the CPU rate over the time between them, in
// millicores, and the later working set. It reports false when there is no rate: a sample lacks CPU or memory,
// the time did not advance, the counter went down or the container started again in between.
func usageBetween(prev, cur containerSample) (containerUsage, bool) {
	if !prev.HasCPU || !cur.HasCPU || !cur.HasMemory {
		return containerUsage{}, false
	}
	if prev.Start != 0 && cur.Start != 0 && prev.Start != cur.Start {
		return containerUsage{}, false
	}
	window := cur.CPUTime.Sub(prev.CPUTime)
	delta := cur.CPUSeconds - prev.CPUSeconds
	if window <= 0 || delta < 0 {
		return containerUsage{}, false
	}
	milli := int64(math.Round(delta / window.Seconds() * 1000))
	return containerUsage{
		Usage: corev1.ResourceList{
			corev1.ResourceCPU:    quantity(corev1.ResourceCPU, milli),
			corev1.ResourceMemory: quantity(corev1.ResourceMemory, int64(cur.MemoryBytes)*1000),
		},
		Time:   cur.CPUTime,
		Window: window,
	}, true
}

// podUsages groups the usage of every container with a rate by pod. A pod whose every container has a rate is
// complete; a pod in the scrape with some container lacking one is present but not complete.
type podUsages struct {
	containers map[string]containerUsage
	complete   bool
}

// ratesBetween computes the usage of every pod in cur from the samples of prev.
func ratesBetween(prev, cur map[containerKey]containerSample) map[podKey]*podUsages {
	out := map[podKey]*podUsages{}
	for k, s := range cur {
		pk := podKey{Namespace: k.Namespace, Name: k.Pod}
		pu := out[pk]
		if pu == nil {
			pu = &podUsages{containers: map[string]containerUsage{}, complete: true}
			out[pk] = pu
		}
		p, ok := prev[k]
		if !ok {
			pu.complete = false
			continue
		}
		u, ok := usageBetween(p, s)
		if !ok {
			pu.complete = false
			continue
		}
		pu.containers[k.Container] = u
	}
	return out
}
