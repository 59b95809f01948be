package containerd

import (
	"context"
	"strings"
	"time"

	cg1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	cg2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// cpuPoint is the last CPU reading of a container, for the usage rate.
type cpuPoint struct {
	at    time.Time
	nanos uint64
}

// usage is what one task's cgroup says.
type usage struct {
	cpuNanos, memUsage, workingSet, rss uint64
}

// taskUsage reads the task's cgroup metrics (v1 or v2, whichever the daemon reports).
func taskUsage(ctx context.Context, c *container) (usage, bool) {
	c.run.mu.Lock()
	t := c.task
	c.run.mu.Unlock()
	if t == nil {
		return usage{}, false
	}
	m, err := t.Metrics(ctx)
	if err != nil || m.GetData() == nil {
		return usage{}, false
	}
	data := m.GetData()
	switch {
	case strings.Contains(data.GetTypeUrl(), "cgroups.v1"):
		var s cg1.Metrics
		if proto.Unmarshal(data.GetValue(), &s) != nil {
			return usage{}, false
		}
		u := usage{cpuNanos: s.GetCPU().GetUsage().GetTotal(), memUsage: s.GetMemory().GetUsage().GetUsage(), rss: s.GetMemory().GetTotalRSS()}
		u.workingSet = u.memUsage
		if inactive := s.GetMemory().GetTotalInactiveFile(); inactive < u.workingSet {
			u.workingSet -= inactive
		}
		return u, true
	case strings.Contains(data.GetTypeUrl(), "cgroups.v2"):
		var s cg2.Metrics
		if proto.Unmarshal(data.GetValue(), &s) != nil {
			return usage{}, false
		}
		u := usage{cpuNanos: s.GetCPU().GetUsageUsec() * 1000, memUsage: s.GetMemory().GetUsage(), rss: s.GetMemory().GetAnon()}
		u.workingSet = u.memUsage
		if inactive := s.GetMemory().GetInactiveFile(); inactive < u.workingSet {
			u.workingSet -= inactive
		}
		return u, true
	}
	return usage{}, false
}

// PodStats implements backend.StatsReporter from each running container's cgroup: CPU time and rate, memory
// usage, working set (usage less inactive file cache, as the kubelet) and RSS.
func (b *Backend) PodStats(ctx context.Context) ([]statsv1alpha1.PodStats, error) {
	b.mu.Lock()
	runs := make([]*podRun, 0, len(b.pods))
	for _, r := range b.pods {
		runs = append(runs, r)
	}
	b.mu.Unlock()
	cctx := b.ctx(ctx)
	out := make([]statsv1alpha1.PodStats, 0, len(runs))
	for _, r := range runs {
		ps := statsv1alpha1.PodStats{
			PodRef:    statsv1alpha1.PodReference{Name: r.pod.Name, Namespace: r.pod.Namespace, UID: string(r.pod.UID)},
			StartTime: r.started,
		}
		var podCPU, podRate, podWS, podUsage, podRSS uint64
		for _, c := range r.containers {
			u, ok := taskUsage(cctx, c)
			if !ok {
				continue
			}
			now := time.Now()
			mt := metav1.NewTime(now)
			r.mu.Lock()
			running := c.status.State.Running
			if running == nil {
				r.mu.Unlock()
				continue
			}
			if c.lastCPU.at.IsZero() || u.cpuNanos < c.lastCPU.nanos {
				c.lastCPU = cpuPoint{at: running.StartedAt.Time, nanos: 0}
			}
			rate := uint64(0)
			if dt := now.Sub(c.lastCPU.at); dt > 0 {
				rate = uint64(float64(u.cpuNanos-c.lastCPU.nanos) / dt.Seconds())
			}
			c.lastCPU = cpuPoint{at: now, nanos: u.cpuNanos}
			startedAt := running.StartedAt
			r.mu.Unlock()
			cpuNanos, ws, mem, rss := u.cpuNanos, u.workingSet, u.memUsage, u.rss
			ps.Containers = append(ps.Containers, statsv1alpha1.ContainerStats{
				Name: c.spec.Name, StartTime: startedAt,
				CPU:    &statsv1alpha1.CPUStats{Time: mt, UsageNanoCores: &rate, UsageCoreNanoSeconds: &cpuNanos},
				Memory: &statsv1alpha1.MemoryStats{Time: mt, WorkingSetBytes: &ws, RSSBytes: &rss, UsageBytes: &mem},
			})
			podCPU += cpuNanos
			podRate += rate
			podWS += ws
			podUsage += mem
			podRSS += rss
		}
		mt := metav1.Now()
		ps.CPU = &statsv1alpha1.CPUStats{Time: mt, UsageNanoCores: &podRate, UsageCoreNanoSeconds: &podCPU}
		ps.Memory = &statsv1alpha1.MemoryStats{Time: mt, WorkingSetBytes: &podWS, RSSBytes: &podRSS, UsageBytes: &podUsage}
		out = append(out, ps)
	}
	return out, nil
}
