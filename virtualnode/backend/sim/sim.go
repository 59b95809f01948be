// Package sim is the virtual-node backend for benchmarks at thousands of pods: pods "start" after a latency
// drawn from a configurable distribution, fail with a configurable probability, report CPU and memory use
// derived from their requests (so metrics.k8s.io has something to serve), and stop after a delete latency.
// Nothing runs: one timer per pending transition, no goroutine per pod.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/podstatus"
)

// Annotations a pod can carry to steer its simulation.
const (
	// AnnotationRunFor makes the pod's containers exit 0 after this duration (for Jobs).
	AnnotationRunFor = "sim.tidal.dev/run-for"
	// AnnotationCPUUsage overrides Options.CPUUsage for the pod: the fraction of its CPU request it uses.
	AnnotationCPUUsage = "sim.tidal.dev/cpu-usage"
)

// Options configure the simulation.
type Options struct {
	Changed       backend.ChangeFunc
	NodeIP        string
	StartLatency  Latency
	DeleteLatency Latency
	// FailureRate is the probability in [0,1] that a pod fails to start.
	FailureRate float64
	// CPUUsage and MemoryUsage are the fractions of the requests a running pod reports using (default 0.5).
	CPUUsage, MemoryUsage float64
	Seed                  uint64
	Clock                 clock.WithDelayedExecution
}

// Validate checks the options, naming the field.
func (o Options) Validate() error {
	var errs []error
	if o.Changed == nil {
		errs = append(errs, errors.New("sim backend: Changed: must be set"))
	}
	if o.FailureRate < 0 || o.FailureRate > 1 {
		errs = append(errs, fmt.Errorf("sim backend: failureRate: want 0..1, got %v", o.FailureRate))
	}
	if o.CPUUsage < 0 || o.MemoryUsage < 0 {
		errs = append(errs, errors.New("sim backend: cpuUsage/memoryUsage: must not be negative"))
	}
	return errors.Join(errs...)
}

// Backend simulates pods. Use New.
type Backend struct {
	opts Options
	clk  clock.WithDelayedExecution

	mu   sync.Mutex
	rnd  *rand.Rand
	pods map[backend.Key]*simPod
}

var _ backend.Backend = (*Backend)(nil)
var _ backend.StatsReporter = (*Backend)(nil)
var _ backend.LogReader = (*Backend)(nil)

type simPod struct {
	pod      *corev1.Pod
	created  time.Time
	running  time.Time // zero until started
	status   *corev1.PodStatus
	timer    clock.Timer
	deleting bool
}

// New returns a sim backend.
func New(opts Options) (*Backend, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.CPUUsage == 0 {
		opts.CPUUsage = 0.5
	}
	if opts.MemoryUsage == 0 {
		opts.MemoryUsage = 0.5
	}
	if opts.NodeIP == "" {
		opts.NodeIP = "127.0.0.1"
	}
	seed := opts.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return &Backend{opts: opts, clk: opts.Clock, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), pods: map[backend.Key]*simPod{}}, nil
}

// Create implements backend.Backend.
func (b *Backend) Create(_ context.Context, p backend.Pod) error {
	key := backend.KeyOf(p.Pod)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.pods[key]; ok {
		return nil
	}
	sp := &simPod{pod: p.Pod, created: b.clk.Now()}
	sp.status = b.buildLocked(sp, containerStates(p.Pod, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}), "", "", false, sp.created)
	b.pods[key] = sp
	delay := b.opts.StartLatency.Sample(b.rnd)
	fail := b.opts.FailureRate > 0 && b.rnd.Float64() < b.opts.FailureRate
	due := sp.created.Add(delay)
	sp.timer = b.clk.AfterFunc(delay, func() { b.start(key, sp, fail, due) })
	return nil
}

func containerStates(pod *corev1.Pod, st corev1.ContainerState) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		out = append(out, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "sim://" + c.Image,
			ContainerID: fmt.Sprintf("sim://%s/%d", pod.UID, i), State: *st.DeepCopy(),
		})
	}
	return out
}

// Timer callbacks take their time from when they were due, not from the clock: a fake clock runs them while
// holding its own lock.

func (b *Backend) buildLocked(sp *simPod, cs []corev1.ContainerStatus, reason, msg string, failed bool, now time.Time) *corev1.PodStatus {
	var start metav1.Time
	if !sp.running.IsZero() {
		start = metav1.NewTime(sp.running)
	}
	return podstatus.Build(podstatus.Input{
		Pod: sp.pod, Containers: cs, HostIP: b.opts.NodeIP, PodIP: b.opts.NodeIP, StartTime: start,
		Reason: reason, Message: msg, Failed: failed, Now: metav1.NewTime(now),
	})
}

func (b *Backend) start(key backend.Key, sp *simPod, fail bool, now time.Time) {
	b.mu.Lock()
	if b.pods[key] != sp || sp.deleting {
		b.mu.Unlock()
		return
	}
	sp.running = now
	if fail {
		cs := containerStates(sp.pod, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: backend.ReasonSimulatedFailure, StartedAt: metav1.NewTime(now), FinishedAt: metav1.NewTime(now)}})
		sp.status = b.buildLocked(sp, cs, backend.ReasonSimulatedFailure, "simulated start failure", true, now)
	} else {
		cs := containerStates(sp.pod, corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now)}})
		for i := range cs {
			cs[i].Ready = true
			started := true
			cs[i].Started = &started
		}
		sp.status = b.buildLocked(sp, cs, "", "", false, now)
		if d, err := time.ParseDuration(sp.pod.Annotations[AnnotationRunFor]); err == nil && d >= 0 {
			done := now.Add(d)
			sp.timer = b.clk.AfterFunc(d, func() { b.complete(key, sp, done) })
		}
	}
	st := sp.status.DeepCopy()
	b.mu.Unlock()
	b.opts.Changed(key, st)
}

func (b *Backend) complete(key backend.Key, sp *simPod, now time.Time) {
	b.mu.Lock()
	if b.pods[key] != sp || sp.deleting {
		b.mu.Unlock()
		return
	}
	cs := containerStates(sp.pod, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 0, Reason: "Completed", StartedAt: metav1.NewTime(sp.running), FinishedAt: metav1.NewTime(now)}})
	sp.status = b.buildLocked(sp, cs, "", "", false, now)
	if sp.pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
		sp.status.Phase = corev1.PodRunning // would restart; keep it simple: report Running
	}
	st := sp.status.DeepCopy()
	b.mu.Unlock()
	b.opts.Changed(key, st)
}

// Delete implements backend.Backend.
func (b *Backend) Delete(_ context.Context, key backend.Key, _ time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	sp, ok := b.pods[key]
	if !ok {
		return backend.NotFound(key)
	}
	if sp.deleting {
		return nil
	}
	sp.deleting = true
	if sp.timer != nil {
		sp.timer.Stop()
	}
	delay := b.opts.DeleteLatency.Sample(b.rnd)
	due := b.clk.Now().Add(delay)
	b.clk.AfterFunc(delay, func() {
		b.mu.Lock()
		st := podstatus.Terminated(sp.pod, sp.status, "Killed", metav1.NewTime(due))
		if b.pods[key] == sp {
			delete(b.pods, key)
		}
		b.mu.Unlock()
		b.opts.Changed(key, st)
	})
	return nil
}

// Status implements backend.Backend.
func (b *Backend) Status(_ context.Context, key backend.Key) (*corev1.PodStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sp, ok := b.pods[key]
	if !ok {
		return nil, backend.NotFound(key)
	}
	return sp.status.DeepCopy(), nil
}

// Close implements backend.Backend.
func (b *Backend) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, sp := range b.pods {
		if sp.timer != nil {
			sp.timer.Stop()
		}
		delete(b.pods, k)
	}
	return nil
}

// Logs implements backend.LogReader with the simulated lifecycle as log lines.
func (b *Backend) Logs(_ context.Context, key backend.Key, container string, opts backend.LogOptions) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sp, ok := b.pods[key]
	if !ok {
		return nil, backend.NotFound(key)
	}
	var sb strings.Builder
	line := func(t time.Time, s string) {
		if !opts.SinceTime.IsZero() && t.Before(opts.SinceTime) {
			return
		}
		if opts.Timestamps {
			sb.WriteString(t.UTC().Format(time.RFC3339Nano) + " ")
		}
		sb.WriteString(s + "\n")
	}
	line(sp.created, fmt.Sprintf("sim: container %q of pod %s created", container, key))
	if !sp.running.IsZero() {
		line(sp.running, fmt.Sprintf("sim: container %q started after %s", container, sp.running.Sub(sp.created)))
	}
	return io.NopCloser(strings.NewReader(sb.String())), nil
}

// PodStats implements backend.StatsReporter: running pods use CPUUsage of their CPU request (or the
// sim.tidal.dev/cpu-usage annotation) and MemoryUsage of their memory request.
func (b *Backend) PodStats(context.Context) ([]statsv1alpha1.PodStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clk.Now()
	mt := metav1.NewTime(now)
	out := make([]statsv1alpha1.PodStats, 0, len(b.pods))
	for _, sp := range b.pods {
		if sp.running.IsZero() || sp.status.Phase != corev1.PodRunning {
			continue
		}
		cpuFrac := b.opts.CPUUsage
		if v, ok := sp.pod.Annotations[AnnotationCPUUsage]; ok {
			if f, err := parseFraction(v); err == nil {
				cpuFrac = f
			}
		}
		ps := statsv1alpha1.PodStats{
			PodRef:    statsv1alpha1.PodReference{Name: sp.pod.Name, Namespace: sp.pod.Namespace, UID: string(sp.pod.UID)},
			StartTime: metav1.NewTime(sp.running),
		}
		var podRate, podSecs, podMem uint64
		for _, c := range sp.pod.Spec.Containers {
			cpuReq := c.Resources.Requests.Cpu().MilliValue()
			memReq := c.Resources.Requests.Memory().Value()
			rate := uint64(float64(cpuReq) * 1e6 * cpuFrac)
			secs := uint64(float64(rate) * now.Sub(sp.running).Seconds())
			mem := uint64(float64(memReq) * b.opts.MemoryUsage)
			ps.Containers = append(ps.Containers, statsv1alpha1.ContainerStats{
				Name: c.Name, StartTime: metav1.NewTime(sp.running),
				CPU:    &statsv1alpha1.CPUStats{Time: mt, UsageNanoCores: ptr.To(rate), UsageCoreNanoSeconds: ptr.To(secs)},
				Memory: &statsv1alpha1.MemoryStats{Time: mt, WorkingSetBytes: ptr.To(mem), UsageBytes: ptr.To(mem), RSSBytes: ptr.To(mem)},
			})
			podRate, podSecs, podMem = podRate+rate, podSecs+secs, podMem+mem
		}
		ps.CPU = &statsv1alpha1.CPUStats{Time: mt, UsageNanoCores: ptr.To(podRate), UsageCoreNanoSeconds: ptr.To(podSecs)}
		ps.Memory = &statsv1alpha1.MemoryStats{Time: mt, WorkingSetBytes: ptr.To(podMem), UsageBytes: ptr.To(podMem), RSSBytes: ptr.To(podMem)}
		out = append(out, ps)
	}
	return out, nil
}

func parseFraction(s string) (float64, error) {
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil || f < 0 {
		return 0, fmt.Errorf("want a non-negative number, got %q", s)
	}
	return f, nil
}
