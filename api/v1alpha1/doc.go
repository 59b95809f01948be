// Package v1alpha1 holds the tidal.dev/v1alpha1 API: ScaledObject, ScaledJob, TriggerAuthentication,
// ClusterTriggerAuthentication and NodeGroup.
//
// ScaledObject, ScaledJob, TriggerAuthentication and ClusterTriggerAuthentication are a field-for-field superset
// of KEDA's keda.sh/v1alpha1 kinds with the same JSON names, so a KEDA manifest becomes a Tidal manifest by
// changing apiVersion. The CRDs in charts/tidal/crds are generated from these types by api/generate.sh; their
// CEL rules are repeated in Go by the Validate methods (validate*.go) for the admission webhook and for clients
// that want errors before a round trip to the API server.
//
// +kubebuilder:object:generate=true
// +groupName=tidal.dev
package v1alpha1
