package podmetrics

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// OpenAPIDefinitions describes metrics.k8s.io/v1beta1, for which k8s.io/metrics ships no generated definitions.
// The generic API server needs them to install the group (its field manager builds a type converter from the
// models). Written by hand after the types in k8s.io/metrics/pkg/apis/metrics/v1beta1/types.go.
func OpenAPIDefinitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	str := func(desc string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Description: desc, Type: []string{"string"}}}
	}
	refTo := func(name string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Default: map[string]any{}, Ref: ref(name)}}
	}
	arrayOf := func(desc, name string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{
			Description: desc, Type: []string{"array"},
			Items: &spec.SchemaOrArray{Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Default: map[string]any{}, Ref: ref(name)}}},
		}}
	}
	resourceList := spec.Schema{SchemaProps: spec.SchemaProps{
		Description: "The resource usage: cpu in cores, memory as the working set in bytes.",
		Type:        []string{"object"},
		AdditionalProperties: &spec.SchemaOrBool{Allows: true, Schema: &spec.Schema{
			SchemaProps: spec.SchemaProps{Ref: ref(resource.Quantity{}.OpenAPIModelName())},
		}},
	}}
	typeMeta := func(props map[string]spec.Schema) map[string]spec.Schema {
		props["kind"] = str("Kind is a string value representing the REST resource this object represents.")
		props["apiVersion"] = str("APIVersion defines the versioned schema of this representation of an object.")
		return props
	}
	object := func(desc string, props map[string]spec.Schema, required []string, deps ...string) common.OpenAPIDefinition {
		return common.OpenAPIDefinition{
			Schema:       spec.Schema{SchemaProps: spec.SchemaProps{Description: desc, Type: []string{"object"}, Properties: props, Required: required}},
			Dependencies: deps,
		}
	}
	objectMeta, listMeta := metav1.ObjectMeta{}.OpenAPIModelName(), metav1.ListMeta{}.OpenAPIModelName()
	tm, dur, qty := metav1.Time{}.OpenAPIModelName(), metav1.Duration{}.OpenAPIModelName(), resource.Quantity{}.OpenAPIModelName()
	pod, podList := metricsv1beta1.PodMetrics{}.OpenAPIModelName(), metricsv1beta1.PodMetricsList{}.OpenAPIModelName()
	node, nodeList := metricsv1beta1.NodeMetrics{}.OpenAPIModelName(), metricsv1beta1.NodeMetricsList{}.OpenAPIModelName()
	container := metricsv1beta1.ContainerMetrics{}.OpenAPIModelName()
	return map[string]common.OpenAPIDefinition{
		container: object("ContainerMetrics sets resource usage metrics of a container.", map[string]spec.Schema{
			"name":  str("Container name corresponding to the one from pod.spec.containers."),
			"usage": resourceList,
		}, []string{"name", "usage"}, qty),
		pod: object("PodMetrics sets resource usage metrics of a pod.", typeMeta(map[string]spec.Schema{
			"metadata":   refTo(objectMeta),
			"timestamp":  refTo(tm),
			"window":     refTo(dur),
			"containers": arrayOf("Metrics for all containers are collected within the same time window.", container),
		}), []string{"timestamp", "window", "containers"}, objectMeta, tm, dur, container),
		podList: object("PodMetricsList is a list of PodMetrics.", typeMeta(map[string]spec.Schema{
			"metadata": refTo(listMeta),
			"items":    arrayOf("List of pod metrics.", pod),
		}), []string{"items"}, listMeta, pod),
		node: object("NodeMetrics sets resource usage metrics of a node.", typeMeta(map[string]spec.Schema{
			"metadata":  refTo(objectMeta),
			"timestamp": refTo(tm),
			"window":    refTo(dur),
			"usage":     resourceList,
		}), []string{"timestamp", "window", "usage"}, objectMeta, tm, dur, qty),
		nodeList: object("NodeMetricsList is a list of NodeMetrics.", typeMeta(map[string]spec.Schema{
			"metadata": refTo(listMeta),
			"items":    arrayOf("List of node metrics.", node),
		}), []string{"items"}, listMeta, node),
	}
}
