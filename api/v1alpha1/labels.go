package v1alpha1

// Well-known label and taint of the nodes tidal-virtual-node registers, shared by the deployables that select
// them (the metrics adapter scrapes the backends that measure real usage) and by the dev cluster's tools.
const (
	// VirtualNodeBackendLabel names the virtual node's backend: sim, process, containerd or aci.
	VirtualNodeBackendLabel = "tidal.dev/virtual-node-backend"
	// VirtualNodeTaintKey is the NoSchedule taint every virtual node carries, as AKS's virtual node does.
	VirtualNodeTaintKey = "virtual-kubelet.io/provider"
)
