package v1alpha1

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tidalscale/tidal/autoscaler/core"
)

// The Validate methods repeat the CRD's OpenAPI and CEL rules in Go, with the same field paths, and add checks
// CEL cannot make cheaply (API versions, DNS names, HPA behavior policies). They are used by the admission
// webhook and by clients (tidalctl) before sending an object. Unset optional fields are read with their CRD
// defaults, so an object validates the same before and after the API server defaults it.

// decimalPattern is the CRD pattern of scalingModifiers.target/activationTarget.
var decimalPattern = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`)

// Allowed values of enum fields, as in the CRD schema.
func triggerMetricTypes() []string  { return []string{"AverageValue", "Utilization", "Value"} }
func modifierMetricTypes() []string { return []string{"AverageValue", "Value"} }
func scalingModes() []string        { return []string{string(ScalingModeDirect), string(ScalingModeHPA)} }
func fallbackBehaviors() []string {
	return []string{string(FallbackBehaviorStatic), string(FallbackBehaviorCurrentReplicas),
		string(FallbackBehaviorCurrentReplicasIfHigher), string(FallbackBehaviorCurrentReplicasIfLower)}
}
func authenticationKinds() []string {
	return []string{KindTriggerAuthentication, KindClusterTriggerAuthentication}
}
func hpaPolicyTypes() []string { return []string{"Percent", "Pods"} }
func hpaSelectPolicies() []string {
	return []string{"Disabled", "Max", "Min"}
}

// isResourceTrigger reports whether a trigger type is served by metrics.k8s.io (cpu, memory).
func isResourceTrigger(triggerType string) bool {
	return triggerType == TriggerTypeCPU || triggerType == TriggerTypeMemory
}

// oneOf reports whether v is one of allowed.
func oneOf(v string, allowed []string) bool { return slices.Contains(allowed, v) }

// Validate checks a ScaledObject; every error names its field (spec....).
func (so *ScaledObject) Validate() field.ErrorList {
	return so.Spec.validate(field.NewPath("spec"))
}

func (s *ScaledObjectSpec) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateScaleTarget(&s.ScaleTargetRef, p.Child("scaleTargetRef"))...)
	if s.Mode != "" && !oneOf(string(s.Mode), scalingModes()) {
		errs = append(errs, field.NotSupported(p.Child("mode"), s.Mode, scalingModes()))
	}
	errs = append(errs, minimum(s.PollingInterval, 1, p.Child("pollingInterval"))...)
	errs = append(errs, minimum(s.InitialCooldownPeriod, 0, p.Child("initialCooldownPeriod"))...)
	errs = append(errs, minimum(s.CooldownPeriod, 0, p.Child("cooldownPeriod"))...)
	errs = append(errs, minimum(s.IdleReplicaCount, 0, p.Child("idleReplicaCount"))...)
	errs = append(errs, minimum(s.MinReplicaCount, 0, p.Child("minReplicaCount"))...)
	errs = append(errs, minimum(s.MaxReplicaCount, 1, p.Child("maxReplicaCount"))...)

	minReplicas, maxReplicas := s.GetMinReplicaCount(), s.GetMaxReplicaCount()
	if minReplicas > maxReplicas {
		errs = append(errs, field.Invalid(p.Child("minReplicaCount"), minReplicas,
			fmt.Sprintf("spec.minReplicaCount must be less than or equal to spec.maxReplicaCount (%d)", maxReplicas)))
	}
	if s.IdleReplicaCount != nil && *s.IdleReplicaCount >= minReplicas {
		errs = append(errs, field.Invalid(p.Child("idleReplicaCount"), *s.IdleReplicaCount,
			fmt.Sprintf("spec.idleReplicaCount must be less than spec.minReplicaCount (%d)", minReplicas)))
	}

	errs = append(errs, validateTriggers(s.Triggers, p.Child("triggers"))...)
	onlyResourceTriggers := len(s.Triggers) > 0 && allResourceTriggers(s.Triggers)
	if onlyResourceTriggers && minReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("minReplicaCount"), minReplicas,
			"spec.minReplicaCount must be at least 1 when all triggers are cpu or memory (scaling to zero needs an event trigger)"))
	}
	if s.Fallback != nil {
		errs = append(errs, s.validateFallback(onlyResourceTriggers, p.Child("fallback"))...)
	}
	if s.Advanced != nil {
		errs = append(errs, validateAdvanced(s.Advanced, TriggerNames(s.Triggers), p.Child("advanced"))...)
	}
	errs = append(errs, s.Placement.Validate(p.Child("placement"))...)
	return errs
}

func validateScaleTarget(t *ScaleTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "spec.scaleTargetRef.name is required"))
	}
	if t.APIVersion != "" {
		if _, err := schema.ParseGroupVersion(t.APIVersion); err != nil {
			errs = append(errs, field.Invalid(p.Child("apiVersion"), t.APIVersion, err.Error()))
		}
	}
	return errs
}

func (s *ScaledObjectSpec) validateFallback(onlyResourceTriggers bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	f := s.Fallback
	if f.FailureThreshold < 1 {
		errs = append(errs, field.Invalid(p.Child("failureThreshold"), f.FailureThreshold, "must be at least 1"))
	}
	if f.Replicas < 0 {
		errs = append(errs, field.Invalid(p.Child("replicas"), f.Replicas, "must be at least 0"))
	}
	if f.Behavior != "" && !oneOf(string(f.Behavior), fallbackBehaviors()) {
		errs = append(errs, field.NotSupported(p.Child("behavior"), f.Behavior, fallbackBehaviors()))
	}
	if onlyResourceTriggers {
		errs = append(errs, field.Invalid(p, "fallback", "spec.fallback is not supported when all triggers are cpu or memory"))
		return errs
	}
	if s.GetMode() == ScalingModeHPA && !s.hpaFallbackPossible() {
		errs = append(errs, field.Invalid(p, "fallback",
			"spec.fallback in mode hpa needs a trigger (not cpu or memory) or scalingModifiers with metricType AverageValue"))
	}
	return errs
}

// hpaFallbackPossible reports whether the HPA sees an AverageValue metric Tidal can bend to fallback replicas.
func (s *ScaledObjectSpec) hpaFallbackPossible() bool {
	if s.IsUsingModifiers() {
		mt := s.Advanced.ScalingModifiers.MetricType
		return mt == "" || mt == autoscalingv2.AverageValueMetricType
	}
	for _, t := range s.Triggers {
		if !isResourceTrigger(t.Type) && (t.MetricType == "" || t.MetricType == autoscalingv2.AverageValueMetricType) {
			return true
		}
	}
	return false
}

func allResourceTriggers(triggers []ScaleTriggers) bool {
	for _, t := range triggers {
		if !isResourceTrigger(t.Type) {
			return false
		}
	}
	return true
}

// NameAt is the trigger's name in status, metrics and scalingModifiers formulas when it sits at index i of
// spec.triggers: its name, or s<index>-<type> when it has none.
func (t ScaleTriggers) NameAt(i int) string {
	if t.Name != "" {
		return t.Name
	}
	return "s" + strconv.Itoa(i) + "-" + t.Type
}

// TriggerNames lists the triggers' names as NameAt gives them.
func TriggerNames(triggers []ScaleTriggers) []string {
	out := make([]string, len(triggers))
	for i, t := range triggers {
		out[i] = t.NameAt(i)
	}
	return out
}

// validateTriggers checks spec.triggers of a ScaledObject or ScaledJob.
func validateTriggers(triggers []ScaleTriggers, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case len(triggers) == 0:
		errs = append(errs, field.Required(p, "spec.triggers must have at least one trigger"))
	case len(triggers) > MaxTriggers:
		errs = append(errs, field.TooMany(p, len(triggers), MaxTriggers))
	}
	names := map[string]int{} // effective name (explicit or generated) → index of the first trigger with it
	for i := range triggers {
		t := &triggers[i]
		tp := p.Index(i)
		switch {
		case t.Type == "":
			errs = append(errs, field.Required(tp.Child("type"), "trigger type is required"))
		case len(t.Type) > MaxTriggerTypeLength:
			errs = append(errs, field.TooLong(tp.Child("type"), t.Type, MaxTriggerTypeLength))
		}
		if len(t.Name) > MaxTriggerNameLength {
			errs = append(errs, field.TooLong(tp.Child("name"), t.Name, MaxTriggerNameLength))
		}
		name := t.NameAt(i)
		if first, dup := names[name]; dup {
			detail := fmt.Sprintf("trigger name %q is already used by spec.triggers[%d]", name, first)
			if t.Name == "" || triggers[first].Name == "" {
				detail += "; an unnamed trigger is called s<index>-<type>, so give one of them another name"
			}
			errs = append(errs, field.Duplicate(tp.Child("name"), detail))
		} else {
			names[name] = i
		}
		errs = append(errs, validateTriggerMetricType(t, tp.Child("metricType"))...)
		if ref := t.AuthenticationRef; ref != nil {
			if ref.Name == "" {
				errs = append(errs, field.Required(tp.Child("authenticationRef", "name"), "authenticationRef.name is required"))
			}
			if ref.Kind != "" && !oneOf(ref.Kind, authenticationKinds()) {
				errs = append(errs, field.NotSupported(tp.Child("authenticationRef", "kind"), ref.Kind, authenticationKinds()))
			}
		}
	}
	return errs
}

func validateTriggerMetricType(t *ScaleTriggers, p *field.Path) field.ErrorList {
	if t.MetricType == "" {
		return nil
	}
	if !oneOf(string(t.MetricType), triggerMetricTypes()) {
		return field.ErrorList{field.NotSupported(p, t.MetricType, triggerMetricTypes())}
	}
	isResource := isResourceTrigger(t.Type)
	if t.MetricType == autoscalingv2.UtilizationMetricType && !isResource {
		return field.ErrorList{field.Invalid(p, t.MetricType, "triggers[].metricType: Utilization is only supported by cpu and memory triggers")}
	}
	if t.MetricType == autoscalingv2.ValueMetricType && isResource {
		return field.ErrorList{field.Invalid(p, t.MetricType, "triggers[].metricType: Value is not supported by cpu and memory triggers")}
	}
	return nil
}

func validateAdvanced(a *AdvancedConfig, triggerNames []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h := a.HorizontalPodAutoscalerConfig; h != nil {
		hp := p.Child("horizontalPodAutoscalerConfig")
		if h.Name != "" {
			for _, msg := range validation.IsDNS1123Subdomain(h.Name) {
				errs = append(errs, field.Invalid(hp.Child("name"), h.Name, msg))
			}
		}
		if h.Behavior != nil {
			errs = append(errs, validateBehavior(h.Behavior, hp.Child("behavior"))...)
		}
	}
	if m := a.ScalingModifiers; m != nil {
		errs = append(errs, validateScalingModifiers(m, triggerNames, p.Child("scalingModifiers"))...)
	}
	return errs
}

func validateScalingModifiers(m *ScalingModifiers, triggerNames []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m.Formula != "" {
		// Compiled exactly as the operator compiles it, so a formula admitted here always runs there.
		if _, err := core.CompileFormula(m.Formula, triggerNames); err != nil {
			errs = append(errs, field.Invalid(p.Child("formula"), m.Formula, err.Error()))
		}
	}
	if m.Formula != "" && m.Target == "" {
		errs = append(errs, field.Required(p.Child("target"), "advanced.scalingModifiers.target is required when formula is set"))
	}
	if m.Formula == "" && (m.Target != "" || m.ActivationTarget != "") {
		errs = append(errs, field.Required(p.Child("formula"), "advanced.scalingModifiers.formula is required when target or activationTarget is set"))
	}
	if m.Target != "" {
		v, err := parseDecimal(m.Target)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p.Child("target"), m.Target, err.Error()))
		case v <= 0:
			errs = append(errs, field.Invalid(p.Child("target"), m.Target, "advanced.scalingModifiers.target must be greater than zero"))
		}
	}
	if m.ActivationTarget != "" {
		if _, err := parseDecimal(m.ActivationTarget); err != nil {
			errs = append(errs, field.Invalid(p.Child("activationTarget"), m.ActivationTarget, err.Error()))
		}
	}
	if m.MetricType != "" && !oneOf(string(m.MetricType), modifierMetricTypes()) {
		errs = append(errs, field.NotSupported(p.Child("metricType"), m.MetricType, modifierMetricTypes()))
	}
	return errs
}

// parseDecimal accepts the non-negative decimal numbers of decimalPattern.
func parseDecimal(s string) (float64, error) {
	if !decimalPattern.MatchString(s) {
		return 0, fmt.Errorf("want a non-negative decimal number, got %q", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("want a decimal number, got %q", s)
	}
	return v, nil
}

// validateBehavior repeats the HPA API server's checks of autoscaling/v2 behavior, so a bad behavior is refused
// at admission rather than when the operator creates the HPA (mode hpa) or computes replicas (mode direct).
func validateBehavior(b *autoscalingv2.HorizontalPodAutoscalerBehavior, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if b.ScaleUp != nil {
		errs = append(errs, validateScalingRules(b.ScaleUp, p.Child("scaleUp"))...)
	}
	if b.ScaleDown != nil {
		errs = append(errs, validateScalingRules(b.ScaleDown, p.Child("scaleDown"))...)
	}
	return errs
}

// Limits of autoscaling/v2 HPAScalingRules (k8s.io/kubernetes/pkg/apis/autoscaling/validation).
const (
	maxStabilizationWindowSeconds = 3600
	maxPolicyPeriodSeconds        = 1800
)

func validateScalingRules(r *autoscalingv2.HPAScalingRules, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > maxStabilizationWindowSeconds) {
		errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w,
			fmt.Sprintf("must be between 0 and %d", maxStabilizationWindowSeconds)))
	}
	if r.SelectPolicy != nil && !oneOf(string(*r.SelectPolicy), hpaSelectPolicies()) {
		errs = append(errs, field.NotSupported(p.Child("selectPolicy"), *r.SelectPolicy, hpaSelectPolicies()))
	}
	if r.Tolerance != nil && r.Tolerance.Sign() < 0 {
		errs = append(errs, field.Invalid(p.Child("tolerance"), r.Tolerance.String(), "must not be negative"))
	}
	// Empty policies are valid: the HPA defaults them (autoscaling/v2 GenerateHPAScaleUpRules/ScaleDownRules), and
	// mode direct applies the same defaults.
	for i, pol := range r.Policies {
		pp := p.Child("policies").Index(i)
		if !oneOf(string(pol.Type), hpaPolicyTypes()) {
			errs = append(errs, field.NotSupported(pp.Child("type"), pol.Type, hpaPolicyTypes()))
		}
		if pol.Value <= 0 {
			errs = append(errs, field.Invalid(pp.Child("value"), pol.Value, "must be greater than zero"))
		}
		if pol.PeriodSeconds <= 0 || pol.PeriodSeconds > maxPolicyPeriodSeconds {
			errs = append(errs, field.Invalid(pp.Child("periodSeconds"), pol.PeriodSeconds,
				fmt.Sprintf("must be between 1 and %d", maxPolicyPeriodSeconds)))
		}
	}
	return errs
}

// minimum reports a pointer field below min.
func minimum(v *int32, minValue int32, p *field.Path) field.ErrorList {
	if v != nil && *v < minValue {
		return field.ErrorList{field.Invalid(p, *v, fmt.Sprintf("must be at least %d", minValue))}
	}
	return nil
}
