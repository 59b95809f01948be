package provider

import (
	"errors"
	"fmt"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"maps"
	"runtime"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node identity constants, as AKS's virtual node (virtual-kubelet) registers them.
const (
	LabelType     = "type"
	TypeVirtual   = "virtual-kubelet"
	TaintKey      = tidalv1alpha1.VirtualNodeTaintKey
	TaintValue    = "tidal"
	LabelProvider = tidalv1alpha1.VirtualNodeBackendLabel
)

// NodeOptions describe the Node object the virtual node registers.
type NodeOptions struct {
	Name string
	// Address is the InternalIP the API server uses to reach the kubelet API (logs, exec, stats).
	Address string
	// Port is the kubelet API port advertised in status.daemonEndpoints.
	Port int32
	// Capacity is cpu, memory and pods (allocatable is the same).
	Capacity corev1.ResourceList
	Labels   map[string]string
	// Annotations of the Node (placement inputs: tidal.dev/price-per-cpu-hour, tidal.dev/pod-start-seconds).
	Annotations map[string]string
	// Backend names the backend, recorded as a label.
	Backend string
	// NoTaint leaves the virtual-kubelet.io/provider taint off (not recommended).
	NoTaint bool
	Version string
}

// Validate checks the options, naming the field at fault.
func (o NodeOptions) Validate() error {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("node name: must not be empty"))
	}
	if o.Address == "" {
		errs = append(errs, errors.New("node address: must not be empty"))
	}
	if o.Port <= 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("node port: want 1-65535, got %d", o.Port))
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods} {
		q, ok := o.Capacity[r]
		if !ok || q.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("node capacity %s: must be set and positive", r))
		}
	}
	return errors.Join(errs...)
}

// Node returns the Node object to register.
func (o NodeOptions) Node() *corev1.Node {
	labels := map[string]string{
		LabelType:                TypeVirtual,
		"kubernetes.io/role":     "agent",
		"kubernetes.io/hostname": o.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     runtime.GOARCH,
		"node.kubernetes.io/exclude-from-external-load-balancers": "true",
		LabelProvider: o.Backend,
	}
	maps.Copy(labels, o.Labels)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: labels, Annotations: maps.Clone(o.Annotations)},
		Status: corev1.NodeStatus{
			Phase:       corev1.NodePending,
			Capacity:    o.Capacity.DeepCopy(),
			Allocatable: o.Capacity.DeepCopy(),
			Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: o.Address}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{
				KubeletEndpoint: corev1.DaemonEndpoint{Port: o.Port},
			},
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem: "linux",
				Architecture:    runtime.GOARCH,
				KubeletVersion:  o.Version,
			},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletStarting"},
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory"},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure"},
				{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID"},
				{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated"},
			},
		},
	}
	if !o.NoTaint {
		n.Spec.Taints = []corev1.Taint{{Key: TaintKey, Value: TaintValue, Effect: corev1.TaintEffectNoSchedule}}
	}
	return n
}
