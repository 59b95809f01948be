package controlplane

import (
	"context"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/internal/kubenode"
)

// Well-known labels set on every simulated node.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelZone     = "topology.kubernetes.io/zone"
	LabelRegion   = "topology.kubernetes.io/region"
	// PodsPerNode is the pod capacity of a simulated node, as on a default kubelet.
	PodsPerNode = 110
)

// zones the simulated nodes are spread over, round-robin.
var zones = [...]string{"zone-a", "zone-b", "zone-c"}

// NodeShape is the size of one simulated node.
type NodeShape struct {
	CPU    resource.Quantity
	Memory resource.Quantity
}

// SimulatedNode returns the Node object for the i-th simulated node: labelled type=kwok so kwok manages it,
// with a hostname, a zone, a pod CIDR and the given capacity (allocatable equals capacity).
func SimulatedNode(i int, shape NodeShape) *corev1.Node {
	name := fmt.Sprintf("kwok-node-%d", i)
	resources := corev1.ResourceList{
		corev1.ResourceCPU:              shape.CPU,
		corev1.ResourceMemory:           shape.Memory,
		corev1.ResourcePods:             *resource.NewQuantity(PodsPerNode, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				KwokNodeLabel:             KwokNodeLabelValue,
				LabelHostname:             name,
				LabelZone:                 zones[i%len(zones)],
				LabelRegion:               "tidal-dev",
				corev1.LabelOSStable:      "linux",
				corev1.LabelArchStable:    "amd64",
				"node.kubernetes.io/role": "agent",
			},
			Annotations: map[string]string{
				"kwok.x-k8s.io/node":           "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
		},
		Spec: corev1.NodeSpec{ProviderID: "kwok://" + name},
		Status: corev1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources.DeepCopy(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: nodeIP(i)},
				{Type: corev1.NodeHostName, Address: name},
			},
		},
	}
	if i < 256 {
		node.Spec.PodCIDR = fmt.Sprintf("10.244.%d.0/24", i)
		node.Spec.PodCIDRs = []string{node.Spec.PodCIDR}
	}
	return node
}

// nodeIP is a distinct InternalIP per node in 10.1.0.0/16.
func nodeIP(i int) string {
	return net.IPv4(10, 1, byte(i/250), byte(i%250+1)).String()
}

// createNodes creates n simulated nodes; an existing node (a kept --data-dir) is left as it is.
func createNodes(ctx context.Context, client kubernetes.Interface, n int, shape NodeShape) error {
	for i := 0; i < n; i++ {
		node := SimulatedNode(i, shape)
		_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{FieldManager: "tidal-dev"})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %q: %w", node.Name, err)
		}
	}
	return nil
}

// waitNodesReady waits until n simulated nodes report Ready and carry no not-ready/unreachable taint, so a pod
// created right after start-up schedules at once.
func waitNodesReady(ctx context.Context, client kubernetes.Interface, n int) error {
	if n == 0 {
		return nil
	}
	selector := KwokNodeLabel + "=" + KwokNodeLabelValue
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil // transient while the apiserver warms up
		}
		ready := 0
		for i := range list.Items {
			if kubenode.Schedulable(&list.Items[i]) {
				ready++
			}
		}
		return ready >= n, nil
	})
}
