// Package e2e holds the end-to-end test behind the build tag e2e (`make e2e`): the released images run as real
// containers on the dev cluster's container node, installed by the Helm chart, and scale a Redis worker from
// zero and back, through an HPA in mode hpa, across a helm upgrade (upgrade_test.go), and on measured CPU
// (hpa_test.go). See e2e_test.go for what it needs and asserts.
//
// Where the virtual node runs: the node that runs containers through containerd is tidal-dev's own (a host
// process, like a kubelet), not the chart's virtual-node pod. A pod cannot be started by the node it provides,
// and a virtual node inside a container managing the containerd that runs it would need the host's socket and
// state directory at identical paths (virtualNode.containerd does mount them for a real cluster, where a kubelet
// runs that pod). So the chart's virtual node is installed too, as a container with the sim backend, to check
// its image, flags, RBAC and lease in a container; backend=containerd inside a container is not exercised here.
//
// Differences from a real cluster, all in values: no cluster DNS (the operator dials the adapter's stream at
// 127.0.0.1 with the Service name as TLS server name), host networking (distinct host ports for every
// deployable, and Recreate rollouts since a new pod cannot bind the old one's ports), the virtual node's
// --node-address (virtual-kubelet cannot resolve status.podIP in a pod's env), and the webhook configuration owned
// by Helm so uninstall removes it. Webhooks and the APIService reach their pods through tidal-dev's service router
// (ClusterIPs on lo).
package e2e
