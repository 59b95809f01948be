// Package provider defines how the node autoscaler creates and deletes nodes: one small interface per
// provider (sim, clusterapi, externalgrpc), plus optional capabilities found by type assertion.
package provider

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
)

// Provider creates and deletes the nodes of NodeGroups. Every node it creates carries the label
// template.LabelNodeGroup=<group name>; that label is how the autoscaler maps nodes to groups.
//
// Implementations are called from one goroutine per autoscaler loop but must be safe for concurrent use
// (drains run in the background). All methods take ctx first and must return when it is cancelled.
type Provider interface {
	// Name of the provider, as in NodeGroup spec.providerRef.name.
	Name() string

	// Instances lists the group's instances: registered ones (with a Node) and ones still being created.
	// Implementation required. The number of instances is the group's current target size.
	Instances(ctx context.Context, group *v1alpha1.NodeGroup) ([]Instance, error)

	// IncreaseSize asks for delta (> 0) more nodes. It returns once the request is accepted, not when the nodes
	// exist; the new instances show up in Instances as InstanceCreating. Implementation required.
	IncreaseSize(ctx context.Context, group *v1alpha1.NodeGroup, delta int) error

	// DeleteNodes removes the given registered nodes of the group and lowers its target size by as many. Nodes
	// that are already gone are not an error. Implementation required.
	DeleteNodes(ctx context.Context, group *v1alpha1.NodeGroup, nodes []*corev1.Node) error
}

// TargetDecreaser is optional: it gives up on up to delta instances that are still being created (never on
// registered nodes). The autoscaler uses it when instances exceed the max provision time.
type TargetDecreaser interface {
	DecreaseTargetSize(ctx context.Context, group *v1alpha1.NodeGroup, delta int) error
}

// Refresher is optional: Refresh is called once at the start of every autoscaler loop, before Instances.
type Refresher interface {
	Refresh(ctx context.Context) error
}

// Recoverer is optional: Recover is called once per group when an autoscaler starts leading, before its first
// loop, to settle operations a previous run (crashed or killed) left half-done. It returns the names of the
// group's nodes whose removal is under way and will complete; every other node the autoscaler tainted for
// removal gets its taint and cordon back off.
type Recoverer interface {
	Recover(ctx context.Context, group *v1alpha1.NodeGroup) (deleting []string, err error)
}

// InstanceState is the lifecycle state of an instance.
type InstanceState string

// Instance states.
const (
	InstanceCreating InstanceState = "Creating"
	InstanceRunning  InstanceState = "Running"
	InstanceDeleting InstanceState = "Deleting"
)

// Instance is one machine of a node group as the provider sees it.
type Instance struct {
	// ID is the provider ID the Node will carry (spec.providerID), unique per provider.
	ID string
	// NodeName once a Node is registered; empty before.
	NodeName string
	State    InstanceState
	// CreatedAt is when the instance was requested; zero when unknown.
	CreatedAt time.Time
	// Error is a provider error for an instance that failed to be created; never contains credentials.
	Error string
}

// Registry maps provider names to providers.
type Registry map[v1alpha1.ProviderName]Provider
