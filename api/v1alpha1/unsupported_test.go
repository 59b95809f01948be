package v1alpha1

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// objectsOf returns fresh valid objects of an UnsupportedField kind (both authentication kinds for
// TriggerAuthentication).
func objectsOf(t *testing.T, kind string) []runtime.Object {
	t.Helper()
	triggers := []ScaleTriggers{{Type: "redis", Metadata: map[string]string{"address": "r:6379", "listName": "q"}}}
	switch kind {
	case KindScaledObject:
		return []runtime.Object{&ScaledObject{ObjectMeta: metav1.ObjectMeta{Name: "so"},
			Spec: ScaledObjectSpec{ScaleTargetRef: ScaleTarget{Name: "w"}, Triggers: triggers}}}
	case KindScaledJob:
		return []runtime.Object{&ScaledJob{ObjectMeta: metav1.ObjectMeta{Name: "sj"},
			Spec: ScaledJobSpec{Triggers: triggers, JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}}}
	case KindTriggerAuthentication:
		return []runtime.Object{&TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "ta"}},
			&ClusterTriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "cta"}}}
	}
	t.Fatalf("table entry of unknown kind %q", kind)
	return nil
}

// Every entry is found on its kind once its Example sets it, and only there; the error names the field.
func TestNotSupportedYetEntries(t *testing.T) {
	seen := map[string]bool{}
	for _, u := range NotSupportedYet() {
		t.Run(u.Kind+" "+u.Path, func(t *testing.T) {
			if seen[u.Kind+u.Path] {
				t.Fatalf("listed twice")
			}
			seen[u.Kind+u.Path] = true
			if u.Reason == "" || u.Example == nil || u.value == nil {
				t.Fatalf("entry needs a reason, an example and a value func")
			}
			for _, obj := range objectsOf(t, u.Kind) {
				if errs := UnsupportedFields(obj); len(errs) != 0 {
					t.Fatalf("%T without the field: %v", obj, errs)
				}
				u.Example(obj)
				errs := UnsupportedFields(obj)
				if len(errs) != 1 || errs[0].Field != u.Path {
					t.Fatalf("%T with the example set: %v, want exactly one error on %s", obj, errs, u.Path)
				}
				if msg := errs[0].Error(); !strings.HasPrefix(msg, u.Path+": ") || !strings.Contains(msg, "not supported yet") {
					t.Errorf("message %q does not name the field and say it is not supported yet", msg)
				}
				// The example is otherwise valid: only the unsupported field is wrong with it.
				if verrs := validateAny(obj); len(verrs) != 0 {
					t.Errorf("%T example does not validate: %v", obj, verrs)
				}
			}
		})
	}
}

func validateAny(obj runtime.Object) []string {
	var out []string
	switch o := obj.(type) {
	case *ScaledObject:
		for _, e := range o.Validate() {
			out = append(out, e.Error())
		}
	case *ScaledJob:
		for _, e := range o.Validate() {
			out = append(out, e.Error())
		}
	case *TriggerAuthentication:
		for _, e := range o.Validate() {
			out = append(out, e.Error())
		}
	case *ClusterTriggerAuthentication:
		for _, e := range o.Validate() {
			out = append(out, e.Error())
		}
	}
	return out
}

// Every podIdentity provider works (autoscaler/triggers/identity): none is refused.
func TestPodIdentityIsSupported(t *testing.T) {
	ta := &TriggerAuthentication{Spec: TriggerAuthenticationSpec{PodIdentity: &AuthPodIdentity{}}}
	for _, p := range []PodIdentityProvider{PodIdentityProviderNone, PodIdentityProviderAWS, PodIdentityProviderAWSEKS,
		PodIdentityProviderAzureWorkload, PodIdentityProviderGCP} {
		ta.Spec.PodIdentity.Provider = p
		if errs := UnsupportedFields(ta); len(errs) != 0 {
			t.Errorf("provider %s refused: %v", p, errs)
		}
	}
}
