package capacity

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/internal/controller"
)

// Reasons of the Placement condition (v1alpha1.ConditionPlacement) of ScaledObjects and ScaledJobs; an invalid
// annotation is also a Warning event with ReasonInvalidPlacementAnnotation.
const (
	ReasonPlacementFromSpec          = "PlacementFromSpec"
	ReasonPlacementFromAnnotation    = "PlacementFromAnnotation"
	ReasonInvalidPlacementAnnotation = "InvalidPlacementAnnotation"
)

// Describe renders a placement for messages: "auto, maxPendingSeconds 30"; "none" for nil.
func Describe(p *v1alpha1.Placement) string {
	if p == nil {
		return "none"
	}
	if p.MaxPendingSeconds != nil {
		return fmt.Sprintf("%s, maxPendingSeconds %d", p.Policy, *p.MaxPendingSeconds)
	}
	return string(p.Policy)
}

// ApplyPlacementCondition sets the Placement condition in conds from eff, the placement resolved from spec and
// the annotations of annotated ("Deployment web", "ScaledJob batch"), or removes it when no placement is set
// at all. It returns the message to emit as a Warning event when the condition newly reports invalid
// annotations, "" otherwise (a condition that already says so is not announced again).
func ApplyPlacementCondition(conds *[]metav1.Condition, gen int64, eff v1alpha1.EffectivePlacement, annotated string) (warning string) {
	if eff.AnnotationErr != nil {
		msg := fmt.Sprintf("invalid placement annotations on %s, ignored: %v; placement is %s", annotated, eff.AnnotationErr, fallback(eff))
		prev := meta.FindStatusCondition(*conds, v1alpha1.ConditionPlacement)
		if prev == nil || prev.Reason != ReasonInvalidPlacementAnnotation || prev.Message != msg {
			warning = msg
		}
		controller.SetCondition(conds, gen, v1alpha1.ConditionPlacement, metav1.ConditionFalse, ReasonInvalidPlacementAnnotation, msg)
		return warning
	}
	switch eff.Source {
	case v1alpha1.PlacementSourceSpec:
		msg := Describe(eff.Placement) + " from spec.placement"
		if eff.Overridden {
			msg += fmt.Sprintf(" (it wins over the %s annotations on %s)", v1alpha1.AnnotationPlacement, annotated)
		}
		controller.SetCondition(conds, gen, v1alpha1.ConditionPlacement, metav1.ConditionTrue, ReasonPlacementFromSpec, msg)
	case v1alpha1.PlacementSourceAnnotation:
		controller.SetCondition(conds, gen, v1alpha1.ConditionPlacement, metav1.ConditionTrue, ReasonPlacementFromAnnotation,
			fmt.Sprintf("%s from the %s annotations on %s", Describe(eff.Placement), v1alpha1.AnnotationPlacement, annotated))
	default:
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionPlacement)
	}
	return ""
}

// fallback says what placement applies when the annotations are ignored.
func fallback(eff v1alpha1.EffectivePlacement) string {
	if eff.Source == v1alpha1.PlacementSourceSpec {
		return Describe(eff.Placement) + " from spec.placement"
	}
	return "none (pods wait for nodes)"
}
