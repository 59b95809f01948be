package devcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// ApplyFieldManager is the field manager of ApplyYAML's server-side applies.
const ApplyFieldManager = "tidal-devcluster"

// unknownKindWait bounds how long ApplyYAML waits for a kind to appear in discovery (a CRD applied earlier in the
// same manifest needs a moment to be served).
const unknownKindWait = 30 * time.Second

// ApplyYAML server-side applies every object of a multi-document YAML (or JSON) manifest, in order, and returns
// them as the server stored them. Namespaced objects without a namespace go to namespace (or "default" if it is
// empty); cluster-scoped objects ignore it. Kinds unknown to discovery are retried for up to 30s, so a manifest
// may define a CRD and then use it.
func ApplyYAML(ctx context.Context, cfg *rest.Config, namespace string, manifest []byte) ([]*unstructured.Unstructured, error) {
	objs, err := decodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))

	applied := make([]*unstructured.Unstructured, 0, len(objs))
	for i, obj := range objs {
		out, err := applyOne(ctx, dyn, mapper, namespace, obj)
		if err != nil {
			return applied, fmt.Errorf("apply document %d (%s %q): %w", i, obj.GroupVersionKind().Kind, obj.GetName(), err)
		}
		applied = append(applied, out)
	}
	return applied, nil
}

func applyOne(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, namespace string, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	var mapping *meta.RESTMapping
	waitCtx, cancel := context.WithTimeout(ctx, unknownKindWait)
	defer cancel()
	err := WaitFor(waitCtx, 500*time.Millisecond, func() (bool, error) {
		var err error
		mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			return true, nil
		}
		if !meta.IsNoMatchError(err) {
			return false, err
		}
		mapper.Reset()
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("kind %s: %w", gvk, err)
	}

	var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = namespace
		}
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		obj.SetNamespace(ns)
		ri = dyn.Resource(mapping.Resource).Namespace(ns)
	} else {
		obj.SetNamespace("")
	}
	return ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: ApplyFieldManager, Force: true})
}

// decodeManifest splits a YAML stream into objects, skipping empty documents and unwrapping List kinds.
func decodeManifest(manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("manifest document %d: %w", i, err)
		}
		if len(raw) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: raw}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("manifest document %d: %w", i, err)
			}
			for j := range list.Items {
				objs = append(objs, &list.Items[j])
			}
			continue
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("manifest document %d: apiVersion and kind are required", i)
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("manifest document %d (%s): metadata.name is required for apply", i, u.GetKind())
		}
		objs = append(objs, u)
	}
}
