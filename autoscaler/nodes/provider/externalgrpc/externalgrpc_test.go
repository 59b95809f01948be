package externalgrpc_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/externalgrpc"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider/externalgrpc/protos"
)

// cloud is a cloud provider server as one would write for cluster-autoscaler's externalgrpc: one node group
// "pool-1" whose instances start Creating and are marked Running by the test.
type cloud struct {
	protos.UnimplementedCloudProviderServer
	mu        sync.Mutex
	target    int32
	instances []*protos.Instance
	deleted   []string
	refreshes int
	next      int
}

func (c *cloud) check(id string) error {
	if id != "pool-1" {
		return status.Errorf(codes.NotFound, "node group %q not found", id)
	}
	return nil
}

func (c *cloud) Refresh(context.Context, *protos.RefreshRequest) (*protos.RefreshResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshes++
	return &protos.RefreshResponse{}, nil
}

func (c *cloud) NodeGroupTargetSize(_ context.Context, r *protos.NodeGroupTargetSizeRequest) (*protos.NodeGroupTargetSizeResponse, error) {
	if err := c.check(r.GetId()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return &protos.NodeGroupTargetSizeResponse{TargetSize: c.target}, nil
}

func (c *cloud) NodeGroupIncreaseSize(_ context.Context, r *protos.NodeGroupIncreaseSizeRequest) (*protos.NodeGroupIncreaseSizeResponse, error) {
	if err := c.check(r.GetId()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.GetDelta() <= 0 {
		return nil, status.Error(codes.InvalidArgument, "delta must be positive")
	}
	c.target += r.GetDelta()
	for i := int32(0); i < r.GetDelta(); i++ {
		c.instances = append(c.instances, &protos.Instance{Id: fmt.Sprintf("cloud://vm-%d", c.next),
			Status: &protos.InstanceStatus{InstanceState: protos.InstanceStatus_instanceCreating}})
		c.next++
	}
	return &protos.NodeGroupIncreaseSizeResponse{}, nil
}

func (c *cloud) NodeGroupDecreaseTargetSize(_ context.Context, r *protos.NodeGroupDecreaseTargetSizeRequest) (*protos.NodeGroupDecreaseTargetSizeResponse, error) {
	if err := c.check(r.GetId()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.GetDelta() >= 0 {
		return nil, status.Error(codes.InvalidArgument, "delta must be negative")
	}
	c.target += r.GetDelta()
	return &protos.NodeGroupDecreaseTargetSizeResponse{}, nil
}

func (c *cloud) NodeGroupDeleteNodes(_ context.Context, r *protos.NodeGroupDeleteNodesRequest) (*protos.NodeGroupDeleteNodesResponse, error) {
	if err := c.check(r.GetId()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range r.GetNodes() {
		kept := c.instances[:0]
		found := false
		for _, in := range c.instances {
			if in.GetId() == n.GetProviderID() {
				found = true
				continue
			}
			kept = append(kept, in)
		}
		if !found {
			return nil, status.Errorf(codes.NotFound, "node %q is not in pool-1", n.GetName())
		}
		c.instances = kept
		c.target--
		c.deleted = append(c.deleted, n.GetName()+"@"+n.GetLabels()["pool"])
	}
	return &protos.NodeGroupDeleteNodesResponse{}, nil
}

func (c *cloud) NodeGroupNodes(_ context.Context, r *protos.NodeGroupNodesRequest) (*protos.NodeGroupNodesResponse, error) {
	if err := c.check(r.GetId()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return &protos.NodeGroupNodesResponse{Instances: append([]*protos.Instance(nil), c.instances...)}, nil
}

func (c *cloud) markRunning(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.instances[i].Status.InstanceState = protos.InstanceStatus_instanceRunning
}

func serve(t *testing.T, srv protos.CloudProviderServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	protos.RegisterCloudProviderServer(s, srv)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func TestProviderAgainstGRPCServer(t *testing.T) {
	ctx := context.Background()
	cl := &cloud{}
	addr := serve(t, cl)
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	p, err := externalgrpc.New(externalgrpc.Options{Nodes: corelisters.NewNodeLister(indexer)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	group := &v1alpha1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "grpc"}, Spec: v1alpha1.NodeGroupSpec{MaxSize: 5,
		ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderExternalGRPC,
			Config: map[string]string{externalgrpc.ConfigAddress: addr, externalgrpc.ConfigNodeGroupID: "pool-1"}}}}

	if err := p.IncreaseSize(ctx, group, 3); err != nil {
		t.Fatalf("IncreaseSize: %v", err)
	}
	inst, err := p.Instances(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst) != 3 {
		t.Fatalf("instances = %+v, want 3", inst)
	}
	for _, in := range inst {
		if in.State != provider.InstanceCreating || in.NodeName != "" {
			t.Errorf("instance %+v, want creating without node", in)
		}
	}
	// vm-0 boots and registers.
	cl.markRunning(0)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-0", Labels: map[string]string{"pool": "p1"}}, Spec: corev1.NodeSpec{ProviderID: "cloud://vm-0"}}
	if err := indexer.Add(node); err != nil {
		t.Fatal(err)
	}
	inst, err = p.Instances(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if inst[0].NodeName != "node-0" || inst[0].State != provider.InstanceRunning {
		t.Fatalf("first instance %+v, want running on node-0", inst[0])
	}
	if err := p.DecreaseTargetSize(ctx, group, 2); err != nil {
		t.Fatalf("DecreaseTargetSize: %v", err)
	}
	if err := p.DeleteNodes(ctx, group, []*corev1.Node{node}); err != nil {
		t.Fatalf("DeleteNodes: %v", err)
	}
	if err := p.Refresh(ctx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.target != 0 || len(cl.deleted) != 1 || cl.deleted[0] != "node-0@p1" || cl.refreshes != 1 {
		t.Fatalf("server state: target %d deleted %v refreshes %d; want 0, [node-0@p1], 1", cl.target, cl.deleted, cl.refreshes)
	}
}

func TestErrorsNameGroupAndCall(t *testing.T) {
	ctx := context.Background()
	addr := serve(t, &cloud{})
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	p, err := externalgrpc.New(externalgrpc.Options{Nodes: corelisters.NewNodeLister(indexer)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	cases := []struct {
		name   string
		config map[string]string
		want   string
	}{
		{name: "missing address", config: map[string]string{}, want: `node group "g": providerRef.config.address is required`},
		{name: "unknown group on the server", config: map[string]string{externalgrpc.ConfigAddress: addr}, want: `NodeGroupIncreaseSize("g", 1)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := &v1alpha1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "g"}, Spec: v1alpha1.NodeGroupSpec{MaxSize: 1,
				ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderExternalGRPC, Config: tc.config}}}
			err := p.IncreaseSize(ctx, g, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
