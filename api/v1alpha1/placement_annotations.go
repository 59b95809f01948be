package v1alpha1

import (
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Annotations that set a workload's placement when its ScaledObject or ScaledJob has no spec.placement: on a
// ScaledObject's scale target (the Deployment, StatefulSet or other /scale workload's own metadata), on a
// ScaledJob itself. spec.placement wins when both are set. See docs/placement.md.
const (
	// AnnotationPlacement is the policy: waitForNodes, burstToVirtual or auto.
	AnnotationPlacement = "tidal.dev/placement"
	// AnnotationMaxPendingSeconds is auto's latency target in whole seconds (1..3600), as
	// spec.placement.maxPendingSeconds.
	AnnotationMaxPendingSeconds = "tidal.dev/max-pending-seconds"
)

// PlacementSource says where a workload's placement came from.
type PlacementSource string

const (
	// PlacementSourceNone: no placement is set (or only invalid annotations): pods wait for nodes.
	PlacementSourceNone PlacementSource = ""
	// PlacementSourceSpec: the ScaledObject's or ScaledJob's spec.placement.
	PlacementSourceSpec PlacementSource = "spec"
	// PlacementSourceAnnotation: the workload's tidal.dev/placement annotations.
	PlacementSourceAnnotation PlacementSource = "annotation"
)

// EffectivePlacement is the placement a workload's new pods get and where it came from.
//
// +kubebuilder:object:generate=false
type EffectivePlacement struct {
	// Placement is nil when none is set: the pods wait for nodes (Tidal adds nothing).
	Placement *Placement
	Source    PlacementSource
	// AnnotationErr, when not nil, names each invalid placement annotation and its value; the annotations are
	// then ignored as a whole and the placement is spec.placement's, or none.
	AnnotationErr error
	// Overridden is true when valid placement annotations are set but spec.placement wins over them.
	Overridden bool
}

// ResolvePlacement is the one precedence rule: spec.placement when set, else the placement annotations when
// they are valid, else none. Invalid annotations are reported in AnnotationErr whether or not spec.placement
// overrides them, so a typo is never silently ignored.
func ResolvePlacement(spec *Placement, annotations map[string]string) EffectivePlacement {
	fromAnnotations, errs := placementFromAnnotations(annotations, field.NewPath("metadata", "annotations"))
	out := EffectivePlacement{AnnotationErr: errs.ToAggregate()}
	switch {
	case spec != nil:
		out.Placement, out.Source, out.Overridden = spec.DeepCopy(), PlacementSourceSpec, fromAnnotations != nil
	case fromAnnotations != nil:
		out.Placement, out.Source = fromAnnotations, PlacementSourceAnnotation
	}
	return out
}

// ValidatePlacementAnnotations checks the placement annotations of an object Tidal admits (a ScaledJob),
// naming each invalid one under path (metadata.annotations).
func ValidatePlacementAnnotations(annotations map[string]string, path *field.Path) field.ErrorList {
	_, errs := placementFromAnnotations(annotations, path)
	return errs
}

// placementFromAnnotations parses the placement annotations: nil without errors when neither is set, nil with
// the errors (each naming its annotation and value) when they are invalid. The rules are spec.placement's.
func placementFromAnnotations(annotations map[string]string, path *field.Path) (*Placement, field.ErrorList) {
	policy, hasPolicy := annotations[AnnotationPlacement]
	maxPending, hasMax := annotations[AnnotationMaxPendingSeconds]
	if !hasPolicy && !hasMax {
		return nil, nil
	}
	policyPath, maxPath := path.Key(AnnotationPlacement), path.Key(AnnotationMaxPendingSeconds)
	var errs field.ErrorList
	if !hasPolicy {
		errs = append(errs, field.Required(policyPath, "required when "+AnnotationMaxPendingSeconds+" is set"))
	}
	p := &Placement{Policy: PlacementPolicy(policy)}
	badMax := false
	if hasMax {
		n, err := strconv.ParseInt(maxPending, 10, 32)
		if err != nil {
			badMax = true
			errs = append(errs, field.Invalid(maxPath, maxPending, "want a whole number of seconds"))
		} else {
			m := int32(n)
			p.MaxPendingSeconds = &m
		}
	}
	if hasPolicy {
		for _, e := range p.validate(policyPath, maxPath) {
			if badMax && e.Field == maxPath.String() {
				continue // already reported as not a number
			}
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}
