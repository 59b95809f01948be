package podmetrics

import (
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// AnnotationSimUsage sets the simulated usage of a pod. Two forms:
//
//	tidal.dev/sim-usage: "cpu=250m,memory=64Mi"                       # the whole pod
//	tidal.dev/sim-usage: "worker: cpu=250m, memory=64Mi; sidecar: cpu=10m"   # per container
//
// A whole-pod value is split across the containers in proportion to their requests of that resource (evenly
// when none requests it). In the per-container form, containers not named report zero. A resource not given
// falls back to the default fraction of requests.
const AnnotationSimUsage = "tidal.dev/sim-usage"

// usageSpec is a parsed AnnotationSimUsage.
type usageSpec struct {
	pod        corev1.ResourceList            // whole-pod form
	containers map[string]corev1.ResourceList // per-container form
}

// parseUsage parses an AnnotationSimUsage value. Errors name the annotation and the part at fault.
func parseUsage(v string) (usageSpec, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return usageSpec{}, fmt.Errorf("annotation %s: empty", AnnotationSimUsage)
	}
	if !strings.Contains(v, ":") {
		rl, err := parseResourceList(v)
		if err != nil {
			return usageSpec{}, fmt.Errorf("annotation %s: %w", AnnotationSimUsage, err)
		}
		return usageSpec{pod: rl}, nil
	}
	out := usageSpec{containers: map[string]corev1.ResourceList{}}
	for part := range strings.SplitSeq(v, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, list, ok := strings.Cut(part, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return usageSpec{}, fmt.Errorf("annotation %s: %q: want <container>: cpu=<q>,memory=<q>", AnnotationSimUsage, part)
		}
		if _, dup := out.containers[name]; dup {
			return usageSpec{}, fmt.Errorf("annotation %s: container %q given twice", AnnotationSimUsage, name)
		}
		rl, err := parseResourceList(list)
		if err != nil {
			return usageSpec{}, fmt.Errorf("annotation %s: container %q: %w", AnnotationSimUsage, name, err)
		}
		out.containers[name] = rl
	}
	return out, nil
}

// parseResourceList parses "cpu=250m,memory=64Mi".
func parseResourceList(s string) (corev1.ResourceList, error) {
	rl := corev1.ResourceList{}
	for kv := range strings.SplitSeq(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return nil, fmt.Errorf("%q: want <resource>=<quantity>", kv)
		}
		name := corev1.ResourceName(k)
		if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
			return nil, fmt.Errorf("%q: resource: want cpu or memory, got %q", kv, k)
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("%s: want a quantity, got %q", k, v)
		}
		if q.Sign() < 0 {
			return nil, fmt.Errorf("%s: must not be negative, got %q", k, v)
		}
		if _, dup := rl[name]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		rl[name] = q
	}
	if len(rl) == 0 {
		return nil, fmt.Errorf("no resources in %q", s)
	}
	return rl, nil
}

var usageResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

// ContainerUsage is the simulated usage of one container.
type ContainerUsage struct {
	Name  string
	Usage corev1.ResourceList
}

// PodUsage computes the simulated usage of each container of pod: the annotation when present, otherwise
// fraction × requests. An invalid annotation is an error naming it; callers fall back to the default.
func PodUsage(pod *corev1.Pod, fraction float64) ([]ContainerUsage, error) {
	out := make([]ContainerUsage, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		out[i] = ContainerUsage{Name: c.Name, Usage: corev1.ResourceList{}}
	}
	var spec usageSpec
	var parseErr error
	if v, ok := pod.Annotations[AnnotationSimUsage]; ok {
		spec, parseErr = parseUsage(v)
		if parseErr != nil {
			spec = usageSpec{}
		}
	}
	for _, res := range usageResources {
		switch {
		case spec.containers != nil:
			for i, c := range pod.Spec.Containers {
				q, ok := spec.containers[c.Name][res]
				if !ok {
					if _, named := spec.containers[c.Name]; named {
						q = fractionOf(res, c.Resources.Requests[res], fraction)
					} else {
						q = quantity(res, 0)
					}
				}
				out[i].Usage[res] = q
			}
		case spec.pod != nil && hasResource(spec.pod, res):
			split(pod, res, spec.pod[res], out)
		default:
			for i, c := range pod.Spec.Containers {
				out[i].Usage[res] = fractionOf(res, c.Resources.Requests[res], fraction)
			}
		}
	}
	if parseErr != nil {
		return out, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, parseErr)
	}
	return out, nil
}

func hasResource(rl corev1.ResourceList, res corev1.ResourceName) bool {
	_, ok := rl[res]
	return ok
}

// split divides a whole-pod quantity across containers in proportion to their requests (evenly without any).
func split(pod *corev1.Pod, res corev1.ResourceName, total resource.Quantity, out []ContainerUsage) {
	n := len(pod.Spec.Containers)
	if n == 0 {
		return
	}
	var sum int64
	for _, c := range pod.Spec.Containers {
		r := c.Resources.Requests[res]
		sum += r.MilliValue()
	}
	totalMilli := total.MilliValue()
	var given int64
	for i, c := range pod.Spec.Containers {
		var share int64
		switch {
		case i == n-1:
			share = totalMilli - given // the last container takes the rounding remainder
		case sum > 0:
			r := c.Resources.Requests[res]
			share = int64(math.Round(float64(totalMilli) * float64(r.MilliValue()) / float64(sum)))
		default:
			share = totalMilli / int64(n)
		}
		given += share
		out[i].Usage[res] = quantity(res, share)
	}
}

func fractionOf(res corev1.ResourceName, q resource.Quantity, fraction float64) resource.Quantity {
	return quantity(res, int64(math.Round(float64(q.MilliValue())*fraction)))
}

// quantity renders milli-units of res: millicores for cpu, whole bytes for memory.
func quantity(res corev1.ResourceName, milli int64) resource.Quantity {
	if res == corev1.ResourceMemory {
		return *resource.NewQuantity(milli/1000, resource.BinarySI)
	}
	return *resource.NewMilliQuantity(milli, resource.DecimalSI)
}
