// Package webhook is the operator's validating admission webhook for ScaledObjects, ScaledJobs and
// (Cluster)TriggerAuthentications: what the CRD's CEL rules cannot check. It rejects an unknown trigger type,
// trigger metadata its scaler rejects, a second ScaledObject on a workload that already has one, a workload
// already targeted by an HPA that Tidal does not own, and any field of tidalv1alpha1.NotSupportedYet. Every
// message names the field.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/scalers"
)

// Path is where the handler is mounted.
const Path = "/validate-tidal-dev-v1alpha1"

// Validator checks objects against the cluster.
type Validator struct {
	Kube     kubernetes.Interface
	Tidal    tidalclient.Interface
	Registry *scalers.Registry
	Resolver *triggers.Resolver
	Logger   *zap.Logger
}

// ServeHTTP answers an AdmissionReview.
func (v *Validator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "want an admission.k8s.io/v1 AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	if errs := v.review(r.Context(), review.Request); len(errs) > 0 {
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity,
			Reason: metav1.StatusReasonInvalid, Message: errs.ToAggregate().Error()}
	}
	review.Response = resp
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}

func (v *Validator) review(ctx context.Context, req *admissionv1.AdmissionRequest) field.ErrorList {
	if req.Operation == admissionv1.Delete {
		return nil
	}
	switch req.Kind.Kind {
	case "ScaledObject":
		var so tidalv1alpha1.ScaledObject
		if err := json.Unmarshal(req.Object.Raw, &so); err != nil {
			return field.ErrorList{field.Invalid(field.NewPath(""), "", "cannot decode ScaledObject: "+err.Error())}
		}
		if so.Namespace == "" {
			so.Namespace = req.Namespace
		}
		if so.DeletionTimestamp != nil {
			return nil // never block finalizer removal
		}
		return v.ValidateScaledObject(ctx, &so)
	case "ScaledJob":
		var sj tidalv1alpha1.ScaledJob
		if err := json.Unmarshal(req.Object.Raw, &sj); err != nil {
			return field.ErrorList{field.Invalid(field.NewPath(""), "", "cannot decode ScaledJob: "+err.Error())}
		}
		if sj.Namespace == "" {
			sj.Namespace = req.Namespace
		}
		if sj.DeletionTimestamp != nil {
			return nil
		}
		return v.ValidateScaledJob(ctx, &sj)
	case tidalv1alpha1.KindTriggerAuthentication:
		var ta tidalv1alpha1.TriggerAuthentication
		if err := json.Unmarshal(req.Object.Raw, &ta); err != nil {
			return field.ErrorList{field.Invalid(field.NewPath(""), "", "cannot decode TriggerAuthentication: "+err.Error())}
		}
		if ta.DeletionTimestamp != nil {
			return nil
		}
		return append(ta.Validate(), tidalv1alpha1.UnsupportedFields(&ta)...)
	case tidalv1alpha1.KindClusterTriggerAuthentication:
		var cta tidalv1alpha1.ClusterTriggerAuthentication
		if err := json.Unmarshal(req.Object.Raw, &cta); err != nil {
			return field.ErrorList{field.Invalid(field.NewPath(""), "", "cannot decode ClusterTriggerAuthentication: "+err.Error())}
		}
		if cta.DeletionTimestamp != nil {
			return nil
		}
		return append(cta.Validate(), tidalv1alpha1.UnsupportedFields(&cta)...)
	}
	return nil
}

// ValidateScaledObject runs the static rules and the cluster checks.
func (v *Validator) ValidateScaledObject(ctx context.Context, so *tidalv1alpha1.ScaledObject) field.ErrorList {
	errs := append(so.Validate(), tidalv1alpha1.UnsupportedFields(so)...)
	if len(errs) > 0 {
		return errs
	}
	errs = append(errs, v.validateTriggers(ctx, so.Namespace, "ScaledObject", so.Spec.Triggers, so)...)
	errs = append(errs, v.validateTargetUnique(ctx, so)...)
	return errs
}

// ValidateScaledJob runs the static rules and the trigger checks.
func (v *Validator) ValidateScaledJob(ctx context.Context, sj *tidalv1alpha1.ScaledJob) field.ErrorList {
	errs := sj.Validate()
	errs = append(errs, tidalv1alpha1.UnsupportedFields(sj)...)
	errs = append(errs, v.validateTriggers(ctx, sj.Namespace, "ScaledJob", sj.Spec.Triggers, nil)...)
	return errs
}

// validateTriggers checks each trigger's metadata offline with the registry's Check (no connection, no file). Authentication that cannot be
// resolved yet (a secret created later) is not an error here: the trigger then reports it at run time.
func (v *Validator) validateTriggers(ctx context.Context, ns, kind string, triggers []tidalv1alpha1.ScaleTriggers, so *tidalv1alpha1.ScaledObject) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "triggers")
	// An author must not be able to make the webhook connect anywhere: external secret stores are not read.
	resolver := v.Resolver.Offline()
	for i, t := range triggers {
		tp := p.Index(i)
		if !v.Registry.Has(t.Type) {
			errs = append(errs, field.NotSupported(tp.Child("type"), t.Type, v.Registry.Types()))
			continue
		}
		var auth map[string]string
		if t.AuthenticationRef != nil {
			a, err := resolver.AuthParams(ctx, ns, t.AuthenticationRef, func(string) (map[string]string, error) { return map[string]string{}, nil })
			if err != nil {
				continue
			}
			auth = a
		}
		if hasFromEnv(t.Metadata) {
			continue // the target's environment is resolved at run time
		}
		cfg := scalers.TriggerConfig{Type: t.Type, Name: t.Name, Index: i, Metadata: t.Metadata, AuthParams: auth,
			MetricType: t.MetricType, ObjectKind: kind, Shared: nil}
		if so != nil {
			cfg.ObjectNamespace, cfg.ObjectName = so.Namespace, so.Name
		}
		if pi, err := v.Resolver.PodIdentitySpec(ctx, ns, t.AuthenticationRef); err == nil && pi != nil && pi.Provider != tidalv1alpha1.PodIdentityProviderNone {
			// The provider alone: the checks only ask which identity replaces the keys; credentials are obtained
			// at run time.
			cfg.PodIdentity = &scalers.PodIdentity{Provider: string(pi.Provider)}
		}
		// Check never dials: an author must not be able to make the webhook connect anywhere. Whether the source
		// answers is reported at run time on the object's status.
		if err := v.Registry.Check(ctx, cfg); err != nil {
			errs = append(errs, field.Invalid(tp.Child("metadata"), "(omitted)", err.Error()))
		}
	}
	return errs
}

func hasFromEnv(md map[string]string) bool {
	for k := range md {
		if strings.HasSuffix(k, "FromEnv") {
			return true
		}
	}
	return false
}

// validateTargetUnique rejects a second ScaledObject on the same workload and a workload an HPA not owned by
// Tidal already scales.
func (v *Validator) validateTargetUnique(ctx context.Context, so *tidalv1alpha1.ScaledObject) field.ErrorList {
	p := field.NewPath("spec", "scaleTargetRef")
	group, kind := groupKind(so.Spec.ScaleTargetRef)
	list, err := v.Tidal.TidalV1alpha1().ScaledObjects(so.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return field.ErrorList{field.InternalError(p, fmt.Errorf("list ScaledObjects: %w", err))}
	}
	for _, other := range list.Items {
		if other.Name == so.Name {
			continue
		}
		og, ok := groupKind(other.Spec.ScaleTargetRef)
		if other.Spec.ScaleTargetRef.Name == so.Spec.ScaleTargetRef.Name && ok == kind && og == group {
			return field.ErrorList{field.Duplicate(p, fmt.Sprintf("%s %s is already scaled by ScaledObject %q", kind, other.Spec.ScaleTargetRef.Name, other.Name))}
		}
	}
	hpas, err := v.Kube.AutoscalingV2().HorizontalPodAutoscalers(so.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return field.ErrorList{field.InternalError(p, fmt.Errorf("list HPAs: %w", err))}
	}
	for _, h := range hpas.Items {
		ref := h.Spec.ScaleTargetRef
		hg, _ := groupKind(tidalv1alpha1.ScaleTarget{APIVersion: ref.APIVersion, Kind: ref.Kind})
		if ref.Name != so.Spec.ScaleTargetRef.Name || ref.Kind != kind || hg != group {
			continue
		}
		if owner := metav1.GetControllerOf(&h); owner != nil && owner.Kind == "ScaledObject" && owner.Name == so.Name {
			continue
		}
		return field.ErrorList{field.Forbidden(p, fmt.Sprintf("%s %s is already scaled by HorizontalPodAutoscaler %q; delete it or let Tidal manage scaling (mode: hpa)", kind, ref.Name, h.Name))}
	}
	return nil
}

// groupKind returns a scale target's API group and kind, with the CRD defaults (apps/v1 Deployment) applied.
func groupKind(ref tidalv1alpha1.ScaleTarget) (group, kind string) {
	kind, apiVersion := ref.Kind, ref.APIVersion
	if kind == "" {
		kind = tidalv1alpha1.DefaultScaleTargetKind
	}
	if apiVersion == "" {
		apiVersion = tidalv1alpha1.DefaultScaleTargetAPIVersion
	}
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		return g, kind
	}
	return "", kind
}
