package process

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every Linux architecture Go
// supports).
const clockTicks = 100

// procSample is the summed usage of one process group.
type procSample struct {
	cpuNanos uint64 // user+system CPU time
	rssBytes uint64
}

// groupUsage sums /proc/<pid>/stat over every process of each process group in pgids.
func groupUsage(pgids map[int]bool) map[int]procSample {
	out := map[int]procSample{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	page := uint64(os.Getpagesize())
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name (which may contain spaces) start after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		// f[0] is state (field 3); pgrp is field 5, utime 14, stime 15, rss 24.
		if len(f) < 22 {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])
		if !pgids[pgrp] {
			continue
		}
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		rss, _ := strconv.ParseUint(f[21], 10, 64)
		cur := out[pgrp]
		cur.cpuNanos += (ut + st) * uint64(time.Second) / clockTicks
		cur.rssBytes += rss * page
		out[pgrp] = cur
	}
	return out
}

// cpuPoint is the last CPU reading of a container, for the usage rate.
type cpuPoint struct {
	at    time.Time
	nanos uint64
}

// PodStats implements backend.StatsReporter from /proc: CPU time and resident memory of every process in each
// container's process group.
func (b *Backend) PodStats(context.Context) ([]statsv1alpha1.PodStats, error) {
	b.mu.Lock()
	runs := make([]*podRun, 0, len(b.pods))
	for _, r := range b.pods {
		runs = append(runs, r)
	}
	b.mu.Unlock()
	pgids := map[int]bool{}
	for _, r := range runs {
		r.mu.Lock()
		for _, c := range r.containers {
			if c.proc != nil {
				pgids[c.pgid] = true
			}
		}
		r.mu.Unlock()
	}
	usage := groupUsage(pgids)
	now := time.Now()
	mt := metav1.NewTime(now)
	out := make([]statsv1alpha1.PodStats, 0, len(runs))
	for _, r := range runs {
		ps := statsv1alpha1.PodStats{
			PodRef:    statsv1alpha1.PodReference{Name: r.pod.Name, Namespace: r.pod.Namespace, UID: string(r.pod.UID)},
			StartTime: r.started,
		}
		var podCPU, podRate, podMem uint64
		r.mu.Lock()
		for _, c := range r.containers {
			if c.proc == nil || c.status.State.Running == nil {
				continue
			}
			u := usage[c.pgid]
			rate := uint64(0)
			if c.lastCPU.at.IsZero() || u.cpuNanos < c.lastCPU.nanos {
				c.lastCPU = cpuPoint{at: r.started.Time, nanos: 0}
			}
			if dt := now.Sub(c.lastCPU.at); dt > 0 {
				rate = uint64(float64(u.cpuNanos-c.lastCPU.nanos) / dt.Seconds())
			}
			c.lastCPU = cpuPoint{at: now, nanos: u.cpuNanos}
			cpuNanos, mem := u.cpuNanos, u.rssBytes
			ps.Containers = append(ps.Containers, statsv1alpha1.ContainerStats{
				Name:      c.name(),
				StartTime: c.status.State.Running.StartedAt,
				CPU:       &statsv1alpha1.CPUStats{Time: mt, UsageNanoCores: &rate, UsageCoreNanoSeconds: &cpuNanos},
				Memory:    &statsv1alpha1.MemoryStats{Time: mt, WorkingSetBytes: &mem, RSSBytes: &mem, UsageBytes: &mem},
			})
			podCPU += cpuNanos
			podRate += rate
			podMem += mem
		}
		r.mu.Unlock()
		ps.CPU = &statsv1alpha1.CPUStats{Time: mt, UsageNanoCores: &podRate, UsageCoreNanoSeconds: &podCPU}
		ps.Memory = &statsv1alpha1.MemoryStats{Time: mt, WorkingSetBytes: &podMem, RSSBytes: &podMem, UsageBytes: &podMem}
		out = append(out, ps)
	}
	return out, nil
}
