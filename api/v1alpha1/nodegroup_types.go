package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeGroup is a set of identical nodes the node autoscaler may grow and shrink between minSize and maxSize.
// It is cluster-scoped because the nodes it creates are.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=nodegroups,scope=Cluster,shortName=ng,categories=tidal
// +kubebuilder:printcolumn:name="Min",type="integer",JSONPath=".spec.minSize"
// +kubebuilder:printcolumn:name="Max",type="integer",JSONPath=".spec.maxSize"
// +kubebuilder:printcolumn:name="Target",type="integer",JSONPath=".status.targetSize"
// +kubebuilder:printcolumn:name="Ready",type="integer",JSONPath=".status.readyNodes"
// +kubebuilder:printcolumn:name="Provider",type="string",JSONPath=".spec.providerRef.name"
// +kubebuilder:printcolumn:name="Price",type="string",JSONPath=".spec.pricePerHour",priority=1
// +kubebuilder:printcolumn:name="Zone",type="string",JSONPath=".spec.template.zone",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type NodeGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec NodeGroupSpec `json:"spec"`
	// +optional
	Status NodeGroupStatus `json:"status,omitempty"`
}

// NodeGroupList is a list of NodeGroups.
//
// +kubebuilder:object:root=true
type NodeGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeGroup `json:"items"`
}

// NodeGroupSpec describes the nodes of a group and how many there may be.
//
// +kubebuilder:validation:XValidation:rule="self.minSize <= self.maxSize",message="spec.minSize must be less than or equal to spec.maxSize",fieldPath=".minSize"
type NodeGroupSpec struct {
	// MinSize is the fewest nodes the group keeps.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	MinSize int32 `json:"minSize"`

	// MaxSize is the most nodes the group may have.
	// +kubebuilder:validation:Minimum=0
	MaxSize int32 `json:"maxSize"`

	// Template describes every node of the group; the scheduling simulation uses it.
	Template NodeTemplate `json:"template"`

	// PricePerHour of one node as a non-negative decimal string in any currency (e.g. "0.096"); used by the
	// price expander. Empty means unknown: the price expander ranks the group last.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	PricePerHour string `json:"pricePerHour,omitempty"`

	// Priority for the priority expander; higher wins.
	// +optional
	// +kubebuilder:default=0
	Priority int32 `json:"priority,omitempty"`

	// ProviderRef selects the provider that creates and deletes the nodes.
	ProviderRef ProviderRef `json:"providerRef"`

	// Headroom is capacity the group keeps free for pods not yet created (cluster-autoscaler's overprovisioning,
	// without placeholder pods): the node autoscaler simulates one pod of these requests on the group's nodes and
	// grows the group when it fits on none. Quantities must not be negative.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, !string(self[k]).startsWith('-'))",message="spec.headroom: quantities must not be negative"
	Headroom corev1.ResourceList `json:"headroom,omitempty"`
}

// Defaults of NodeTemplate fields.
const (
	// DefaultNodePods is the pod capacity assumed when the template's capacity has no "pods".
	DefaultNodePods = 110
)

// NodeTemplate is the shape of one node. Quantity rules (non-negative, allocatable <= capacity) are checked by
// NodeGroup.Validate only: CEL's cost estimate for quantity parsing of unbounded ResourceList values is too high.
//
// +kubebuilder:validation:XValidation:rule="'cpu' in self.capacity && 'memory' in self.capacity",message="template.capacity must include cpu and memory",fieldPath=".capacity"
type NodeTemplate struct {
	// Capacity of the node (cpu, memory, pods, ephemeral-storage, extended resources).
	// +kubebuilder:validation:MaxProperties=32
	Capacity corev1.ResourceList `json:"capacity"`

	// Allocatable is what pods may use; default Capacity.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`

	// Labels set on every node, in addition to the ones the autoscaler adds (node group name, zone).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Taints set on every node.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(t, !has(t.effect) || t.effect in ['NoSchedule', 'PreferNoSchedule', 'NoExecute'])",message="template.taints[].effect must be NoSchedule, PreferNoSchedule or NoExecute"
	Taints []corev1.Taint `json:"taints,omitempty"`

	// Zone of the nodes; set as the topology.kubernetes.io/zone label.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Zone string `json:"zone,omitempty"`
}

// ProviderName selects a node provider.
// +kubebuilder:validation:Enum=sim;clusterapi;externalgrpc
type ProviderName string

const (
	// ProviderSim creates simulated (kwok) nodes.
	ProviderSim ProviderName = "sim"
	// ProviderClusterAPI scales a Cluster API MachineDeployment.
	ProviderClusterAPI ProviderName = "clusterapi"
	// ProviderExternalGRPC calls the cluster-autoscaler externalgrpc protocol.
	ProviderExternalGRPC ProviderName = "externalgrpc"
)

// ProviderRef selects and configures the provider of a NodeGroup.
type ProviderRef struct {
	// Name of the provider.
	Name ProviderName `json:"name"`
	// Config is provider-specific (e.g. machineDeployment for clusterapi, address for externalgrpc). It must not
	// hold credentials: name a Secret in it instead.
	// +optional
	Config map[string]string `json:"config,omitempty"`
}

// NodeGroupStatus is observed by the node autoscaler.
type NodeGroupStatus struct {
	// TargetSize is the node count the autoscaler asked the provider for.
	// +optional
	TargetSize int32 `json:"targetSize"`
	// ReadyNodes counts nodes of the group that are Ready.
	// +optional
	ReadyNodes int32 `json:"readyNodes"`
	// RegisteredNodes counts the group's Node objects.
	// +optional
	RegisteredNodes int32 `json:"registeredNodes"`
	// UnregisteredNodes counts instances the provider reports without a Node object yet.
	// +optional
	UnregisteredNodes int32 `json:"unregisteredNodes"`
	// Backoff is set while scale-up is suspended after failures.
	// +optional
	Backoff *NodeGroupBackoff `json:"backoff,omitempty"`
	// LastScaleUpTime is when the target size was last raised.
	// +optional
	LastScaleUpTime *metav1.Time `json:"lastScaleUpTime,omitempty"`
	// LastScaleDownTime is when the target size was last lowered.
	// +optional
	LastScaleDownTime *metav1.Time `json:"lastScaleDownTime,omitempty"`

	// ProvisionTime is the measured node provision time (node requested → Ready) of this group.
	// +optional
	ProvisionTime *ProvisionTimeEstimate `json:"provisionTime,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Backoff.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NodeGroupBackoff records a scale-up backoff.
type NodeGroupBackoff struct {
	// Until is when scale-up may be tried again.
	Until metav1.Time `json:"until"`
	// Reason of the last failure; never contains credentials.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Failures counts consecutive failed scale-ups.
	// +optional
	Failures int32 `json:"failures,omitempty"`
}
