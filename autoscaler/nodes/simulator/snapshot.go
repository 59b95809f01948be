// Package simulator is the glue between the node autoscaler and the kube-scheduler framework: a mutable
// in-memory cluster Snapshot that implements the framework's SharedLister, and a scheduler framework built from
// the real in-tree filter plugins (NodeResourcesFit, TaintToleration, NodeAffinity, NodeName, NodePorts,
// NodeUnschedulable, PodTopologySpread, InterPodAffinity) that decides whether a pod fits a node.
//
// This is the only autoscaler package that imports k8s.io/kubernetes. The Snapshot satisfies
// estimator.Snapshot, so binpacking, scale-up and scale-down planning stay in packages that link fast.
package simulator

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/tidalscale/tidal/autoscaler/nodes/estimator"
)

// errNodeNotFound is wrapped by lookups of unknown nodes.
var errNodeNotFound = errors.New("node not found in snapshot")

// Snapshot is a mutable copy of nodes and their pods. Build it with New, fill it with AddNode/AddPod, then use
// SchedulePod. Not safe for concurrent use.
type Snapshot struct {
	fw     framework.Framework
	logger klog.Logger

	nodes map[string]*framework.NodeInfo
	order []string // insertion order of node names

	listValid     bool
	list          []fwk.NodeInfo
	affinityValid bool
	withAffinity  []fwk.NodeInfo
	withAnti      []fwk.NodeInfo
	withNonHost   []fwk.NodeInfo

	layers [][]undo // one undo log per Fork

	// podInfos caches the scheduler's per-pod precomputation (requests, affinity terms) across Resets, keyed
	// by UID and valid only for the same object pointer: informer caches hand out the same pointer until a pod
	// changes, so refilling the snapshot every loop costs a map lookup per pod, not a resource calculation.
	podInfos map[types.UID]cachedPodInfo
	gen      uint64
}

type cachedPodInfo struct {
	pod *corev1.Pod
	pi  *framework.PodInfo
	gen uint64
}

type undoKind int

const (
	undoAddNode undoKind = iota
	undoRemoveNode
	undoAddPod
)

type undo struct {
	kind  undoKind
	node  string
	index int                 // position in order, for undoRemoveNode
	info  *framework.NodeInfo // for undoRemoveNode
	pod   *corev1.Pod         // for undoAddPod
}

var _ estimator.Snapshot = (*Snapshot)(nil)

// AddNode implements estimator.Snapshot.
func (s *Snapshot) AddNode(node *corev1.Node) error {
	if node == nil || node.Name == "" {
		return errors.New("snapshot: node without a name")
	}
	if _, ok := s.nodes[node.Name]; ok {
		return fmt.Errorf("snapshot: node %q already exists", node.Name)
	}
	ni := framework.NewNodeInfo()
	ni.SetNode(node)
	s.nodes[node.Name] = ni
	s.order = append(s.order, node.Name)
	s.listValid, s.affinityValid = false, false
	s.record(undo{kind: undoAddNode, node: node.Name})
	return nil
}

// RemoveNode implements estimator.Snapshot.
func (s *Snapshot) RemoveNode(name string) error {
	ni, ok := s.nodes[name]
	if !ok {
		return fmt.Errorf("snapshot: remove %q: %w", name, errNodeNotFound)
	}
	idx := s.indexOf(name)
	delete(s.nodes, name)
	s.order = append(s.order[:idx], s.order[idx+1:]...)
	s.listValid, s.affinityValid = false, false
	s.record(undo{kind: undoRemoveNode, node: name, index: idx, info: ni})
	return nil
}

// AddPod implements estimator.Snapshot.
func (s *Snapshot) AddPod(pod *corev1.Pod, nodeName string) error {
	ni, ok := s.nodes[nodeName]
	if !ok {
		return fmt.Errorf("snapshot: add pod %s/%s to %q: %w", pod.Namespace, pod.Name, nodeName, errNodeNotFound)
	}
	pi, err := s.podInfo(pod)
	if err != nil {
		return err
	}
	ni.AddPodInfo(pi)
	if hasPodAffinity(pod) {
		s.affinityValid = false
	}
	s.record(undo{kind: undoAddPod, node: nodeName, pod: pod})
	return nil
}

func (s *Snapshot) podInfo(pod *corev1.Pod) (*framework.PodInfo, error) {
	if c, ok := s.podInfos[pod.UID]; ok && c.pod == pod && pod.UID != "" {
		c.gen = s.gen
		s.podInfos[pod.UID] = c
		return c.pi, nil
	}
	pi, err := framework.NewPodInfo(pod)
	if err != nil {
		return nil, fmt.Errorf("snapshot: pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if pod.UID != "" {
		if s.podInfos == nil {
			s.podInfos = map[types.UID]cachedPodInfo{}
		}
		s.podInfos[pod.UID] = cachedPodInfo{pod: pod, pi: pi, gen: s.gen}
	}
	return pi, nil
}

// removePod takes pod off its node; used by Revert only.
func (s *Snapshot) removePod(pod *corev1.Pod, nodeName string) {
	ni, ok := s.nodes[nodeName]
	if !ok {
		return
	}
	// RemovePod fails only when the pod is not on the node, which Revert's bookkeeping rules out.
	_ = ni.RemovePod(s.logger, pod)
	if hasPodAffinity(pod) {
		s.affinityValid = false
	}
}

// Fork implements estimator.Snapshot.
func (s *Snapshot) Fork() { s.layers = append(s.layers, nil) }

// Revert implements estimator.Snapshot: it undoes every change since the innermost Fork.
func (s *Snapshot) Revert() {
	if len(s.layers) == 0 {
		return
	}
	log := s.layers[len(s.layers)-1]
	s.layers = s.layers[:len(s.layers)-1]
	for i := len(log) - 1; i >= 0; i-- {
		u := log[i]
		switch u.kind {
		case undoAddNode:
			idx := s.indexOf(u.node)
			delete(s.nodes, u.node)
			if idx >= 0 {
				s.order = append(s.order[:idx], s.order[idx+1:]...)
			}
			s.listValid, s.affinityValid = false, false
		case undoRemoveNode:
			s.nodes[u.node] = u.info
			s.order = append(s.order, "")
			copy(s.order[u.index+1:], s.order[u.index:])
			s.order[u.index] = u.node
			s.listValid, s.affinityValid = false, false
		case undoAddPod:
			s.removePod(u.pod, u.node)
		}
	}
}

// Commit implements estimator.Snapshot: the innermost Fork's changes join the layer below (or become
// permanent).
func (s *Snapshot) Commit() {
	if len(s.layers) == 0 {
		return
	}
	log := s.layers[len(s.layers)-1]
	s.layers = s.layers[:len(s.layers)-1]
	if len(s.layers) > 0 {
		s.layers[len(s.layers)-1] = append(s.layers[len(s.layers)-1], log...)
	}
}

func (s *Snapshot) record(u undo) {
	if len(s.layers) == 0 {
		return
	}
	s.layers[len(s.layers)-1] = append(s.layers[len(s.layers)-1], u)
}

func (s *Snapshot) indexOf(name string) int {
	for i, n := range s.order {
		if n == name {
			return i
		}
	}
	return -1
}

// NodeNames returns the node names in insertion order. The slice is the caller's.
func (s *Snapshot) NodeNames() []string { return append([]string(nil), s.order...) }

// PodsOn returns the pods the snapshot has on the named node.
func (s *Snapshot) PodsOn(name string) []*corev1.Pod {
	ni, ok := s.nodes[name]
	if !ok {
		return nil
	}
	out := make([]*corev1.Pod, 0, len(ni.Pods))
	for _, p := range ni.Pods {
		out = append(out, p.GetPod())
	}
	return out
}

// Requested returns the summed requests (milli-CPU, memory bytes) and allocatable of a node.
func (s *Snapshot) Requested(name string) (estimator.NodeUsage, bool) {
	ni, ok := s.nodes[name]
	if !ok {
		return estimator.NodeUsage{}, false
	}
	return estimator.NodeUsage{
		RequestedMilliCPU:   ni.Requested.MilliCPU,
		RequestedMemory:     ni.Requested.Memory,
		AllocatableMilliCPU: ni.Allocatable.MilliCPU,
		AllocatableMemory:   ni.Allocatable.Memory,
		Pods:                len(ni.Pods),
	}, true
}

func hasPodAffinity(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	return a != nil && (a.PodAffinity != nil || a.PodAntiAffinity != nil)
}

// ---- fwk.SharedLister ----

// NodeInfos implements fwk.SharedLister.
func (s *Snapshot) NodeInfos() fwk.NodeInfoLister { return (*nodeInfoLister)(s) }

// StorageInfos implements fwk.SharedLister; the simulation does not track PVC use.
func (s *Snapshot) StorageInfos() fwk.StorageInfoLister { return storageInfos{} }

// PodGroupStates implements fwk.SharedLister; pod groups (gang scheduling) are not simulated.
func (s *Snapshot) PodGroupStates() fwk.PodGroupStateLister { return podGroupStates{} }

// PodGroups implements fwk.SharedLister.
func (s *Snapshot) PodGroups() fwk.PodGroupLister { return podGroups{} }

// CompositePodGroupStates implements fwk.SharedLister.
func (s *Snapshot) CompositePodGroupStates() fwk.CompositePodGroupStateLister {
	return compositePodGroupStates{}
}

// CompositePodGroups implements fwk.SharedLister.
func (s *Snapshot) CompositePodGroups() fwk.CompositePodGroupLister { return compositePodGroups{} }

type nodeInfoLister Snapshot

func (l *nodeInfoLister) List() ([]fwk.NodeInfo, error) {
	s := (*Snapshot)(l)
	if !s.listValid {
		s.list = s.list[:0]
		for _, name := range s.order {
			s.list = append(s.list, s.nodes[name])
		}
		s.listValid = true
	}
	return s.list, nil
}

func (l *nodeInfoLister) refreshAffinity() {
	s := (*Snapshot)(l)
	if s.affinityValid {
		return
	}
	s.withAffinity, s.withAnti, s.withNonHost = s.withAffinity[:0], s.withAnti[:0], s.withNonHost[:0]
	for _, name := range s.order {
		ni := s.nodes[name]
		if len(ni.PodsWithAffinity) > 0 {
			s.withAffinity = append(s.withAffinity, ni)
		}
		if len(ni.PodsWithRequiredAntiAffinity) > 0 {
			s.withAnti = append(s.withAnti, ni)
		}
		if len(ni.PodsWithRequiredNonHostScopedAntiAffinity) > 0 {
			s.withNonHost = append(s.withNonHost, ni)
		}
	}
	s.affinityValid = true
}

func (l *nodeInfoLister) HavePodsWithAffinityList() ([]fwk.NodeInfo, error) {
	l.refreshAffinity()
	return l.withAffinity, nil
}

func (l *nodeInfoLister) HavePodsWithRequiredAntiAffinityList() ([]fwk.NodeInfo, error) {
	l.refreshAffinity()
	return l.withAnti, nil
}

func (l *nodeInfoLister) HavePodsWithRequiredNonHostScopedAntiAffinityList() ([]fwk.NodeInfo, error) {
	l.refreshAffinity()
	return l.withNonHost, nil
}

func (l *nodeInfoLister) Get(name string) (fwk.NodeInfo, error) {
	ni, ok := l.nodes[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, errNodeNotFound)
	}
	return ni, nil
}

type storageInfos struct{}

func (storageInfos) IsPVCUsedByPods(string) bool { return false }

// errNotSimulated answers lookups of scheduling objects the simulation does not model (pod groups).
var errNotSimulated = errors.New("not simulated")

type podGroupStates struct{}

func (podGroupStates) Get(namespace, name string) (fwk.PodGroupState, error) {
	return nil, fmt.Errorf("pod group %s/%s: %w", namespace, name, errNotSimulated)
}

type podGroups struct{}

func (podGroups) Get(namespace, name string) (*schedulingv1beta1.PodGroup, error) {
	return nil, fmt.Errorf("pod group %s/%s: %w", namespace, name, errNotSimulated)
}

type compositePodGroupStates struct{}

func (compositePodGroupStates) Get(namespace, name string) (fwk.CompositePodGroupState, error) {
	return nil, fmt.Errorf("composite pod group %s/%s: %w", namespace, name, errNotSimulated)
}

type compositePodGroups struct{}

func (compositePodGroups) Get(namespace, name string) (*schedulingv1alpha3.CompositePodGroup, error) {
	return nil, fmt.Errorf("composite pod group %s/%s: %w", namespace, name, errNotSimulated)
}

// Reset empties the snapshot (nodes, pods and forks), keeping its scheduler framework for reuse.
func (s *Snapshot) Reset() {
	for uid, c := range s.podInfos {
		if c.gen < s.gen {
			delete(s.podInfos, uid) // not used since the previous Reset
		}
	}
	s.gen++
	s.nodes = map[string]*framework.NodeInfo{}
	s.order = s.order[:0]
	s.layers = nil
	s.listValid, s.affinityValid = false, false
}

// AddNodeWithPods adds a node and its pods without recording undo entries for the pods individually.
func (s *Snapshot) AddNodeWithPods(node *corev1.Node, pods []*corev1.Pod) error {
	if err := s.AddNode(node); err != nil {
		return err
	}
	for _, p := range pods {
		if err := s.AddPod(p, node.Name); err != nil {
			return err
		}
	}
	return nil
}
