package core

import (
	"errors"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// Config holds the kube-controller-manager flags that shape HPA decisions.
type Config struct {
	// Tolerance is --horizontal-pod-autoscaler-tolerance (0.1).
	Tolerance float64
	// CPUInitializationPeriod is --horizontal-pod-autoscaler-cpu-initialization-period (5m).
	CPUInitializationPeriod time.Duration
	// InitialReadinessDelay is --horizontal-pod-autoscaler-initial-readiness-delay (30s).
	InitialReadinessDelay time.Duration
	// DownscaleStabilizationWindow is --horizontal-pod-autoscaler-downscale-stabilization (5m); it applies when
	// behavior is nil or behavior.scaleDown.stabilizationWindowSeconds is unset.
	DownscaleStabilizationWindow time.Duration
	// ScaleUpLimitFactor and ScaleUpLimitMinimum bound a scale-up when behavior is nil:
	// max(factor*current, minimum). Upstream hard-codes 2 and 4.
	ScaleUpLimitFactor  float64
	ScaleUpLimitMinimum float64
}

// DefaultConfig returns the kube-controller-manager defaults.
func DefaultConfig() Config {
	return Config{
		Tolerance:                    DefaultTolerance,
		CPUInitializationPeriod:      5 * time.Minute,
		InitialReadinessDelay:        30 * time.Second,
		DownscaleStabilizationWindow: 5 * time.Minute,
		ScaleUpLimitFactor:           2,
		ScaleUpLimitMinimum:          4,
	}
}

func (c *Config) validate() error {
	switch {
	case !(c.Tolerance >= 0):
		return fmt.Errorf("config.tolerance: must be a non-negative number, got %v", c.Tolerance)
	case c.CPUInitializationPeriod < 0:
		return fmt.Errorf("config.cpuInitializationPeriod: must not be negative, got %s", c.CPUInitializationPeriod)
	case c.InitialReadinessDelay < 0:
		return fmt.Errorf("config.initialReadinessDelay: must not be negative, got %s", c.InitialReadinessDelay)
	case c.DownscaleStabilizationWindow < 0:
		return fmt.Errorf("config.downscaleStabilizationWindow: must not be negative, got %s", c.DownscaleStabilizationWindow)
	case !(c.ScaleUpLimitFactor >= 0) || !(c.ScaleUpLimitMinimum >= 0):
		return fmt.Errorf("config.scaleUpLimitFactor/scaleUpLimitMinimum: must be non-negative numbers")
	}
	return nil
}

// Metric is one entry of an HPA's spec.metrics together with what was observed for it.
type Metric struct {
	Spec autoscalingv2.MetricSpec

	// Samples are the per-pod samples (Resource, ContainerResource, Pods), aligned with HPAInput.Pods.
	Samples []PodSample
	// SampleTimes are the per-pod sample times (optional; see PodMetricInput.SampleTimes).
	SampleTimes []SampleTime
	// Requests are the per-pod requests in milli-units (Resource/ContainerResource Utilization targets), aligned
	// with HPAInput.Pods. See PodRequest.
	Requests []int64
	// Unmatched are samples whose pod is not in HPAInput.Pods.
	Unmatched []int64
	// Value is the object's metric value in milli-units (Object).
	Value int64
	// Values are the external metric's series values in milli-units (External); they are summed.
	Values []int64
	// Err is set when the metric could not be fetched; the metric is then invalid, as upstream.
	Err error
	// Replicas, when set, replaces the computation: the metric proposes exactly this count. Decide uses it for
	// KEDA fallback.
	Replicas *int32
}

// HPAInput is everything one HPA reconcile needs.
type HPAInput struct {
	// SpecReplicas is the scale subresource's spec.replicas (the current desired count).
	SpecReplicas int32
	// StatusReplicas is the scale subresource's status.replicas (pods that exist); AverageValue object and
	// external targets divide by it.
	StatusReplicas int32
	// MinReplicas is spec.minReplicas after defaulting (1 when unset; 0 allowed with HPAScaleToZero).
	MinReplicas int32
	MaxReplicas int32
	Behavior    *autoscalingv2.HorizontalPodAutoscalerBehavior
	Metrics     []Metric
	// Pods are the pods selected by the scale target's selector.
	Pods    []PodInfo
	History History
	// Config is the controller configuration; nil means DefaultConfig.
	Config *Config
}

// Condition is an HPA status condition (without transition time, which the caller manages).
type Condition struct {
	Type    autoscalingv2.HorizontalPodAutoscalerConditionType `json:"type"`
	Status  corev1.ConditionStatus                             `json:"status"`
	Reason  string                                             `json:"reason"`
	Message string                                             `json:"message,omitempty"`
}

// MetricResult is the outcome for one metric.
type MetricResult struct {
	Proposal
	Err error `json:"-"`
}

// HPAResult is the outcome of one HPA reconcile.
type HPAResult struct {
	// DesiredReplicas is the count to apply; equal to SpecReplicas when Rescale is false.
	DesiredReplicas int32
	Rescale         bool
	// MetricReplicas is the largest valid proposal before normalization (-1 when none was computed).
	MetricReplicas int32
	// MetricIndex is the index of the metric that produced MetricReplicas (-1 when none).
	MetricIndex int
	// Metrics holds one result per input metric.
	Metrics []MetricResult
	// Conditions are AbleToScale, ScalingActive, ScalingLimited and ScaledToZero as the controller would set
	// them before updating the scale (the caller reports SucceededRescale/FailedUpdateScale itself).
	Conditions []Condition
	// MetricsErr is set when some or all metrics were invalid. When all were invalid, or some were and the valid
	// ones proposed a scale-down, no scaling happens (Rescale false).
	MetricsErr error
	// Reason is a human readable reason for the rescale, as upstream puts in its event.
	Reason string
	// History is the updated history; persist it once the scale has been applied.
	History History
}

// ComputeHPA reproduces one reconcile of the upstream HPA controller (reconcileAutoscaler without the API calls):
// the per-metric proposals, the largest one, the out-of-range shortcuts, scale-to-zero handling, and
// normalization (legacy when Behavior is nil, otherwise stabilization windows and rate policies). It returns an
// error only for invalid input; metric failures are reported in the result.
func ComputeHPA(in HPAInput, now time.Time) (HPAResult, error) {
	cfg := DefaultConfig()
	if in.Config != nil {
		cfg = *in.Config
	}
	if err := validateHPAInput(&in, &cfg); err != nil {
		return HPAResult{}, err
	}
	res := HPAResult{MetricReplicas: -1, MetricIndex: -1, History: in.History.clone()}
	res.Conditions = make([]Condition, 0, 4)
	h := &res.History
	current := in.SpecReplicas
	if !h.Initialized {
		h.Initialized = true
		if len(h.Recommendations) == 0 {
			h.Recommendations = append(h.Recommendations, Recommendation{Replicas: current, Time: now})
		}
	}

	hasObjectOrExternal := false
	for i := range in.Metrics {
		t := in.Metrics[i].Spec.Type
		if t == autoscalingv2.ObjectMetricSourceType || t == autoscalingv2.ExternalMetricSourceType {
			hasObjectOrExternal = true
			break
		}
	}
	scaledToZero := h.ScaledToZero

	desired := int32(0)
	compute := true
	switch {
	case current == 0:
		if !((in.MinReplicas != 0 && scaledToZero) || (scaledToZero && hasObjectOrExternal)) {
			res.setCondition(autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled",
				"scaling is disabled since the replica count of the target is zero")
			res.DesiredReplicas = 0
			return res, nil
		}
	case current > in.MaxReplicas:
		res.Reason = "Current number of replicas above Spec.MaxReplicas"
		desired, compute = in.MaxReplicas, false
	case current < in.MinReplicas:
		res.Reason = "Current number of replicas below Spec.MinReplicas"
		desired, compute = in.MinReplicas, false
	}

	if compute {
		tol := TolerancesFor(in.Behavior, cfg.Tolerance)
		metricDesired, idx, err := computeMetrics(&in, &cfg, tol, now, &res)
		if err != nil {
			return HPAResult{}, err
		}
		if metricDesired == -1 {
			res.DesiredReplicas = current
			return res, nil
		}
		res.MetricReplicas, res.MetricIndex = metricDesired, idx
		if metricDesired > desired {
			desired = metricDesired
		}
		switch {
		case desired > current:
			res.Reason = describeMetric(&in.Metrics[idx].Spec) + " above target"
		case desired < current:
			res.Reason = "All metrics below target"
		}
		if in.Behavior == nil {
			desired = normalizeLegacy(&res, current, desired, in.MinReplicas, in.MaxReplicas, &cfg, now)
		} else {
			var up, down scalingRules
			resolveRules(in.Behavior.ScaleUp, true, cfg.DownscaleStabilizationWindow, &up)
			resolveRules(in.Behavior.ScaleDown, false, cfg.DownscaleStabilizationWindow, &down)
			desired = normalizeWithBehaviors(&res, current, desired, in.MinReplicas, in.MaxReplicas, &up, &down, now)
		}
		if current == 0 && in.MinReplicas != 0 && scaledToZero && desired < in.MinReplicas {
			desired = in.MinReplicas
			if res.Reason == "" {
				res.Reason = "Current number of replicas below Spec.MinReplicas"
			}
		}
	}

	res.Rescale = desired != current
	if !res.Rescale {
		res.DesiredReplicas = current
		return res, nil
	}
	res.DesiredReplicas = desired
	if in.Behavior != nil {
		var up, down scalingRules
		resolveRules(in.Behavior.ScaleUp, true, cfg.DownscaleStabilizationWindow, &up)
		resolveRules(in.Behavior.ScaleDown, false, cfg.DownscaleStabilizationWindow, &down)
		h.storeScaleEvent(&up, &down, current, desired, now)
	}
	h.ScaledToZero = current > 0 && desired == 0 && in.MinReplicas == 0 && hasObjectOrExternal
	if h.ScaledToZero {
		res.setCondition(autoscalingv2.ScaledToZero, corev1.ConditionTrue, "ScaledToZero", "the HPA controller scaled the workload to zero")
	} else {
		res.setCondition(autoscalingv2.ScaledToZero, corev1.ConditionFalse, "NotScaledToZero", "the HPA controller did not scale the workload to zero")
	}
	return res, nil
}

// computeMetrics is upstream's computeReplicasForMetrics: the largest valid proposal, or -1 when all metrics
// are invalid or some are invalid and the valid ones would scale down.
func computeMetrics(in *HPAInput, cfg *Config, tol Tolerances, now time.Time, res *HPAResult) (int32, int, error) {
	res.Metrics = make([]MetricResult, len(in.Metrics))
	var statics []podStatic
	for i := range in.Metrics {
		if t := in.Metrics[i].Spec.Type; len(in.Pods) > 0 && (t == autoscalingv2.ResourceMetricSourceType ||
			t == autoscalingv2.ContainerResourceMetricSourceType || t == autoscalingv2.PodsMetricSourceType) {
			g := podGrouping{now: now, cpuInitializationPeriod: cfg.CPUInitializationPeriod, initialReadinessDelay: cfg.InitialReadinessDelay}
			statics = g.statics(in.Pods)
			break
		}
	}
	var replicas int32
	idx := -1
	invalid := 0
	var firstErr error
	var firstReason string
	for i := range in.Metrics {
		p, reason, err := computeMetric(in, &in.Metrics[i], cfg, tol, now, statics)
		res.Metrics[i] = MetricResult{Proposal: p, Err: err}
		if err != nil && isInputError(err) {
			return -1, -1, fmt.Errorf("metrics[%d]: %w", i, err)
		}
		if err != nil {
			if invalid == 0 {
				firstErr, firstReason = err, reason
			}
			invalid++
			continue
		}
		if replicas == 0 || p.Replicas > replicas {
			replicas, idx = p.Replicas, i
		}
	}
	if firstErr != nil {
		res.MetricsErr = fmt.Errorf("invalid metrics (%d invalid out of %d), first error is: %w", invalid, len(in.Metrics), firstErr)
	}
	if invalid >= len(in.Metrics) || (invalid > 0 && replicas < in.SpecReplicas) {
		res.setCondition(autoscalingv2.ScalingActive, corev1.ConditionFalse, firstReason,
			"the HPA was unable to compute the replica count: "+firstErr.Error())
		return -1, -1, nil
	}
	res.setCondition(autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound",
		"the HPA was able to successfully calculate a replica count from "+describeMetric(&in.Metrics[idx].Spec))
	return replicas, idx, nil
}

// computeMetric computes one metric's proposal; on failure it returns upstream's condition reason.
func computeMetric(in *HPAInput, m *Metric, cfg *Config, tol Tolerances, now time.Time, statics []podStatic) (Proposal, string, error) {
	reason := failedReason(m.Spec.Type)
	if m.Err != nil {
		return Proposal{}, reason, m.Err
	}
	if m.Replicas != nil {
		return Proposal{Replicas: *m.Replicas}, reason, nil
	}
	pods := func(resource corev1.ResourceName) PodMetricInput {
		return PodMetricInput{
			CurrentReplicas:         in.SpecReplicas,
			Resource:                resource,
			Pods:                    in.Pods,
			Samples:                 m.Samples,
			SampleTimes:             m.SampleTimes,
			Requests:                m.Requests,
			Unmatched:               m.Unmatched,
			Tolerances:              tol,
			CPUInitializationPeriod: cfg.CPUInitializationPeriod,
			InitialReadinessDelay:   cfg.InitialReadinessDelay,
			Now:                     now,
			statics:                 statics,
		}
	}
	var (
		p   Proposal
		err error
	)
	switch m.Spec.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		var name corev1.ResourceName
		var target autoscalingv2.MetricTarget
		if m.Spec.Type == autoscalingv2.ResourceMetricSourceType {
			name, target = m.Spec.Resource.Name, m.Spec.Resource.Target
		} else {
			name, target = m.Spec.ContainerResource.Name, m.Spec.ContainerResource.Target
		}
		switch {
		case target.AverageValue != nil:
			p, err = AverageValueReplicas(pods(name), target.AverageValue.MilliValue())
		case target.AverageUtilization != nil:
			p, err = ResourceUtilizationReplicas(pods(name), *target.AverageUtilization)
		default:
			err = errors.New("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")
		}
	case autoscalingv2.PodsMetricSourceType:
		p, err = AverageValueReplicas(pods(""), m.Spec.Pods.Target.AverageValue.MilliValue())
	case autoscalingv2.ObjectMetricSourceType:
		t := &m.Spec.Object.Target
		switch {
		case t.Type == autoscalingv2.ValueMetricType && t.Value != nil:
			p, err = ValueReplicas(in.SpecReplicas, m.Value, t.Value.MilliValue(), tol, in.Pods)
		case t.Type == autoscalingv2.AverageValueMetricType && t.AverageValue != nil:
			p, err = PerPodValueReplicas(in.StatusReplicas, m.Value, t.AverageValue.MilliValue(), tol)
		default:
			err = errors.New("invalid object metric source: neither a value target nor an average value target was set")
		}
	case autoscalingv2.ExternalMetricSourceType:
		t := &m.Spec.External.Target
		var usage int64
		if usage, err = SumValues(m.Values); err != nil {
			break
		}
		switch {
		case t.AverageValue != nil:
			p, err = PerPodValueReplicas(in.StatusReplicas, usage, t.AverageValue.MilliValue(), tol)
		case t.Value != nil:
			p, err = ValueReplicas(in.SpecReplicas, usage, t.Value.MilliValue(), tol, in.Pods)
		default:
			err = errors.New("invalid external metric source: neither a value target nor an average value target was set")
		}
	default:
		return Proposal{}, "InvalidMetricSourceType", fmt.Errorf("unknown metric source type %q", m.Spec.Type)
	}
	return p, reason, err
}

func failedReason(t autoscalingv2.MetricSourceType) string {
	switch t {
	case autoscalingv2.ObjectMetricSourceType:
		return "FailedGetObjectMetric"
	case autoscalingv2.PodsMetricSourceType:
		return "FailedGetPodsMetric"
	case autoscalingv2.ResourceMetricSourceType:
		return "FailedGetResourceMetric"
	case autoscalingv2.ContainerResourceMetricSourceType:
		return "FailedGetContainerResourceMetric"
	case autoscalingv2.ExternalMetricSourceType:
		return "FailedGetExternalMetric"
	}
	return "InvalidMetricSourceType"
}

// describeMetric names a metric the way upstream's events and conditions do.
func describeMetric(s *autoscalingv2.MetricSpec) string {
	switch s.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if s.Resource.Target.AverageValue != nil {
			return string(s.Resource.Name) + " resource"
		}
		return string(s.Resource.Name) + " resource utilization (percentage of request)"
	case autoscalingv2.ContainerResourceMetricSourceType:
		if s.ContainerResource.Target.AverageValue != nil {
			return string(s.ContainerResource.Name) + " resource"
		}
		return string(s.ContainerResource.Name) + " container resource utilization (percentage of request)"
	case autoscalingv2.PodsMetricSourceType:
		return "pods metric " + s.Pods.Metric.Name
	case autoscalingv2.ObjectMetricSourceType:
		return s.Object.DescribedObject.Kind + " metric " + s.Object.Metric.Name
	case autoscalingv2.ExternalMetricSourceType:
		return "external metric " + s.External.Metric.Name
	}
	return string(s.Type)
}

// normalizeLegacy is upstream's normalizeDesiredReplicas (behavior nil).
func normalizeLegacy(res *HPAResult, current, desired, minReplicas, maxReplicas int32, cfg *Config, now time.Time) int32 {
	stabilized := res.History.stabilizeLegacy(desired, cfg.DownscaleStabilizationWindow, now)
	if stabilized != desired {
		res.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, ReasonScaleDownStabilized, msgDownStabilized)
	} else {
		res.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, ReasonReadyForNewScale, msgReadyToScale)
	}
	lim := convertWithRules(current, stabilized, minReplicas, maxReplicas, cfg)
	res.setLimited(lim, lim.replicas != stabilized)
	return lim.replicas
}

// normalizeWithBehaviors is upstream's normalizeDesiredReplicasWithBehaviors.
func normalizeWithBehaviors(res *HPAResult, current, desired, minReplicas, maxReplicas int32, up, down *scalingRules, now time.Time) int32 {
	st := res.History.stabilizeWithBehaviors(current, desired, up, down, now)
	if st.replicas != desired {
		res.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, st.reason, st.message)
	} else {
		res.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, ReasonReadyForNewScale, msgReadyToScale)
	}
	lim := res.History.convertWithBehaviorRate(current, st.replicas, minReplicas, maxReplicas, up, down, now)
	res.setLimited(lim, lim.replicas != st.replicas)
	return lim.replicas
}

func (res *HPAResult) setLimited(lim limitResult, limited bool) {
	status := corev1.ConditionFalse
	if limited {
		status = corev1.ConditionTrue
	}
	res.setCondition(autoscalingv2.ScalingLimited, status, lim.reason, lim.message)
}

func (res *HPAResult) setCondition(t autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason, message string) {
	for i := range res.Conditions {
		if res.Conditions[i].Type == t {
			res.Conditions[i] = Condition{Type: t, Status: status, Reason: reason, Message: message}
			return
		}
	}
	res.Conditions = append(res.Conditions, Condition{Type: t, Status: status, Reason: reason, Message: message})
}

// Condition returns the condition of the given type, if set.
func (res *HPAResult) Condition(t autoscalingv2.HorizontalPodAutoscalerConditionType) (Condition, bool) {
	for _, c := range res.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}
