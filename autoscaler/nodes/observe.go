package nodes

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/demand"
	"github.com/tidalscale/tidal/autoscaler/nodes/expander"
	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/provisiontime"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaleup"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
	"github.com/tidalscale/tidal/internal/kubenode"
)

// state is what one loop observed.
type state struct {
	groups     []*groupState
	byName     map[string]*groupState
	byNode     map[string]*groupState // node name → group, from the providers' instances
	pending    []*corev1.Pod
	demand     demand.Result                          // simulated pods of CapacityRequests and headroom
	aheadBy    map[string]int                         // demand.Source → nodes requested for its simulated pods this loop
	burst      []*corev1.Pod                          // pods bound to virtual nodes
	virtual    *corev1.Node                           // the first Ready virtual node, by name; nil when none
	placements map[string]*v1alpha1.PlacementDecision // demand.RequestSource → this loop's decision
	pdbs       []*policyv1.PodDisruptionBudget
	candidates []candidate
	usage      scaleup.Usage
	priorities *expander.Priorities
}

type groupState struct {
	group        *v1alpha1.NodeGroup
	target       int // instances (registered + creating)
	registered   int
	ready        int
	unregistered int
	upcoming     int // creating instances plus registered nodes not ready yet
	backoff      string
	backoffUntil time.Time
	failures     int
	provision    *v1alpha1.ProvisionTimeEstimate // measured provision time; nil before the first sample
	err          string                          // why the group is skipped (invalid spec, provider error)
	nodes        []string
}

type candidate struct {
	node  *corev1.Node
	group *v1alpha1.NodeGroup
}

// observe lists groups, asks providers for instances, handles instances past the max provision time, and fills
// the snapshot with the ready nodes and their pods.
func (a *Autoscaler) observe(ctx context.Context, now time.Time) (*state, error) {
	st := &state{byName: map[string]*groupState{}, byNode: map[string]*groupState{}}
	a.mu.Lock()
	a.seenNow = map[string]time.Time{}
	a.mu.Unlock()
	ngs, err := a.tidalInformers.Tidal().V1alpha1().NodeGroups().Lister().List(a.cfg.NodeGroupSelector)
	if err != nil {
		return nil, fmt.Errorf("list node groups: %w", err)
	}
	sort.Slice(ngs, func(i, j int) bool { return ngs[i].Name < ngs[j].Name })
	for _, p := range a.opts.Providers {
		if r, ok := p.(provider.Refresher); ok {
			if err := r.Refresh(ctx); err != nil {
				a.log.Warn("provider refresh failed", zap.String("provider", p.Name()), zap.Error(err))
			}
		}
	}
	for _, ng := range ngs {
		gs := a.observeGroup(ctx, now, ng)
		st.byName[ng.Name] = gs
		if gs.err == "" {
			st.groups = append(st.groups, gs)
			for _, n := range gs.nodes {
				st.byNode[n] = gs
			}
		}
	}
	a.mu.Lock()
	a.firstSeen, a.seenNow = a.seenNow, map[string]time.Time{} // forget instances no longer creating
	a.mu.Unlock()
	if err := a.fillSnapshot(st); err != nil {
		return nil, err
	}
	pods, err := a.informers.Core().V1().Pods().Lister().List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods {
		// A backfill replacement stands for a pod already running on a virtual node (counted as demand with
		// ScaleUpForBurstPods): counting it too would provision twice for one pod.
		if isUnschedulable(p) && p.Labels[labelBackfillReplacement] == "" {
			st.pending = append(st.pending, p)
		}
	}
	sort.Slice(st.pending, func(i, j int) bool { return st.pending[i].CreationTimestamp.Before(&st.pending[j].CreationTimestamp) })
	if st.demand, err = a.observeDemand(st, pods, now); err != nil {
		return nil, err
	}
	a.metrics.UnschedulablePods.Set(float64(len(st.pending)))
	a.metrics.BurstPods.Set(float64(len(st.burst)))
	if st.pdbs, err = a.informers.Policy().V1().PodDisruptionBudgets().Lister().List(labels.Everything()); err != nil {
		return nil, fmt.Errorf("list pod disruption budgets: %w", err)
	}
	if a.priorityInformers != nil {
		cm, err := a.priorityInformers.Core().V1().ConfigMaps().Lister().ConfigMaps(a.cfg.StatusNamespace).Get(a.cfg.PriorityConfigMap)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("priority ConfigMap %s/%s: %w", a.cfg.StatusNamespace, a.cfg.PriorityConfigMap, err)
		default:
			if st.priorities, err = expander.ParsePriorities(cm.Data); err != nil {
				a.log.Warn("ignoring priority ConfigMap", zap.String("configMap", a.cfg.PriorityConfigMap), zap.Error(err))
			}
		}
	}
	return st, nil
}

func (a *Autoscaler) observeGroup(ctx context.Context, now time.Time, ng *v1alpha1.NodeGroup) *groupState {
	gs := &groupState{group: ng}
	log := a.log.With(zap.String("nodeGroup", ng.Name))
	if errs := ng.Validate(); len(errs) > 0 {
		gs.err = "invalid spec: " + errs.ToAggregate().Error()
		log.Warn("skipping invalid node group", zap.String("reason", gs.err))
		return gs
	}
	prov, ok := a.opts.Providers[ng.Spec.ProviderRef.Name]
	if !ok {
		gs.err = fmt.Sprintf("spec.providerRef.name: provider %q is not configured", ng.Spec.ProviderRef.Name)
		log.Warn("skipping node group", zap.String("reason", gs.err))
		return gs
	}
	instances, err := prov.Instances(ctx, ng)
	if err != nil {
		gs.err = "provider: " + err.Error()
		log.Warn("skipping node group: provider failed", zap.Error(err))
		return gs
	}
	nodes := a.informers.Core().V1().Nodes().Lister()
	var late int
	measured := make([]provisiontime.Instance, 0, len(instances))
	for _, in := range instances {
		gs.target++
		if in.NodeName == "" {
			gs.unregistered++
			gs.upcoming++
			if now.Sub(a.createdAt(ng.Name, in, now)) > a.cfg.MaxNodeProvisionTime {
				late++
			}
			measured = append(measured, provisiontime.Instance{ID: in.ID, CreatedAt: in.CreatedAt})
			continue
		}
		node, err := nodes.Get(in.NodeName)
		if err != nil {
			gs.unregistered++
			gs.upcoming++
			measured = append(measured, provisiontime.Instance{ID: in.ID})
			continue
		}
		gs.registered++
		gs.nodes = append(gs.nodes, node.Name)
		if kubenode.Schedulable(node) {
			gs.ready++
			measured = append(measured, provisiontime.Instance{ID: in.ID, Ready: true, ReadyAt: a.readySince(node)})
		} else {
			gs.upcoming++
			measured = append(measured, provisiontime.Instance{ID: in.ID})
		}
	}
	gs.provision = a.provision.Observe(ng.Name, ng.Status.ProvisionTime, measured, now)
	if late > 0 {
		a.provisionTimeout(ctx, now, gs, prov, late)
	}
	if bs, on := a.backoff.Get(ng.Name, now); on {
		gs.backoff, gs.backoffUntil, gs.failures = bs.Reason, bs.Until, bs.Failures
		a.metrics.NodeGroupBackoff.WithLabelValues(ng.Name).Set(1)
	} else {
		a.metrics.NodeGroupBackoff.WithLabelValues(ng.Name).Set(0)
	}
	return gs
}

// createdAt is the instance's creation time, or when this autoscaler first saw it creating when the provider
// does not say (externalgrpc, clusterapi placeholders).
func (a *Autoscaler) createdAt(group string, in provider.Instance, now time.Time) time.Time {
	if !in.CreatedAt.IsZero() {
		return in.CreatedAt
	}
	key := group + "/" + in.ID
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.firstSeen[key]
	if !ok {
		t = now
	}
	a.seenNow[key] = t
	return t
}

// provisionTimeout backs the group off and, when the provider can, gives up on the late instances.
func (a *Autoscaler) provisionTimeout(ctx context.Context, now time.Time, gs *groupState, prov provider.Provider, late int) {
	ng := gs.group
	reason := fmt.Sprintf("%d node(s) not registered within max-node-provision-time %s", late, a.cfg.MaxNodeProvisionTime)
	bs := a.backoff.Fail(ng.Name, reason, now)
	a.metrics.FailedScaleUps.WithLabelValues(ng.Name, "timeout").Inc()
	a.log.Warn("node group failed to deliver nodes; backing off", zap.String("nodeGroup", ng.Name),
		zap.Int("late", late), zap.Time("until", bs.Until))
	d, ok := prov.(provider.TargetDecreaser)
	if !ok {
		return
	}
	if err := d.DecreaseTargetSize(ctx, ng, late); err != nil {
		a.log.Warn("decrease target size failed", zap.String("nodeGroup", ng.Name), zap.Error(err))
		return
	}
	gs.target -= late
	gs.unregistered -= late
	gs.upcoming -= late
}

// fillSnapshot resets the snapshot to the ready nodes and their pods and finds scale-down candidates.
func (a *Autoscaler) fillSnapshot(st *state) error {
	a.snap.Reset()
	nodes, err := a.informers.Core().V1().Nodes().Lister().List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	pods, err := a.informers.Core().V1().Pods().Lister().List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	for _, n := range nodes {
		if isVirtual(n) {
			// Burst capacity: never a destination in the simulation, but its pods are tracked.
			st.burst = append(st.burst, byNode[n.Name]...)
			if st.virtual == nil && kubenode.Schedulable(n) && n.DeletionTimestamp == nil && !n.Spec.Unschedulable {
				st.virtual = n
			}
			continue
		}
		if !kubenode.Schedulable(n) || n.DeletionTimestamp != nil {
			continue
		}
		if err := a.snap.AddNodeWithPods(n, byNode[n.Name]); err != nil {
			return fmt.Errorf("snapshot: node %q: %w", n.Name, err)
		}
		st.usage.Nodes++
		st.usage.MilliCPU += n.Status.Allocatable.Cpu().MilliValue()
		st.usage.Memory += n.Status.Allocatable.Memory().Value()
		gs := st.byNode[n.Name]
		if gs == nil {
			gs = st.byName[n.Labels[template.LabelNodeGroup]]
		}
		if gs != nil && gs.err == "" {
			st.candidates = append(st.candidates, candidate{node: n, group: gs.group})
		}
	}
	return nil
}

// addUpcoming adds a template node for every upcoming instance, so pending pods they will take do not trigger
// another scale-up.
func (a *Autoscaler) addUpcoming(st *state) error {
	for _, gs := range st.groups {
		for i := 0; i < gs.upcoming; i++ {
			n := template.Node(gs.group, fmt.Sprintf("upcoming-%s-%d", gs.group.Name, i))
			if err := a.snap.AddNode(n); err != nil {
				return fmt.Errorf("snapshot: upcoming node of group %q: %w", gs.group.Name, err)
			}
			st.usage.Nodes++
			st.usage.MilliCPU += n.Status.Allocatable.Cpu().MilliValue()
			st.usage.Memory += n.Status.Allocatable.Memory().Value()
		}
	}
	return nil
}

// Virtual nodes register like AKS's virtual node (virtual-kubelet): label type=virtual-kubelet.
const (
	labelNodeType   = "type"
	nodeTypeVirtual = "virtual-kubelet"
)

func isVirtual(n *corev1.Node) bool { return n.Labels[labelNodeType] == nodeTypeVirtual }

// burstDemand returns the burst pods as pending pods (unbound copies) for the scale-up simulation.
func (st *state) burstDemand() []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(st.burst))
	for _, p := range st.burst {
		if p.DeletionTimestamp != nil {
			continue
		}
		c := p.DeepCopy()
		c.Spec.NodeName = ""
		out = append(out, c)
	}
	return out
}

// isUnschedulable: not bound, not terminating, PodScheduled=False with reason Unschedulable.
func isUnschedulable(p *corev1.Pod) bool {
	if p.Spec.NodeName != "" || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}
