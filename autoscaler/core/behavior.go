package core

import (
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Limit reasons reported in the ScalingLimited condition, and stabilization reasons reported in AbleToScale.
const (
	ReasonDesiredWithinRange  = "DesiredWithinRange"
	ReasonTooFewReplicas      = "TooFewReplicas"
	ReasonTooManyReplicas     = "TooManyReplicas"
	ReasonScaleUpLimit        = "ScaleUpLimit"
	ReasonScaleDownLimit      = "ScaleDownLimit"
	ReasonScaleUpStabilized   = "ScaleUpStabilized"
	ReasonScaleDownStabilized = "ScaleDownStabilized"
	ReasonReadyForNewScale    = "ReadyForNewScale"
)

const (
	msgWithinRange     = "the desired count is within the acceptable range"
	msgTooFew          = "the desired replica count is less than the minimum replica count"
	msgTooMany         = "the desired replica count is more than the maximum replica count"
	msgUpLimit         = "the desired replica count is increasing faster than the maximum scale rate"
	msgDownLimit       = "the desired replica count is decreasing faster than the maximum scale rate"
	msgUpStabilized    = "recent recommendations were lower than current one, applying the lowest recent recommendation"
	msgDownStabilized  = "recent recommendations were higher than current one, applying the highest recent recommendation"
	msgReadyToScale    = "recommended size matches current size"
	defaultPolicyCount = 2
)

// scalingRules is one direction of a behavior with upstream's defaults filled in (GenerateHPAScaleUpRules /
// GenerateHPAScaleDownRules), without copying the caller's spec.
type scalingRules struct {
	window       time.Duration
	selectPolicy autoscalingv2.ScalingPolicySelect
	policies     []autoscalingv2.HPAScalingPolicy
	defaults     [defaultPolicyCount]autoscalingv2.HPAScalingPolicy
}

// resolveRules fills r the way the API server defaults a behavior: scale-up defaults to no stabilization and
// max(4 pods, 100%) per 15s; scale-down to the controller's downscale window and 100% per 15s.
func resolveRules(r *autoscalingv2.HPAScalingRules, up bool, downscaleWindow time.Duration, out *scalingRules) {
	out.selectPolicy = autoscalingv2.MaxChangePolicySelect
	if up {
		out.window = 0
		out.defaults[0] = autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}
		out.defaults[1] = autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}
		out.policies = out.defaults[:2]
	} else {
		out.window = downscaleWindow
		out.defaults[0] = autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}
		out.policies = out.defaults[:1]
	}
	if r == nil {
		return
	}
	if r.SelectPolicy != nil {
		out.selectPolicy = *r.SelectPolicy
	}
	if r.StabilizationWindowSeconds != nil {
		out.window = time.Duration(*r.StabilizationWindowSeconds) * time.Second
	}
	if r.Policies != nil {
		out.policies = r.Policies
	}
}

// validateRules checks one direction of a behavior.
func validateRules(field string, r *autoscalingv2.HPAScalingRules) error {
	if r == nil {
		return nil
	}
	if r.StabilizationWindowSeconds != nil && *r.StabilizationWindowSeconds < 0 {
		return fmt.Errorf("%s.stabilizationWindowSeconds: must not be negative, got %d", field, *r.StabilizationWindowSeconds)
	}
	if r.SelectPolicy != nil {
		switch *r.SelectPolicy {
		case autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect:
		default:
			return fmt.Errorf("%s.selectPolicy: unknown value %q", field, *r.SelectPolicy)
		}
	}
	for i, p := range r.Policies {
		if p.Type != autoscalingv2.PodsScalingPolicy && p.Type != autoscalingv2.PercentScalingPolicy {
			return fmt.Errorf("%s.policies[%d].type: unknown value %q", field, i, p.Type)
		}
		if p.Value <= 0 {
			return fmt.Errorf("%s.policies[%d].value: must be positive, got %d", field, i, p.Value)
		}
		if p.PeriodSeconds <= 0 {
			return fmt.Errorf("%s.policies[%d].periodSeconds: must be positive, got %d", field, i, p.PeriodSeconds)
		}
	}
	if r.Tolerance != nil {
		if t := r.Tolerance.AsApproximateFloat64(); t < 0 || math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("%s.tolerance: must be a non-negative number, got %s", field, r.Tolerance.String())
		}
	}
	return nil
}

// ValidateBehavior checks a behavior the way the API server would reject it.
func ValidateBehavior(b *autoscalingv2.HorizontalPodAutoscalerBehavior) error {
	if b == nil {
		return nil
	}
	if err := validateRules("behavior.scaleUp", b.ScaleUp); err != nil {
		return err
	}
	return validateRules("behavior.scaleDown", b.ScaleDown)
}

// TolerancesFor returns the tolerances of an HPA: the controller default, overridden per direction by
// behavior.scaleUp.tolerance / behavior.scaleDown.tolerance (HPAConfigurableTolerance, GA in v1.37).
func TolerancesFor(b *autoscalingv2.HorizontalPodAutoscalerBehavior, defaultTolerance float64) Tolerances {
	t := Tolerances{ScaleDown: defaultTolerance, ScaleUp: defaultTolerance}
	if b == nil {
		return t
	}
	if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
		t.ScaleDown = b.ScaleDown.Tolerance.AsApproximateFloat64()
	}
	if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
		t.ScaleUp = b.ScaleUp.Tolerance.AsApproximateFloat64()
	}
	return t
}

// stabilizeLegacy is upstream's stabilizeRecommendation (behavior nil): the highest recommendation inside the
// downscale window wins; the newest recommendation replaces the last expired one or is appended.
func (h *History) stabilizeLegacy(desired int32, window time.Duration, now time.Time) int32 {
	best := desired
	old := -1
	cutoff := now.Add(-window)
	for i, rec := range h.Recommendations {
		if rec.Time.Before(cutoff) {
			old = i
		} else if rec.Replicas > best {
			best = rec.Replicas
		}
	}
	h.record(old, desired, now)
	return best
}

func (h *History) record(old int, desired int32, now time.Time) {
	rec := Recommendation{Replicas: desired, Time: now}
	if old >= 0 {
		h.Recommendations[old] = rec
	} else {
		h.Recommendations = append(h.Recommendations, rec)
	}
}

// limitResult is a normalized replica count with the reason reported in ScalingLimited.
type limitResult struct {
	replicas int32
	reason   string
	message  string
}

// convertWithRules is upstream's convertDesiredReplicasWithRules (behavior nil): clamp to min and to
// min(max, max(factor*current, minimum)).
func convertWithRules(current, desired, minReplicas, maxReplicas int32, cfg *Config) limitResult {
	upLimit := truncInt32(math.Max(cfg.ScaleUpLimitFactor*float64(current), cfg.ScaleUpLimitMinimum))
	maxAllowed, reason, msg := maxReplicas, ReasonTooManyReplicas, msgTooMany
	if maxReplicas > upLimit {
		maxAllowed, reason, msg = upLimit, ReasonScaleUpLimit, msgUpLimit
	}
	switch {
	case desired < minReplicas:
		return limitResult{minReplicas, ReasonTooFewReplicas, msgTooFew}
	case desired > maxAllowed:
		return limitResult{maxAllowed, reason, msg}
	}
	return limitResult{desired, ReasonDesiredWithinRange, msgWithinRange}
}

// stabilizeWithBehaviors is upstream's stabilizeRecommendationWithBehaviors: the recommendation is kept between
// the lowest recommendation of the scale-up window and the highest of the scale-down window.
func (h *History) stabilizeWithBehaviors(current, desired int32, up, down *scalingRules, now time.Time) limitResult {
	upRec, downRec := desired, desired
	upCutoff, downCutoff := now.Add(-up.window), now.Add(-down.window)
	old := -1
	for i, rec := range h.Recommendations {
		if rec.Time.After(upCutoff) {
			upRec = min(rec.Replicas, upRec)
		}
		if rec.Time.After(downCutoff) {
			downRec = max(rec.Replicas, downRec)
		}
		if rec.Time.Before(upCutoff) && rec.Time.Before(downCutoff) {
			old = i
		}
	}
	out := current
	if out < upRec {
		out = upRec
	}
	if out > downRec {
		out = downRec
	}
	h.record(old, desired, now)
	if desired >= current {
		return limitResult{out, ReasonScaleUpStabilized, msgUpStabilized}
	}
	return limitResult{out, ReasonScaleDownStabilized, msgDownStabilized}
}

// convertWithBehaviorRate is upstream's convertDesiredReplicasWithBehaviorRate: min/max plus the policies' rate
// limits computed from the recent scale events.
func (h *History) convertWithBehaviorRate(current, desired, minReplicas, maxReplicas int32, up, down *scalingRules, now time.Time) limitResult {
	switch {
	case desired > current:
		limit := scaleUpLimit(current, h.ScaleUpEvents, h.ScaleDownEvents, up, now)
		if limit < current {
			limit = current
		}
		maxAllowed, reason, msg := maxReplicas, ReasonTooManyReplicas, msgTooMany
		if maxAllowed > limit {
			maxAllowed, reason, msg = limit, ReasonScaleUpLimit, msgUpLimit
		}
		if desired > maxAllowed {
			return limitResult{maxAllowed, reason, msg}
		}
	case desired < current:
		limit := scaleDownLimit(current, h.ScaleUpEvents, h.ScaleDownEvents, down, now)
		if limit > current {
			limit = current
		}
		minAllowed, reason, msg := minReplicas, ReasonTooFewReplicas, msgTooFew
		if minAllowed < limit {
			minAllowed, reason, msg = limit, ReasonScaleDownLimit, msgDownLimit
		}
		if desired < minAllowed {
			return limitResult{minAllowed, reason, msg}
		}
	}
	return limitResult{desired, ReasonDesiredWithinRange, msgWithinRange}
}

// replicasChangePerPeriod sums the changes of the events newer than periodSeconds.
func replicasChangePerPeriod(periodSeconds int32, events []ScaleEvent, now time.Time) int32 {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	var n int32
	for _, e := range events {
		if e.Time.After(cutoff) {
			n = saturatingAdd32(n, e.Change)
		}
	}
	return n
}

// scaleUpLimit is upstream's calculateScaleUpLimitWithScalingRules: the highest count the policies allow now.
func scaleUpLimit(current int32, upEvents, downEvents []ScaleEvent, r *scalingRules, now time.Time) int32 {
	return policyLimit(true, current, upEvents, downEvents, r, now)
}

// scaleDownLimit is upstream's calculateScaleDownLimitWithBehaviors: the lowest count the policies allow now.
func scaleDownLimit(current int32, upEvents, downEvents []ScaleEvent, r *scalingRules, now time.Time) int32 {
	return policyLimit(false, current, upEvents, downEvents, r, now)
}

// policyLimit is the count r's policies allow now in one direction: each policy proposes one from the count
// before the changes of its period, and selectPolicy Max takes the largest change (the highest count going up,
// the lowest going down), Min the smallest.
func policyLimit(up bool, current int32, upEvents, downEvents []ScaleEvent, r *scalingRules, now time.Time) int32 {
	if r.selectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	highest := up != (r.selectPolicy == autoscalingv2.MinChangePolicySelect)
	result := int32(math.MaxInt32)
	if highest {
		result = math.MinInt32
	}
	for _, p := range r.policies {
		added := replicasChangePerPeriod(p.PeriodSeconds, upEvents, now)
		deleted := replicasChangePerPeriod(p.PeriodSeconds, downEvents, now)
		start := int64(current) - int64(added) + int64(deleted)
		var proposed int32
		switch {
		case p.Type == autoscalingv2.PodsScalingPolicy && up:
			proposed = clampInt32(start + int64(p.Value))
		case p.Type == autoscalingv2.PodsScalingPolicy:
			proposed = clampInt32(start - int64(p.Value))
		case p.Type == autoscalingv2.PercentScalingPolicy && up:
			// Rounded up so that a small percentage still allows adding a pod.
			proposed = ceilInt32(float64(start) * (1 + float64(p.Value)/100))
		case p.Type == autoscalingv2.PercentScalingPolicy:
			proposed = truncInt32(float64(start) * (1 - float64(p.Value)/100))
		}
		if highest {
			result = max(result, proposed)
		} else {
			result = min(result, proposed)
		}
	}
	return result
}

// longestPeriod is the longest policy period, after which events are reusable.
func longestPeriod(r *scalingRules) int32 {
	var longest int32
	for _, p := range r.policies {
		longest = max(longest, p.PeriodSeconds)
	}
	return longest
}

// storeScaleEvent is upstream's storeScaleEvent: events older than the direction's longest policy period are
// marked outdated and the last of them is reused; otherwise the event is appended.
func (h *History) storeScaleEvent(up, down *scalingRules, prev, next int32, now time.Time) {
	events, r, change := &h.ScaleDownEvents, down, prev-next
	if next > prev {
		events, r, change = &h.ScaleUpEvents, up, next-prev
	}
	cutoff := now.Add(-time.Duration(longestPeriod(r)) * time.Second)
	old := -1
	for i := range *events {
		if (*events)[i].Time.Before(cutoff) {
			(*events)[i].Outdated = true
		}
		if (*events)[i].Outdated {
			old = i
		}
	}
	e := ScaleEvent{Change: change, Time: now}
	if old >= 0 {
		(*events)[old] = e
	} else {
		*events = append(*events, e)
	}
}
