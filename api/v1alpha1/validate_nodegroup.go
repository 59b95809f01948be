package v1alpha1

import (
	"fmt"
	"regexp"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// pricePattern is the CRD pattern of spec.pricePerHour.
var pricePattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

func providerNames() []string {
	return []string{string(ProviderClusterAPI), string(ProviderExternalGRPC), string(ProviderSim)}
}
func taintEffects() []string {
	return []string{string(corev1.TaintEffectNoExecute), string(corev1.TaintEffectNoSchedule), string(corev1.TaintEffectPreferNoSchedule)}
}

// Validate checks a NodeGroup; every error names its field (spec....).
func (ng *NodeGroup) Validate() field.ErrorList {
	return ng.Spec.validate(field.NewPath("spec"))
}

func (s *NodeGroupSpec) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.MinSize < 0 {
		errs = append(errs, field.Invalid(p.Child("minSize"), s.MinSize, "must be at least 0"))
	}
	if s.MaxSize < 0 {
		errs = append(errs, field.Invalid(p.Child("maxSize"), s.MaxSize, "must be at least 0"))
	}
	if s.MinSize > s.MaxSize {
		errs = append(errs, field.Invalid(p.Child("minSize"), s.MinSize,
			fmt.Sprintf("spec.minSize must be less than or equal to spec.maxSize (%d)", s.MaxSize)))
	}
	if s.PricePerHour != "" && (len(s.PricePerHour) > 32 || !pricePattern.MatchString(s.PricePerHour)) {
		errs = append(errs, field.Invalid(p.Child("pricePerHour"), s.PricePerHour, "want a non-negative decimal number such as \"0.096\""))
	}
	if !oneOf(string(s.ProviderRef.Name), providerNames()) {
		errs = append(errs, field.NotSupported(p.Child("providerRef", "name"), s.ProviderRef.Name, providerNames()))
	}
	for k := range s.ProviderRef.Config {
		if k == "" {
			errs = append(errs, field.Invalid(p.Child("providerRef", "config"), k, "keys must not be empty"))
		}
	}
	errs = append(errs, validateNodeTemplate(&s.Template, p.Child("template"))...)
	return errs
}

func validateNodeTemplate(t *NodeTemplate, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	cp := p.Child("capacity")
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := t.Capacity[name]; !ok {
			errs = append(errs, field.Required(cp.Key(string(name)), "template.capacity must include cpu and memory"))
		}
	}
	errs = append(errs, nonNegative(t.Capacity, cp)...)
	ap := p.Child("allocatable")
	errs = append(errs, nonNegative(t.Allocatable, ap)...)
	for _, name := range sortedNames(t.Allocatable) {
		alloc := t.Allocatable[name]
		capacity, ok := t.Capacity[name]
		switch {
		case !ok:
			errs = append(errs, field.Invalid(ap.Key(string(name)), alloc.String(), "template.allocatable must name only resources in capacity"))
		case alloc.Cmp(capacity) > 0:
			errs = append(errs, field.Invalid(ap.Key(string(name)), alloc.String(),
				fmt.Sprintf("template.allocatable must not exceed capacity (%s)", capacity.String())))
		}
	}
	lp := p.Child("labels")
	for k, v := range t.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(lp.Key(k), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(lp.Key(k), v, msg))
		}
	}
	for i, taint := range t.Taints {
		tp := p.Child("taints").Index(i)
		for _, msg := range validation.IsQualifiedName(taint.Key) {
			errs = append(errs, field.Invalid(tp.Child("key"), taint.Key, msg))
		}
		for _, msg := range validation.IsValidLabelValue(taint.Value) {
			errs = append(errs, field.Invalid(tp.Child("value"), taint.Value, msg))
		}
		if !oneOf(string(taint.Effect), taintEffects()) {
			errs = append(errs, field.NotSupported(tp.Child("effect"), taint.Effect, taintEffects()))
		}
	}
	if t.Zone != "" {
		for _, msg := range validation.IsValidLabelValue(t.Zone) {
			errs = append(errs, field.Invalid(p.Child("zone"), t.Zone, msg))
		}
	}
	return errs
}

func nonNegative(list corev1.ResourceList, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedNames(list) {
		if q := list[name]; q.Sign() < 0 {
			errs = append(errs, field.Invalid(p.Key(string(name)), q.String(), "must not be negative"))
		}
	}
	return errs
}

// sortedNames returns the keys of a ResourceList in order, so errors come out stably.
func sortedNames(list corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(list))
	for n := range list {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}
