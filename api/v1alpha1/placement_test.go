package v1alpha1

import (
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
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

func TestResolvePlacement(t *testing.T) {
	spec := &Placement{Policy: PlacementWaitForNodes}
	cases := []struct {
		name        string
		spec        *Placement
		annotations map[string]string
		want        *Placement
		source      PlacementSource
		overridden  bool
		errWants    []string // substrings of AnnotationErr; none means no error
	}{
		{name: "nothing set"},
		{name: "unrelated annotations", annotations: map[string]string{"app": "x"}},
		{name: "spec only", spec: spec, want: spec, source: PlacementSourceSpec},
		{name: "annotation burst", annotations: map[string]string{AnnotationPlacement: "burstToVirtual"},
			want: &Placement{Policy: PlacementBurstToVirtual}, source: PlacementSourceAnnotation},
		{name: "annotation auto 30s", annotations: map[string]string{AnnotationPlacement: "auto", AnnotationMaxPendingSeconds: "30"},
			want: &Placement{Policy: PlacementAuto, MaxPendingSeconds: ptr.To[int32](30)}, source: PlacementSourceAnnotation},
		{name: "spec wins over a valid annotation", spec: spec, annotations: map[string]string{AnnotationPlacement: "burstToVirtual"},
			want: spec, source: PlacementSourceSpec, overridden: true},
		{name: "spec wins, invalid annotation still reported", spec: spec, annotations: map[string]string{AnnotationPlacement: "teleport"},
			want: spec, source: PlacementSourceSpec, errWants: []string{"metadata.annotations[tidal.dev/placement]", `"teleport"`}},
		{name: "unknown policy falls back to none", annotations: map[string]string{AnnotationPlacement: "teleport"},
			errWants: []string{"metadata.annotations[tidal.dev/placement]", `"teleport"`, "burstToVirtual"}},
		{name: "wrong case is not a policy", annotations: map[string]string{AnnotationPlacement: "BurstToVirtual"},
			errWants: []string{`"BurstToVirtual"`}},
		{name: "auto without target", annotations: map[string]string{AnnotationPlacement: "auto"},
			errWants: []string{"metadata.annotations[tidal.dev/max-pending-seconds]", "required when policy is auto"}},
		{name: "target not a number", annotations: map[string]string{AnnotationPlacement: "auto", AnnotationMaxPendingSeconds: "5s"},
			errWants: []string{"metadata.annotations[tidal.dev/max-pending-seconds]", `"5s"`, "whole number"}},
		{name: "target out of range", annotations: map[string]string{AnnotationPlacement: "auto", AnnotationMaxPendingSeconds: "7200"},
			errWants: []string{"metadata.annotations[tidal.dev/max-pending-seconds]", "7200", "between 1 and 3600"}},
		{name: "target without policy", annotations: map[string]string{AnnotationMaxPendingSeconds: "10"},
			errWants: []string{"metadata.annotations[tidal.dev/placement]", "required when tidal.dev/max-pending-seconds is set"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ResolvePlacement(tc.spec, tc.annotations)
			if !reflect.DeepEqual(got.Placement, tc.want) || got.Source != tc.source || got.Overridden != tc.overridden {
				t.Errorf("got placement %+v source %q overridden %v, want %+v %q %v", got.Placement, got.Source, got.Overridden, tc.want, tc.source, tc.overridden)
			}
			if len(tc.errWants) == 0 {
				if got.AnnotationErr != nil {
					t.Fatalf("unexpected error %v", got.AnnotationErr)
				}
				return
			}
			if got.AnnotationErr == nil {
				t.Fatal("invalid annotations accepted")
			}
			for _, w := range tc.errWants {
				if !strings.Contains(got.AnnotationErr.Error(), w) {
					t.Errorf("error %q does not contain %q", got.AnnotationErr, w)
				}
			}
		})
	}
}

// A ScaledJob carries its placement annotations itself, and Tidal admits it: bad values are refused there.
func TestScaledJobPlacementAnnotationsValidated(t *testing.T) {
	sj := &ScaledJob{Spec: ScaledJobSpec{JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "i"}}}}},
		Triggers: []ScaleTriggers{{Type: "redis", Metadata: map[string]string{"listName": "l"}}}}}
	if errs := sj.Validate(); len(errs) > 0 {
		t.Fatalf("valid ScaledJob refused: %v", errs.ToAggregate())
	}
	sj.Annotations = map[string]string{AnnotationPlacement: "auto", AnnotationMaxPendingSeconds: "0"}
	if errs := sj.Validate(); len(errs) != 1 || !strings.Contains(errs.ToAggregate().Error(), "metadata.annotations[tidal.dev/max-pending-seconds]") {
		t.Errorf("want one error naming the annotation, got %v", errs.ToAggregate())
	}
}
