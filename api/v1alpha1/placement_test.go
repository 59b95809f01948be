package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func TestPlacementValidate(t *testing.T) {
	cases := []struct {
		name string
		p    *Placement
		want []string // substrings of the aggregate error; none means valid
	}{
		{name: "unset"},
		{name: "wait", p: &Placement{Policy: PlacementWaitForNodes}},
		{name: "burst", p: &Placement{Policy: PlacementBurstToVirtual}},
		{name: "auto 5s", p: &Placement{Policy: PlacementAuto, MaxPendingSeconds: ptr.To[int32](5)}},
		{name: "unknown policy", p: &Placement{Policy: "teleport"}, want: []string{"spec.placement.policy", `"teleport"`}},
		{name: "empty policy", p: &Placement{}, want: []string{"spec.placement.policy"}},
		{name: "auto without target", p: &Placement{Policy: PlacementAuto}, want: []string{"spec.placement.maxPendingSeconds", "required when policy is auto"}},
		{name: "zero target", p: &Placement{Policy: PlacementAuto, MaxPendingSeconds: ptr.To[int32](0)}, want: []string{"spec.placement.maxPendingSeconds", "between 1 and 3600"}},
		{name: "negative target", p: &Placement{Policy: PlacementBurstToVirtual, MaxPendingSeconds: ptr.To[int32](-5)}, want: []string{"spec.placement.maxPendingSeconds"}},
		{name: "target above an hour", p: &Placement{Policy: PlacementAuto, MaxPendingSeconds: ptr.To[int32](3601)}, want: []string{"spec.placement.maxPendingSeconds"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.p.Validate(field.NewPath("spec", "placement"))
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(errs.ToAggregate().Error(), w) {
					t.Errorf("error %q does not contain %q", errs.ToAggregate(), w)
				}
			}
		})
	}
}

// The ScaledObject and ScaledJob validations both check spec.placement.
func TestPlacementValidatedOnScalerObjects(t *testing.T) {
	so := &ScaledObject{Spec: ScaledObjectSpec{ScaleTargetRef: ScaleTarget{Name: "w"},
		Triggers:  []ScaleTriggers{{Type: "redis", Metadata: map[string]string{"listName": "l"}}},
		Placement: &Placement{Policy: "nope"}}}
	if errs := so.Validate(); !strings.Contains(errs.ToAggregate().Error(), "spec.placement.policy") {
		t.Errorf("ScaledObject: %v", errs.ToAggregate())
	}
	sj := &ScaledJob{Spec: ScaledJobSpec{Placement: &Placement{Policy: PlacementAuto}}}
	if errs := sj.Validate(); !strings.Contains(errs.ToAggregate().Error(), "spec.placement.maxPendingSeconds") {
		t.Errorf("ScaledJob: %v", errs.ToAggregate())
	}
}
