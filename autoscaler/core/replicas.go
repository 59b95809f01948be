package core

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Errors reported by the per-metric calculations; they carry upstream's wording so conditions read the same.
var (
	errNoPods    = errors.New("no pods returned by selector while calculating replica count")
	errNoMetrics = errors.New("did not receive metrics for targeted pods (pods might be unready)")
	errNoMatch   = errors.New("no metrics returned matched known pods")
)

// DefaultTolerance is the HPA controller's default --horizontal-pod-autoscaler-tolerance.
const DefaultTolerance = 0.1

// Tolerances are the usage-ratio bands inside which no scaling happens: a ratio r is tolerated when
// 1-ScaleDown <= r <= 1+ScaleUp.
type Tolerances struct {
	ScaleDown float64 `json:"scaleDown"`
	ScaleUp   float64 `json:"scaleUp"`
}

// Within reports whether usageRatio is inside the tolerance band.
func (t Tolerances) Within(usageRatio float64) bool {
	return 1.0-t.ScaleDown <= usageRatio && usageRatio <= 1.0+t.ScaleUp
}

// Proposal is one metric's replica recommendation.
type Proposal struct {
	Replicas int32 `json:"replicas"`
	// Usage is the metric's current value in milli-units: the per-pod average for pod metrics, the object's value
	// or the external total for Value targets, the per-pod value for AverageValue object/external targets.
	Usage int64 `json:"usage"`
	// Utilization is the average utilization in percent of request (Utilization targets only).
	Utilization int32 `json:"utilization,omitempty"`
}

// PodMetricInput is the input of the pod-based calculations (Resource, ContainerResource and Pods metrics).
type PodMetricInput struct {
	CurrentReplicas int32
	// Resource is the resource being measured; "cpu" enables the CPU initialization and readiness rules. Empty for
	// Pods (custom) metrics.
	Resource corev1.ResourceName
	Pods     []PodInfo
	// Samples[i] is the sample of Pods[i]; len(Samples) must equal len(Pods).
	Samples []PodSample
	// SampleTimes[i] is when Samples[i] was taken; optional (nil or aligned with Pods). Only CPU samples of Ready
	// pods inside the initialization period consult it; without it such a sample counts as stale (unready).
	SampleTimes []SampleTime
	// Requests[i] is the request of Pods[i] in milli-units (Utilization targets only; see PodRequest).
	Requests []int64
	// Unmatched are samples returned for pods that are not in Pods. Upstream counts them in plain averages and
	// skips them in utilization (they have no request); they are kept for exactness.
	Unmatched  []int64
	Tolerances Tolerances
	// CPUInitializationPeriod and InitialReadinessDelay are the controller flags of the same name.
	CPUInitializationPeriod time.Duration
	InitialReadinessDelay   time.Duration
	Now                     time.Time

	// statics optionally carries the pods' precomputed static classification (shared by all metrics of one
	// decision); nil computes it.
	statics []podStatic
}

// podAggregate is the outcome of grouping pods for one metric: counts and sums, no sets.
type podAggregate struct {
	ready, unready, missing       int64
	readySum                      int64
	readyReq, unreadyReq, missReq int64
	missingFallback               int64 // utilization: sum over missing pods of request*fallbackUtilization/100
	unmatched, unmatchedSum       int64
}

// readyOnly is the count when every pod reported and none is unready on a scale-up: the current count within
// the tolerance, else ratio × the ready pods.
func (a *podAggregate) readyOnly(current int32, tol Tolerances, ratio float64) int32 {
	if tol.Within(ratio) {
		return current
	}
	return ceilInt32(ratio * float64(a.ready))
}

func (in *PodMetricInput) aggregate(withRequests bool, fallbackUtilization int64) (podAggregate, error) {
	var a podAggregate
	if len(in.Pods) == 0 {
		return a, errNoPods
	}
	if len(in.Samples) != len(in.Pods) {
		return a, invalidInput("samples: have %d, want one per pod (%d)", len(in.Samples), len(in.Pods))
	}
	if in.SampleTimes != nil && len(in.SampleTimes) != len(in.Pods) {
		return a, invalidInput("sampleTimes: have %d, want none or one per pod (%d)", len(in.SampleTimes), len(in.Pods))
	}
	if withRequests && len(in.Requests) != len(in.Pods) {
		return a, invalidInput("requests: have %d, want one per pod (%d)", len(in.Requests), len(in.Pods))
	}
	g := podGrouping{
		cpu:                     in.Resource == corev1.ResourceCPU,
		now:                     in.Now,
		cpuInitializationPeriod: in.CPUInitializationPeriod,
		initialReadinessDelay:   in.InitialReadinessDelay,
	}
	statics := in.statics
	if len(statics) != len(in.Pods) {
		statics = g.statics(in.Pods)
	}
	samples := in.Samples[:len(in.Pods)]
	statics = statics[:len(in.Pods)]
	var readySum, readyReq, unreadyReq, missReq, missingFallback satSum
	for i := range samples {
		s := &samples[i]
		if s.Value < 0 {
			return a, invalidInput("samples[%d] (pod %s): negative value %d", i, in.Pods[i].Name, s.Value)
		}
		var req int64
		if withRequests {
			req = in.Requests[i]
			if req < 0 {
				return a, invalidInput("requests[%d] (pod %s): negative request %d", i, in.Pods[i].Name, req)
			}
		}
		// The common cases are decided inline from the precomputed static class; see classOf.
		st := statics[i]
		switch {
		case st&phaseMask == staticIgnored:
		case st&phaseMask == staticPending || (s.Present && g.cpu && st&cpuMask == cpuUnready):
			a.unready++
			unreadyReq.add(req)
		case !s.Present:
			a.missing++
			missReq.add(req)
			if withRequests {
				missingFallback.add(mulDivSat(req, fallbackUtilization, 100))
			}
		case !g.cpu || st&cpuMask == cpuReady:
			a.ready++
			readySum.add(s.Value)
			readyReq.add(req)
		default:
			var t *SampleTime
			if in.SampleTimes != nil {
				t = &in.SampleTimes[i]
			}
			if bySample(&in.Pods[i], t) == podReady {
				a.ready++
				readySum.add(s.Value)
				readyReq.add(req)
			} else {
				a.unready++
				unreadyReq.add(req)
			}
		}
	}
	a.readySum, a.readyReq, a.unreadyReq = readySum.value(), readyReq.value(), unreadyReq.value()
	a.missReq, a.missingFallback = missReq.value(), missingFallback.value()
	var unmatched satSum
	for i, v := range in.Unmatched {
		if v < 0 {
			return a, invalidInput("unmatched[%d]: negative value %d", i, v)
		}
		a.unmatched++
		unmatched.add(v)
	}
	a.unmatchedSum = unmatched.value()
	return a, nil
}

// ResourceUtilizationReplicas is upstream's GetResourceReplicas: the replica count that brings the average
// utilization (percent of request) of the pods to targetUtilization.
func ResourceUtilizationReplicas(in PodMetricInput, targetUtilization int32) (Proposal, error) {
	if targetUtilization <= 0 {
		return Proposal{}, fmt.Errorf("target utilization: must be positive, got %d", targetUtilization)
	}
	a, err := in.aggregate(true, int64(max(100, targetUtilization)))
	if err != nil {
		return Proposal{}, err
	}
	if a.ready+a.unmatched == 0 {
		return Proposal{}, errNoMetrics
	}
	if a.readyReq == 0 {
		return Proposal{}, errNoMatch
	}
	utilization := clampInt32(mulDivSat(a.readySum, 100, a.readyReq))
	out := Proposal{Utilization: utilization, Usage: a.readySum / a.ready}
	ratio := float64(utilization) / float64(targetUtilization)

	scaleUpWithUnready := a.unready > 0 && ratio > 1.0
	if !scaleUpWithUnready && a.missing == 0 {
		out.Replicas = a.readyOnly(in.CurrentReplicas, in.Tolerances, ratio)
		return out, nil
	}

	// Re-run the calculation assuming missing pods use 100% (or the target, when above 100%) on a scale-down and
	// 0% on a scale-up, and unready pods use 0% on a scale-up.
	sum, req, n := a.readySum, a.readyReq, a.ready+a.unmatched
	if a.missing > 0 {
		switch {
		case ratio < 1.0:
			sum, req, n = addSat(sum, a.missingFallback), addSat(req, a.missReq), n+a.missing
		case ratio > 1.0:
			req, n = addSat(req, a.missReq), n+a.missing
		}
	}
	if scaleUpWithUnready {
		req, n = addSat(req, a.unreadyReq), n+a.unready
	}
	newRatio := float64(clampInt32(mulDivSat(sum, 100, req))) / float64(targetUtilization)
	out.Replicas = settle(in.CurrentReplicas, in.Tolerances, ratio, newRatio, n)
	return out, nil
}

// AverageValueReplicas is upstream's calcPlainMetricReplicas, used for Pods metrics and Resource AverageValue
// targets: the replica count that brings the per-pod average to targetUsage (milli-units).
func AverageValueReplicas(in PodMetricInput, targetUsage int64) (Proposal, error) {
	if targetUsage <= 0 {
		return Proposal{}, fmt.Errorf("target average value: must be positive, got %dm", targetUsage)
	}
	a, err := in.aggregate(false, 0)
	if err != nil {
		return Proposal{}, err
	}
	n := a.ready + a.unmatched
	if n == 0 {
		return Proposal{}, errNoMetrics
	}
	sum := addSat(a.readySum, a.unmatchedSum)
	out := Proposal{Usage: sum / n}
	ratio := float64(out.Usage) / float64(targetUsage)

	scaleUpWithUnready := a.unready > 0 && ratio > 1.0
	if !scaleUpWithUnready && a.missing == 0 {
		out.Replicas = a.readyOnly(in.CurrentReplicas, in.Tolerances, ratio)
		return out, nil
	}

	// Missing pods count as exactly the target on a scale-down and as 0 on a scale-up; unready pods as 0 on a
	// scale-up.
	if a.missing > 0 {
		switch {
		case ratio < 1.0:
			sum, n = addSat(sum, mulDivSat(targetUsage, a.missing, 1)), n+a.missing
		case ratio > 1.0:
			n += a.missing
		}
	}
	if scaleUpWithUnready {
		n += a.unready
	}
	newRatio := float64(sum/n) / float64(targetUsage)
	out.Replicas = settle(in.CurrentReplicas, in.Tolerances, ratio, newRatio, n)
	return out, nil
}

// settle finishes a pod calculation that had to assume values for unready or missing pods: it keeps the current
// count when the corrected ratio is tolerated, flips direction, or when the new count would move the wrong way.
func settle(current int32, tol Tolerances, ratio, newRatio float64, n int64) int32 {
	if tol.Within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return current
	}
	replicas := ceilInt32(newRatio * float64(n))
	if (newRatio < 1.0 && replicas > current) || (newRatio > 1.0 && replicas < current) {
		return current
	}
	return replicas
}

// ValueReplicas is upstream's getUsageRatioReplicaCount for Object and External metrics with a Value target:
// usage/target scales the number of ready pods. With zero current replicas it proposes ceil(usage/target),
// which is how the HPA scales from zero.
func ValueReplicas(currentReplicas int32, usage, target int64, tol Tolerances, pods []PodInfo) (Proposal, error) {
	if target <= 0 {
		return Proposal{}, fmt.Errorf("target value: must be positive, got %dm", target)
	}
	if usage < 0 {
		return Proposal{}, invalidInput("value: negative value %dm", usage)
	}
	out := Proposal{Usage: usage}
	ratio := float64(usage) / float64(target)
	if currentReplicas == 0 {
		out.Replicas = ceilInt32(ratio)
		return out, nil
	}
	if tol.Within(ratio) {
		out.Replicas = currentReplicas
		return out, nil
	}
	ready, err := readyPodCount(pods)
	if err != nil {
		return Proposal{}, err
	}
	out.Replicas = ceilInt32(ratio * float64(ready))
	return out, nil
}

// PerPodValueReplicas is upstream's GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas for
// AverageValue targets: usage is divided over statusReplicas (the pods that currently exist).
func PerPodValueReplicas(statusReplicas int32, usage, targetPerPod int64, tol Tolerances) (Proposal, error) {
	if targetPerPod <= 0 {
		return Proposal{}, fmt.Errorf("target average value: must be positive, got %dm", targetPerPod)
	}
	if usage < 0 {
		return Proposal{}, invalidInput("value: negative value %dm", usage)
	}
	if statusReplicas < 0 {
		return Proposal{}, fmt.Errorf("status replicas: negative value %d", statusReplicas)
	}
	out := Proposal{Replicas: statusReplicas}
	ratio := float64(usage) / (float64(targetPerPod) * float64(statusReplicas))
	if !tol.Within(ratio) {
		out.Replicas = ceilInt32(float64(usage) / float64(targetPerPod))
	}
	switch {
	case usage == math.MaxInt64:
		out.Usage = math.MaxInt64
	case statusReplicas == 0:
		out.Usage = usage
	default:
		perPod := math.Ceil(float64(usage) / float64(statusReplicas))
		if perPod >= math.MaxInt64 {
			out.Usage = math.MaxInt64
		} else {
			out.Usage = int64(perPod)
		}
	}
	return out, nil
}

// SumValues adds external metric values the way upstream does, saturating at math.MaxInt64.
func SumValues(values []int64) (int64, error) {
	var sum int64
	for i, v := range values {
		if v < 0 {
			return 0, invalidInput("values[%d]: negative value %dm", i, v)
		}
		sum = addSat(sum, v)
	}
	return sum, nil
}
