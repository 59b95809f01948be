package v1alpha1

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// A field Tidal accepts either works or is refused naming the field. The schema keeps every KEDA field so KEDA
// manifests decode unchanged; the fields below are the ones Tidal does not act on yet. NotSupportedYet is the one
// list of them: the admission webhook refuses an object that sets one, trigger resolution refuses such an object
// that got in before the webhook did, and `tidalctl convert` warns about each. Delete an entry in the change that
// makes its field work.

// Kinds an UnsupportedField belongs to. KindTriggerAuthentication covers ClusterTriggerAuthentication too (they
// share their spec).
const (
	KindScaledObject = "ScaledObject"
	KindScaledJob    = "ScaledJob"
)

// UnsupportedField is one field or annotation Tidal accepts in its schema but does not act on yet.
//
// +kubebuilder:object:generate=false
type UnsupportedField struct {
	// Kind is ScaledObject, ScaledJob or TriggerAuthentication (which covers ClusterTriggerAuthentication).
	Kind string
	// Path is the field path as error messages name it, e.g. spec.podIdentity.provider (an annotation would be
	// metadata.annotations[<name>]).
	Path string
	// Reason says what Tidal does instead and what to use.
	Reason string
	// value reports whether obj (of Kind) sets the field, and its value when that is a short scalar safe to show
	// (never a credential; "" otherwise).
	value func(obj runtime.Object) (value string, set bool)
	// Example sets the field on an otherwise valid object of Kind, so tests can show every entry is refused.
	Example func(obj runtime.Object)
}

// NotSupportedYet returns the table of fields Tidal accepts but does not act on yet.
func NotSupportedYet() []UnsupportedField {
	return []UnsupportedField{
		{
			Kind: KindTriggerAuthentication, Path: "spec.awsSecretManager.podIdentity.identityOwner",
			Reason: "a secret store is read once per authentication, as Tidal's own service account; identityOwner workload (and provider aws-eks) would read it as each scale target's: use roleArn",
			value: func(o runtime.Object) (string, bool) {
				s := authSpecOf(o)
				if s == nil || s.AwsSecretManager == nil || s.AwsSecretManager.PodIdentity == nil {
					return "", false
				}
				p := s.AwsSecretManager.PodIdentity
				switch {
				case p.Provider == PodIdentityProviderAWSEKS:
					return "provider aws-eks", true
				case p.Provider == PodIdentityProviderAWS && p.IdentityOwner != nil && *p.IdentityOwner == "workload":
					return "workload", true
				}
				return "", false
			},
			Example: func(o runtime.Object) {
				workload := "workload"
				authSpecOf(o).AwsSecretManager = &AwsSecretManager{Region: "eu-west-1",
					PodIdentity: &AuthPodIdentity{Provider: PodIdentityProviderAWS, IdentityOwner: &workload},
					Secrets:     []AwsSecretManagerSecret{{Parameter: "password", Name: "redis-password"}}}
			},
		},
	}
}

// kindOf is the UnsupportedField kind of a Tidal object, "" for other objects.
func kindOf(o runtime.Object) string {
	switch o.(type) {
	case *ScaledObject:
		return KindScaledObject
	case *ScaledJob:
		return KindScaledJob
	case *TriggerAuthentication, *ClusterTriggerAuthentication:
		return KindTriggerAuthentication
	}
	return ""
}

func authSpecOf(o runtime.Object) *TriggerAuthenticationSpec {
	switch a := o.(type) {
	case *TriggerAuthentication:
		return &a.Spec
	case *ClusterTriggerAuthentication:
		return &a.Spec
	}
	return nil
}

// Error is the error an object setting the field gets, naming the field.
func (u UnsupportedField) Error(value string) *field.Error {
	detail := "not supported yet: " + u.Reason
	if value != "" {
		detail = fmt.Sprintf("%s is not supported yet: %s", value, u.Reason)
	}
	return field.Forbidden(field.NewPath(u.Path), detail)
}

// UnsupportedFields reports each field of NotSupportedYet that obj (a ScaledObject, ScaledJob,
// TriggerAuthentication or ClusterTriggerAuthentication) sets, as errors naming the field.
func UnsupportedFields(obj runtime.Object) field.ErrorList {
	kind := kindOf(obj)
	var errs field.ErrorList
	for _, u := range NotSupportedYet() {
		if u.Kind != kind {
			continue
		}
		if v, set := u.value(obj); set {
			errs = append(errs, u.Error(v))
		}
	}
	return errs
}
