package core

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcehelpers "k8s.io/component-helpers/resource"
)

// PodInfo is what the replica calculation needs to know about one pod selected by the scale target. Build it
// with PodFromObject, or fill it directly from any cache.
type PodInfo struct {
	Name  string
	Phase corev1.PodPhase
	// Deleting is true when the pod has a deletion timestamp; such pods are ignored like failed pods.
	Deleting bool
	// StartTime is pod.status.startTime; nil when the kubelet has not reported it.
	StartTime *time.Time
	// Ready is the pod's Ready condition; nil when the pod has none.
	Ready *PodReadiness
}

// PodReadiness is a pod's Ready condition.
type PodReadiness struct {
	Status             corev1.ConditionStatus
	LastTransitionTime time.Time
}

// PodSample is one pod's metric sample, in milli-units. Samples are passed aligned with the pod list
// (Samples[i] belongs to Pods[i]) so the calculation needs no map; Present is false when the metrics API returned
// nothing for that pod. The struct is kept small on purpose: a decision streams through one per pod per metric.
type PodSample struct {
	Value   int64
	Present bool
}

// SampleTime is when a pod's sample was taken (metrics.k8s.io timestamp and window). It only matters for CPU
// samples of Ready pods still inside the CPU initialization period, which upstream ignores until one full window
// has been collected since the pod became ready.
type SampleTime struct {
	Timestamp time.Time
	Window    time.Duration
}

// PodFromObject extracts the fields the calculator uses from a Pod.
func PodFromObject(pod *corev1.Pod) PodInfo {
	info := PodInfo{
		Name:     pod.Name,
		Phase:    pod.Status.Phase,
		Deleting: pod.DeletionTimestamp != nil,
	}
	if pod.Status.StartTime != nil {
		t := pod.Status.StartTime.Time
		info.StartTime = &t
	}
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type == corev1.PodReady {
			info.Ready = &PodReadiness{Status: c.Status, LastTransitionTime: c.LastTransitionTime.Time}
			break
		}
	}
	return info
}

// PodRequest returns the pod's request for resource in milli-units, as the HPA controller computes it
// (calculateRequests in k8s.io/kubernetes v1.37 pkg/controller/podautoscaler): the named container's request when
// container is set; otherwise, when the pod sets a pod-level request for a supported resource (PodLevelResources, on
// by default since v1.34), what k8s.io/component-helpers/resource PodRequests computes — the containers' aggregate
// (regular containers plus sidecars, at least the largest init container) overlaid by the pod-level requests that
// are set, plus overhead — so a pod-level request for cpu alone still yields a memory request from the containers;
// otherwise the sum over containers and restartable (sidecar) init containers, where a container without a request
// for the resource is an error, as upstream.
//
// Deliberate difference: the container sum saturates at math.MaxInt64 milli-units where upstream's int64 addition
// wraps; no real pod gets there, and a wrapped (negative) request would turn utilization upside down.
func PodRequest(pod *corev1.Pod, container string, resource corev1.ResourceName) (int64, error) {
	if container == "" && resourcehelpers.IsPodLevelRequestsSet(pod) {
		q, ok := resourcehelpers.PodRequests(pod, resourcehelpers.PodResourcesOptions{})[resource]
		if !ok {
			return 0, fmt.Errorf("pod %s: missing pod-level request for %s", pod.Name, resource)
		}
		return q.MilliValue(), nil
	}
	var total int64
	check := func(c *corev1.Container) (bool, error) {
		if container != "" && c.Name != container {
			return false, nil
		}
		q, ok := c.Resources.Requests[resource]
		if !ok {
			return false, fmt.Errorf("pod %s: missing request for %s in container %s", pod.Name, resource, c.Name)
		}
		total = addSat(total, q.MilliValue())
		return container != "", nil
	}
	for i := range pod.Spec.Containers {
		if done, err := check(&pod.Spec.Containers[i]); err != nil || done {
			return total, err
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			continue
		}
		if done, err := check(c); err != nil || done {
			return total, err
		}
	}
	if container != "" {
		return 0, fmt.Errorf("pod %s: container %s not found", pod.Name, container)
	}
	return total, nil
}

// podClass is how one pod counts for one metric.
type podClass uint8

const (
	podReady   podClass = iota // sample used as is
	podUnready                 // pending, or (CPU only) not ready / inside the initialization window
	podMissing                 // no sample
	podIgnored                 // deleted or failed
)

// podGrouping holds the knobs of upstream's groupPods.
type podGrouping struct {
	cpu                     bool
	now                     time.Time
	cpuInitializationPeriod time.Duration
	initialReadinessDelay   time.Duration
}

// initCutoff is the start time after which a pod is still inside the CPU initialization period.
func (g *podGrouping) initCutoff() time.Time { return g.now.Add(-g.cpuInitializationPeriod) }

// podStatic is the part of a pod's classification that does not depend on the metric sample, computed once per
// decision and shared by all metrics: the low two bits are the phase class, the next two the CPU readiness verdict.
type podStatic uint8

const (
	staticActive  podStatic = 0 // neither ignored nor pending
	staticIgnored podStatic = 1
	staticPending podStatic = 2
	phaseMask     podStatic = 3

	cpuReady    podStatic = 0 << 2
	cpuUnready  podStatic = 1 << 2
	cpuBySample podStatic = 2 << 2 // inside the initialization period and Ready: depends on the sample's timestamp
	cpuMask     podStatic = 3 << 2
)

// static computes a pod's sample-independent classification; initCutoff is g.initCutoff().
func (g *podGrouping) static(p *PodInfo, initCutoff time.Time) podStatic {
	if p.Deleting || p.Phase == corev1.PodFailed {
		return staticIgnored
	}
	if p.Phase == corev1.PodPending {
		return staticPending
	}
	if p.Ready == nil || p.StartTime == nil {
		return staticActive | cpuUnready
	}
	if p.StartTime.After(initCutoff) { // start + cpuInitializationPeriod > now
		// Inside the initialization period: ignore the sample if the pod is unready or if no full metric window
		// has been collected since the last readiness transition.
		if p.Ready.Status == corev1.ConditionFalse {
			return staticActive | cpuUnready
		}
		return staticActive | cpuBySample
	}
	// After it: ignore the sample only if the pod is unready and has never been ready.
	if p.Ready.Status == corev1.ConditionFalse && p.StartTime.Add(g.initialReadinessDelay).After(p.Ready.LastTransitionTime) {
		return staticActive | cpuUnready
	}
	return staticActive | cpuReady
}

// statics computes the static classification of every pod.
func (g *podGrouping) statics(pods []PodInfo) []podStatic {
	out := make([]podStatic, len(pods))
	cutoff := g.initCutoff()
	for i := range pods {
		out[i] = g.static(&pods[i], cutoff)
	}
	return out
}

// classOf finishes the classification of a pod with its sample; it reproduces upstream's groupPods. t is the
// sample's time (nil when unknown, which counts as a stale sample).
func classOf(st podStatic, cpu bool, p *PodInfo, s *PodSample, t *SampleTime) podClass {
	switch st & phaseMask {
	case staticIgnored:
		return podIgnored
	case staticPending:
		return podUnready
	}
	if !s.Present {
		return podMissing
	}
	if !cpu {
		return podReady
	}
	switch st & cpuMask {
	case cpuReady:
		return podReady
	case cpuUnready:
		return podUnready
	}
	return bySample(p, t)
}

// bySample decides a Ready CPU pod inside its initialization period: the sample counts once a full metric window
// has been collected since the readiness transition.
func bySample(p *PodInfo, t *SampleTime) podClass {
	if t == nil || t.Timestamp.Before(p.Ready.LastTransitionTime.Add(t.Window)) {
		return podUnready
	}
	return podReady
}

// classify classifies one pod and its sample.
func (g *podGrouping) classify(p *PodInfo, s *PodSample, t *SampleTime) podClass {
	return classOf(g.static(p, g.initCutoff()), g.cpu, p, s, t)
}

// isPodReady reports a Running pod whose Ready condition is True (upstream's getReadyPodsCount).
func isPodReady(p *PodInfo) bool {
	return p.Phase == corev1.PodRunning && p.Ready != nil && p.Ready.Status == corev1.ConditionTrue
}

// readyPodCount counts ready pods; upstream fails when the selector matches no pod at all.
func readyPodCount(pods []PodInfo) (int64, error) {
	if len(pods) == 0 {
		return 0, errNoPods
	}
	var n int64
	for i := range pods {
		if isPodReady(&pods[i]) {
			n++
		}
	}
	return n, nil
}
