// Package scaletarget reads and writes any workload through its /scale subresource and reads its pod template.
// The operator scales through it; the operator and the metrics adapter both read the target's pod template to
// resolve a trigger's environment.
package scaletarget

import (
	"context"
	"fmt"
	"sync"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
)

// Client reads and writes any workload through its /scale subresource, and reads its pod template for
// trigger environment resolution. It resolves kinds through discovery, so custom resources work as long as they
// serve /scale.
type Client struct {
	mapper       *restmapper.DeferredDiscoveryRESTMapper
	scales       scale.ScalesGetter
	dynamic      dynamic.Interface
	fieldManager string

	mu sync.Mutex
}

// New builds a Client from a rest config; fieldManager names the writer of every /scale update.
func New(cfg *rest.Config, fieldManager string) (*Client, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	sg, err := scale.NewForConfig(cfg, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(cached))
	if err != nil {
		return nil, fmt.Errorf("scale client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &Client{mapper: mapper, scales: sg, dynamic: dyn, fieldManager: fieldManager}, nil
}

// Target is a resolved scale target.
type Target struct {
	Namespace string
	Name      string
	GVK       schema.GroupVersionKind
	GVR       schema.GroupVersionResource
}

// Key identifies the workload for duplicate checks: "apps/deployments/ns/name".
func (t Target) Key() string {
	return t.GVR.Group + "/" + t.GVR.Resource + "/" + t.Namespace + "/" + t.Name
}

// GVKR renders the status field.
func (t Target) GVKR() *tidalv1alpha1.GroupVersionKindResource {
	return &tidalv1alpha1.GroupVersionKindResource{Group: t.GVK.Group, Version: t.GVK.Version, Kind: t.GVK.Kind, Resource: t.GVR.Resource}
}

// Resolve maps a scaleTargetRef to its resource. An unknown kind is retried once after refreshing discovery, so
// a CRD installed after start-up resolves.
func (ts *Client) Resolve(namespace string, ref tidalv1alpha1.ScaleTarget) (Target, error) {
	gvk, err := ref.GroupVersionKind()
	if err != nil {
		return Target{}, fmt.Errorf("spec.%w", err)
	}
	mapping, err := ts.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil && meta.IsNoMatchError(err) {
		ts.mu.Lock()
		ts.mapper.Reset()
		ts.mu.Unlock()
		mapping, err = ts.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return Target{}, fmt.Errorf("spec.scaleTargetRef: kind %s in %s is not served: %w", gvk.Kind, gvk.GroupVersion(), err)
	}
	return Target{Namespace: namespace, Name: ref.Name, GVK: gvk, GVR: mapping.Resource}, nil
}

// GetScale reads the target's /scale.
func (ts *Client) GetScale(ctx context.Context, t Target) (*autoscalingv1.Scale, error) {
	s, err := ts.scales.Scales(t.Namespace).Get(ctx, t.GVR.GroupResource(), t.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get /scale of %s %s/%s: %w", t.GVK.Kind, t.Namespace, t.Name, err)
	}
	return s, nil
}

// SetReplicas writes replicas through /scale, reading the current scale first. It returns the previous count.
func (ts *Client) SetReplicas(ctx context.Context, t Target, replicas int32) (int32, error) {
	return ts.UpdateReplicas(ctx, t, nil, replicas, nil)
}

// UpdateReplicas writes replicas through /scale starting from a scale the caller has just read (nil: read it),
// which saves a round trip on the hot path; a conflict re-reads and retries. mayWrite (when not nil) is asked
// before every attempt, retries included, and its error ends the update unwritten: a sharded operator that lost
// the object between two attempts does not write it. It returns the previous count.
func (ts *Client) UpdateReplicas(ctx context.Context, t Target, s *autoscalingv1.Scale, replicas int32, mayWrite func() error) (int32, error) {
	for attempt := 0; ; attempt++ {
		if mayWrite != nil {
			if err := mayWrite(); err != nil {
				return 0, err
			}
		}
		if s == nil {
			var err error
			if s, err = ts.GetScale(ctx, t); err != nil {
				return 0, err
			}
		}
		prev := s.Spec.Replicas
		if prev == replicas {
			return prev, nil
		}
		s = s.DeepCopy()
		s.Spec.Replicas = replicas
		_, err := ts.scales.Scales(t.Namespace).Update(ctx, t.GVR.GroupResource(), s, metav1.UpdateOptions{FieldManager: ts.fieldManager})
		if err == nil {
			return prev, nil
		}
		if apierrors.IsConflict(err) && attempt < 3 {
			s = nil
			continue
		}
		return prev, fmt.Errorf("update /scale of %s %s/%s to %d: %w", t.GVK.Kind, t.Namespace, t.Name, replicas, err)
	}
}

// Workload is what the operator reads of a target object besides /scale.
type Workload struct {
	// Template is the object's pod template (spec.template); nil when it has none.
	Template *corev1.PodTemplateSpec
	// Annotations are the object's own metadata.annotations (the placement annotations live there).
	Annotations map[string]string
}

// Workload reads the target object once and returns its pod template and annotations.
func (ts *Client) Workload(ctx context.Context, t Target) (Workload, error) {
	obj, err := ts.dynamic.Resource(t.GVR).Namespace(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
	if err != nil {
		return Workload{}, fmt.Errorf("get %s %s/%s: %w", t.GVK.Kind, t.Namespace, t.Name, err)
	}
	w := Workload{Annotations: obj.GetAnnotations()}
	raw, found, err := unstructured.NestedMap(obj.Object, "spec", "template")
	if err != nil || !found {
		return w, nil //nolint:nilerr // a target without a pod template simply has no environment to offer
	}
	var tmpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tmpl); err != nil {
		return w, fmt.Errorf("%s %s/%s: spec.template: %w", t.GVK.Kind, t.Namespace, t.Name, err)
	}
	w.Template = &tmpl
	return w, nil
}

// PodTemplate returns the target's pod template (spec.template) when it has one (Deployments, StatefulSets,
// most workload CRDs); nil otherwise.
func (ts *Client) PodTemplate(ctx context.Context, t Target) (*corev1.PodTemplateSpec, error) {
	w, err := ts.Workload(ctx, t)
	if err != nil {
		return nil, err
	}
	return w.Template, nil
}

// KindString renders status.scaleTargetKind: "apps/v1.Deployment".
func (t Target) KindString() string {
	return t.GVK.GroupVersion().String() + "." + t.GVK.Kind
}
