package podmetrics

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsinstall "k8s.io/metrics/pkg/apis/metrics/install"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// NewScheme returns a scheme holding metrics.k8s.io (internal and v1beta1) and the meta types the server needs.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	metricsinstall.Install(scheme)
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	scheme.AddUnversionedTypes(schema.GroupVersion{Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	return scheme
}

// Install adds metrics.k8s.io/v1beta1 (pods, nodes) to a running generic API server, with its own scheme.
// custom-metrics-apiserver only serves custom.metrics.k8s.io and external.metrics.k8s.io, so the adapter
// installs this group on the same server; a second APIService (v1beta1.metrics.k8s.io) points at it.
func Install(server *genericapiserver.GenericAPIServer, opts Options) error {
	src, err := newSource(opts)
	if err != nil {
		return err
	}
	scheme := NewScheme()
	codecs := serializer.NewCodecFactory(scheme)

	info := genericapiserver.NewDefaultAPIGroupInfo(metrics.GroupName, scheme, metav1.ParameterCodec, codecs)
	info.VersionedResourcesStorageMap[metricsv1beta1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		"pods":  &podStorage{src: src, TableConvertor: rest.NewDefaultTableConvertor(metrics.Resource("pods"))},
		"nodes": &nodeStorage{src: src, TableConvertor: rest.NewDefaultTableConvertor(metrics.Resource("nodes"))},
	}
	if err := server.InstallAPIGroup(&info); err != nil {
		return fmt.Errorf("install %s: %w", metrics.GroupName, err)
	}
	if src.scraper != nil {
		// The scraper runs while the server does; requests read its last scrapes only.
		err := server.AddPostStartHook("tidal-pod-metrics-scraper", func(hc genericapiserver.PostStartHookContext) error {
			go src.scraper.run(hc.Context)
			return nil
		})
		if err != nil {
			return fmt.Errorf("install %s: %w", metrics.GroupName, err)
		}
	}
	return nil
}
