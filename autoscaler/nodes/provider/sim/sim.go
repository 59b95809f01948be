// Package sim is the simulated node provider: it creates Node objects shaped like a NodeGroup's template,
// labelled type=kwok so kwok (in the dev cluster) runs them, after a configurable provisioning delay, and
// deletes them on scale-down. It is the default provider, used by the demo and the tests.
//
// NodeGroup spec.providerRef.config keys:
//
//	provisioningDelay: Go duration before a requested node appears (default Options.DefaultDelay)
//	failProvisioning:  "true" makes requested nodes never appear (to exercise max-provision-time and backoff)
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/util/workqueue"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// Config keys in spec.providerRef.config.
const (
	ConfigProvisioningDelay = "provisioningDelay"
	ConfigFailProvisioning  = "failProvisioning"
)

// Kwok's node selector and the annotations kwok expects on a fake node.
const (
	KwokLabel      = "type"
	KwokLabelValue = "kwok"
	providerPrefix = "tidal-sim://"
	fieldManager   = "tidal-node-autoscaler"
)

// listerGrace is how long a created node may be missing from the lister before it counts as gone.
const listerGrace = time.Minute

// Options configure New.
type Options struct {
	Client kubernetes.Interface
	// Nodes lists nodes from an informer cache; the caller starts and syncs it.
	Nodes corelisters.NodeLister
	// DefaultDelay before a requested node appears when the group does not set provisioningDelay.
	DefaultDelay time.Duration
	Logger       *zap.Logger
	// Workers create nodes concurrently, so a scale-up of many nodes lands at once (default 16; the client's
	// QPS/burst is then the limit, as a cloud API's rate limit would be).
	Workers int
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

// Provider is the sim provider. Run must be running for requested nodes to appear.
type Provider struct {
	opts  Options
	queue workqueue.TypedDelayingInterface[string]

	mu      sync.Mutex
	pending map[string]*pendingNode // by node name: requested, not yet seen in the lister
}

type pendingNode struct {
	group     *v1alpha1.NodeGroup // deep copy at request time
	createdAt time.Time
	created   bool      // the Node object was created; waiting for the lister to see it
	createdOn time.Time // when the Node object was created
	never     bool      // failProvisioning: never created
}

var (
	_ provider.Provider        = (*Provider)(nil)
	_ provider.TargetDecreaser = (*Provider)(nil)
)

// New returns a sim provider.
func New(opts Options) (*Provider, error) {
	if opts.Client == nil || opts.Nodes == nil {
		return nil, fmt.Errorf("sim provider: Options.Client and Options.Nodes are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	return &Provider{
		opts:    opts,
		queue:   workqueue.NewTypedDelayingQueue[string](),
		pending: map[string]*pendingNode{},
	}, nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return string(v1alpha1.ProviderSim) }

// Run creates requested nodes when their delay has passed, Options.Workers at a time, until ctx is cancelled.
func (p *Provider) Run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		p.queue.ShutDown()
	}()
	var wg sync.WaitGroup
	for range p.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				name, shutdown := p.queue.Get()
				if shutdown {
					return
				}
				p.create(ctx, name)
				p.queue.Done(name)
			}
		}()
	}
	wg.Wait()
}

func (p *Provider) create(ctx context.Context, name string) {
	p.mu.Lock()
	pn, ok := p.pending[name]
	p.mu.Unlock()
	if !ok || pn.never {
		return // cancelled by DecreaseTargetSize
	}
	node := Node(pn.group, name)
	_, err := p.opts.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{FieldManager: fieldManager})
	log := p.opts.Logger.With(zap.String("nodeGroup", pn.group.Name), zap.String("node", name))
	if err != nil && !apierrors.IsAlreadyExists(err) {
		log.Warn("create simulated node failed; retrying", zap.Error(err))
		if ctx.Err() == nil {
			p.queue.AddAfter(name, time.Second)
		}
		return
	}
	log.Info("created simulated node")
	p.mu.Lock()
	pn.created, pn.createdOn = true, p.opts.Now()
	p.mu.Unlock()
}

// Node returns the Node object the sim provider creates for group: the template node plus kwok's label and
// annotations, a provider ID and an InternalIP.
func Node(group *v1alpha1.NodeGroup, name string) *corev1.Node {
	node := template.Node(group, name)
	node.Labels[KwokLabel] = KwokLabelValue
	node.Annotations = map[string]string{
		"kwok.x-k8s.io/node":           "fake",
		"node.alpha.kubernetes.io/ttl": "0",
	}
	node.Spec.ProviderID = providerPrefix + group.Name + "/" + name
	node.Status.Conditions = nil // kwok reports them
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: nodeIP(name)},
		{Type: corev1.NodeHostName, Address: name},
	}
	return node
}

// nodeIP derives a stable address in 10.128.0.0/9 from the node name.
func nodeIP(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	v := h.Sum32()
	return net.IPv4(10, byte(128|(v>>16)&0x7f), byte(v>>8), byte(v%254+1)).String()
}

// Instances implements provider.Provider: registered nodes labelled with the group, plus requested ones not
// registered yet.
func (p *Provider) Instances(_ context.Context, group *v1alpha1.NodeGroup) ([]provider.Instance, error) {
	sel := labels.SelectorFromSet(labels.Set{template.LabelNodeGroup: group.Name, KwokLabel: KwokLabelValue})
	nodes, err := p.opts.Nodes.List(sel)
	if err != nil {
		return nil, fmt.Errorf("sim provider: node group %q: list nodes: %w", group.Name, err)
	}
	out := make([]provider.Instance, 0, len(nodes))
	registered := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		registered[n.Name] = true
		state := provider.InstanceRunning
		if n.DeletionTimestamp != nil {
			state = provider.InstanceDeleting
		}
		out = append(out, provider.Instance{ID: n.Spec.ProviderID, NodeName: n.Name, State: state, CreatedAt: n.CreationTimestamp.Time})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, pn := range p.pending {
		if pn.group.Name != group.Name {
			continue
		}
		if registered[name] {
			delete(p.pending, name) // the lister caught up
			continue
		}
		if pn.created && p.opts.Now().Sub(pn.createdOn) > listerGrace {
			delete(p.pending, name) // created, then deleted by someone else before the lister saw it
			continue
		}
		out = append(out, provider.Instance{
			ID: providerPrefix + group.Name + "/" + name, State: provider.InstanceCreating, CreatedAt: pn.createdAt,
		})
	}
	return out, nil
}

// IncreaseSize implements provider.Provider.
func (p *Provider) IncreaseSize(_ context.Context, group *v1alpha1.NodeGroup, delta int) error {
	if delta <= 0 {
		return fmt.Errorf("sim provider: node group %q: increase by %d: delta must be positive", group.Name, delta)
	}
	delay := p.opts.DefaultDelay
	if raw, ok := group.Spec.ProviderRef.Config[ConfigProvisioningDelay]; ok {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 {
			return fmt.Errorf("sim provider: node group %q: providerRef.config.%s: want a non-negative duration, got %q", group.Name, ConfigProvisioningDelay, raw)
		}
		delay = d
	}
	never := false
	if raw, ok := group.Spec.ProviderRef.Config[ConfigFailProvisioning]; ok {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("sim provider: node group %q: providerRef.config.%s: want a boolean, got %q", group.Name, ConfigFailProvisioning, raw)
		}
		never = b
	}
	now := p.opts.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < delta; i++ {
		name := group.Name + "-" + randomSuffix()
		p.pending[name] = &pendingNode{group: group.DeepCopy(), createdAt: now, never: never}
		if !never {
			p.queue.AddAfter(name, delay)
		}
	}
	return nil
}

// DecreaseTargetSize implements provider.TargetDecreaser: it cancels up to delta nodes not created yet.
func (p *Provider) DecreaseTargetSize(_ context.Context, group *v1alpha1.NodeGroup, delta int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, pn := range p.pending {
		if delta == 0 {
			break
		}
		if pn.group.Name == group.Name && !pn.created {
			delete(p.pending, name)
			delta--
		}
	}
	return nil
}

// DeleteNodes implements provider.Provider.
func (p *Provider) DeleteNodes(ctx context.Context, group *v1alpha1.NodeGroup, nodes []*corev1.Node) error {
	for _, n := range nodes {
		if n.Labels[template.LabelNodeGroup] != group.Name {
			return fmt.Errorf("sim provider: node group %q: node %q belongs to group %q", group.Name, n.Name, n.Labels[template.LabelNodeGroup])
		}
		err := p.opts.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("sim provider: node group %q: delete node %q: %w", group.Name, n.Name, err)
		}
		p.opts.Logger.Info("deleted simulated node", zap.String("nodeGroup", group.Name), zap.String("node", n.Name))
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
