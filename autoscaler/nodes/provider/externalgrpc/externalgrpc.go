// Package externalgrpc is the node provider that speaks cluster-autoscaler's externalgrpc CloudProvider
// protocol, so cloud providers written for cluster-autoscaler's externalgrpc plug into Tidal unchanged.
//
// NodeGroup spec.providerRef.config keys:
//
//	address:     host:port of the gRPC server (required)
//	nodeGroupID: the server's node group id (default: the NodeGroup's name)
//
// Transport security comes from Options.DialOptions (the process's flags), never from the NodeGroup.
package externalgrpc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/externalgrpc/protos"
)

// Config keys.
const (
	ConfigAddress     = "address"
	ConfigNodeGroupID = "nodeGroupID"
)

// Options configure New.
type Options struct {
	// Nodes maps provider IDs to node names.
	Nodes corelisters.NodeLister
	// DialOptions for every connection; default plaintext (insecure.NewCredentials()).
	DialOptions []grpc.DialOption
	// CallTimeout bounds each RPC (default 10s, as cluster-autoscaler's grpc client).
	CallTimeout time.Duration
}

// Provider is safe for concurrent use. Close releases its connections.
type Provider struct {
	opts  Options
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

var (
	_ provider.Provider        = (*Provider)(nil)
	_ provider.TargetDecreaser = (*Provider)(nil)
	_ provider.Refresher       = (*Provider)(nil)
)

// New returns an externalgrpc provider.
func New(opts Options) (*Provider, error) {
	if opts.Nodes == nil {
		return nil, fmt.Errorf("externalgrpc provider: Options.Nodes is required")
	}
	if len(opts.DialOptions) == 0 {
		opts.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 10 * time.Second
	}
	return &Provider{opts: opts, conns: map[string]*grpc.ClientConn{}}, nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return string(v1alpha1.ProviderExternalGRPC) }

// Close closes every connection.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for addr, c := range p.conns {
		if err := c.Close(); err != nil && first == nil {
			first = fmt.Errorf("externalgrpc provider: close %s: %w", addr, err)
		}
		delete(p.conns, addr)
	}
	return first
}

func (p *Provider) client(group *v1alpha1.NodeGroup) (protos.CloudProviderClient, string, error) {
	addr := group.Spec.ProviderRef.Config[ConfigAddress]
	if addr == "" {
		return nil, "", fmt.Errorf("externalgrpc provider: node group %q: providerRef.config.%s is required", group.Name, ConfigAddress)
	}
	id := group.Spec.ProviderRef.Config[ConfigNodeGroupID]
	if id == "" {
		id = group.Name
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	conn, ok := p.conns[addr]
	if !ok {
		var err error
		conn, err = grpc.NewClient(addr, p.opts.DialOptions...)
		if err != nil {
			return nil, "", fmt.Errorf("externalgrpc provider: node group %q: providerRef.config.%s %q: %w", group.Name, ConfigAddress, addr, err)
		}
		p.conns[addr] = conn
	}
	return protos.NewCloudProviderClient(conn), id, nil
}

func (p *Provider) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.opts.CallTimeout)
}

// Refresh implements provider.Refresher: it calls Refresh on every server in use.
func (p *Provider) Refresh(ctx context.Context) error {
	p.mu.Lock()
	conns := make(map[string]*grpc.ClientConn, len(p.conns))
	for a, c := range p.conns {
		conns[a] = c
	}
	p.mu.Unlock()
	for addr, c := range conns {
		cctx, cancel := p.call(ctx)
		_, err := protos.NewCloudProviderClient(c).Refresh(cctx, &protos.RefreshRequest{})
		cancel()
		if err != nil {
			return fmt.Errorf("externalgrpc provider: refresh %s: %w", addr, err)
		}
	}
	return nil
}

// Instances implements provider.Provider: NodeGroupNodes, plus a Creating placeholder for each unit of
// NodeGroupTargetSize the server lists no instance for yet.
func (p *Provider) Instances(ctx context.Context, group *v1alpha1.NodeGroup) ([]provider.Instance, error) {
	c, id, err := p.client(group)
	if err != nil {
		return nil, err
	}
	cctx, cancel := p.call(ctx)
	defer cancel()
	resp, err := c.NodeGroupNodes(cctx, &protos.NodeGroupNodesRequest{Id: id})
	if err != nil {
		return nil, fmt.Errorf("externalgrpc provider: node group %q: NodeGroupNodes(%q): %w", group.Name, id, err)
	}
	size, err := c.NodeGroupTargetSize(cctx, &protos.NodeGroupTargetSizeRequest{Id: id})
	if err != nil {
		return nil, fmt.Errorf("externalgrpc provider: node group %q: NodeGroupTargetSize(%q): %w", group.Name, id, err)
	}
	nodes, err := p.opts.Nodes.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("externalgrpc provider: list nodes: %w", err)
	}
	byProviderID := make(map[string]string, len(nodes))
	for _, n := range nodes {
		if n.Spec.ProviderID != "" {
			byProviderID[n.Spec.ProviderID] = n.Name
		}
	}
	var out []provider.Instance
	active := 0
	for _, in := range resp.GetInstances() {
		inst := provider.Instance{ID: in.GetId(), NodeName: byProviderID[in.GetId()]}
		switch in.GetStatus().GetInstanceState() {
		case protos.InstanceStatus_instanceCreating:
			inst.State = provider.InstanceCreating
		case protos.InstanceStatus_instanceDeleting:
			inst.State = provider.InstanceDeleting
		default:
			inst.State = provider.InstanceRunning
			if inst.NodeName == "" {
				inst.State = provider.InstanceCreating
			}
		}
		if e := in.GetStatus().GetErrorInfo(); e.GetErrorCode() != "" {
			inst.Error = e.GetErrorCode() + ": " + e.GetErrorMessage()
		}
		if inst.State != provider.InstanceDeleting {
			active++
		}
		out = append(out, inst)
	}
	for i := active; i < int(size.GetTargetSize()); i++ {
		out = append(out, provider.Instance{ID: fmt.Sprintf("externalgrpc://%s/pending-%d", id, i), State: provider.InstanceCreating})
	}
	return out, nil
}

// IncreaseSize implements provider.Provider.
func (p *Provider) IncreaseSize(ctx context.Context, group *v1alpha1.NodeGroup, delta int) error {
	if delta <= 0 {
		return fmt.Errorf("externalgrpc provider: node group %q: increase by %d: delta must be positive", group.Name, delta)
	}
	c, id, err := p.client(group)
	if err != nil {
		return err
	}
	cctx, cancel := p.call(ctx)
	defer cancel()
	if _, err := c.NodeGroupIncreaseSize(cctx, &protos.NodeGroupIncreaseSizeRequest{Id: id, Delta: int32(delta)}); err != nil {
		return fmt.Errorf("externalgrpc provider: node group %q: NodeGroupIncreaseSize(%q, %d): %w", group.Name, id, delta, err)
	}
	return nil
}

// DecreaseTargetSize implements provider.TargetDecreaser (the protocol's delta is negative).
func (p *Provider) DecreaseTargetSize(ctx context.Context, group *v1alpha1.NodeGroup, delta int) error {
	c, id, err := p.client(group)
	if err != nil {
		return err
	}
	cctx, cancel := p.call(ctx)
	defer cancel()
	if _, err := c.NodeGroupDecreaseTargetSize(cctx, &protos.NodeGroupDecreaseTargetSizeRequest{Id: id, Delta: -int32(delta)}); err != nil {
		return fmt.Errorf("externalgrpc provider: node group %q: NodeGroupDecreaseTargetSize(%q, %d): %w", group.Name, id, -delta, err)
	}
	return nil
}

// DeleteNodes implements provider.Provider.
func (p *Provider) DeleteNodes(ctx context.Context, group *v1alpha1.NodeGroup, nodes []*corev1.Node) error {
	c, id, err := p.client(group)
	if err != nil {
		return err
	}
	req := &protos.NodeGroupDeleteNodesRequest{Id: id}
	for _, n := range nodes {
		req.Nodes = append(req.Nodes, &protos.ExternalGrpcNode{
			ProviderID: n.Spec.ProviderID, Name: n.Name, Labels: n.Labels, Annotations: n.Annotations,
		})
	}
	cctx, cancel := p.call(ctx)
	defer cancel()
	if _, err := c.NodeGroupDeleteNodes(cctx, req); err != nil {
		return fmt.Errorf("externalgrpc provider: node group %q: NodeGroupDeleteNodes(%q, %d nodes): %w", group.Name, id, len(nodes), err)
	}
	return nil
}
