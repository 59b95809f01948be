// Package scaledown finds nodes the cluster no longer needs and removes them: the Planner (pure: no client, no
// clock) marks a node unneeded when its utilization is low and its pods fit on the other nodes in the
// simulation, and chooses removals once a node has been unneeded long enough; the Actuator cordons, drains
// through the Eviction API and deletes via the provider.
package scaledown

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/estimator"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// Pod annotations honoured by scale-down (cluster-autoscaler's and Tidal's spelling).
const (
	AnnotationSafeToEvict      = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	AnnotationTidalSafeToEvict = "tidal.dev/safe-to-evict"
)

// Options of the Planner; zero values take cluster-autoscaler's defaults where noted.
type Options struct {
	// UnneededTime a node must stay unneeded before removal (0: the default 10m; negative: none, removed at once).
	UnneededTime time.Duration
	// UtilizationThreshold: nodes whose CPU or memory request ratio is at or above it are needed (default 0.5).
	UtilizationThreshold float64
	// MaxEmptyBulkDelete empty nodes removed per round (default 10).
	MaxEmptyBulkDelete int
	// MaxDrain non-empty nodes removed per round (default 1).
	MaxDrain int
	// MaxNonEmptyCandidates bounds how many nodes with pods are simulated per round (default 30, as
	// cluster-autoscaler's --scale-down-non-empty-candidates-count); nodes already unneeded go first so their
	// timers keep running. Empty nodes are always considered: they cost no simulation.
	MaxNonEmptyCandidates int
	// SkipNodesWithLocalStorage blocks nodes with pods using emptyDir/hostPath (cluster-autoscaler and the
	// command default it to true).
	SkipNodesWithLocalStorage bool
	// SkipNodesWithSystemPods blocks nodes running kube-system pods without a PDB (the command defaults it to
	// true).
	SkipNodesWithSystemPods bool
}

// Candidate is a node of a managed group that scale-down may consider.
type Candidate struct {
	Node  *corev1.Node
	Group *v1alpha1.NodeGroup
	// Pods bound to the node (all of them; the planner skips DaemonSet and mirror pods).
	Pods  []*corev1.Pod
	Usage estimator.NodeUsage
}

// GroupSize is a group's current target and minimum.
type GroupSize struct {
	Target, Min int
}

// Input of one round.
type Input struct {
	Candidates []Candidate
	Sizes      map[string]GroupSize // by group name
	PDBs       []*policyv1.PodDisruptionBudget
	// Deleting nodes are already being removed; they are neither candidates nor destinations.
	Deleting map[string]bool
}

// Removal is one node to remove now.
type Removal struct {
	Node  *corev1.Node
	Group *v1alpha1.NodeGroup
	// Evict are the pods to evict first; empty for an empty node.
	Evict []*corev1.Pod
}

// Plan of one round.
type Plan struct {
	Remove []Removal
	// Unneeded node names with the time they became unneeded.
	Unneeded map[string]time.Time
	// Blocked says why candidates are needed, by node name.
	Blocked map[string]string
}

// Planner keeps the unneeded-since times between rounds. Not safe for concurrent use.
type Planner struct {
	opts  Options
	since map[string]time.Time
}

// NewPlanner returns a Planner with defaults applied.
func NewPlanner(opts Options) *Planner {
	if opts.UnneededTime == 0 {
		opts.UnneededTime = 10 * time.Minute
	}
	if opts.UtilizationThreshold <= 0 {
		opts.UtilizationThreshold = 0.5
	}
	if opts.MaxEmptyBulkDelete <= 0 {
		opts.MaxEmptyBulkDelete = 10
	}
	if opts.MaxDrain <= 0 {
		opts.MaxDrain = 1
	}
	if opts.MaxNonEmptyCandidates <= 0 {
		opts.MaxNonEmptyCandidates = 30
	}
	return &Planner{opts: opts, since: map[string]time.Time{}}
}

// Reset forgets every unneeded-since time (after a scale-up, as cluster-autoscaler does).
func (p *Planner) Reset() { p.since = map[string]time.Time{} }

// Plan decides which candidates are unneeded and which of those to remove at now. snap must hold every node and
// pod; Plan leaves it as it found it.
func (p *Planner) Plan(ctx context.Context, snap estimator.Snapshot, now time.Time, in Input) (Plan, error) {
	plan := Plan{Unneeded: map[string]time.Time{}, Blocked: map[string]string{}}
	cands := append([]Candidate(nil), in.Candidates...)
	sort.SliceStable(cands, func(i, j int) bool {
		_, ui := p.since[cands[i].Node.Name]
		_, uj := p.since[cands[j].Node.Name]
		if ui != uj {
			return ui // already unneeded first
		}
		return cands[i].Usage.Utilization() < cands[j].Usage.Utilization()
	})
	nonEmpty := 0
	hint := map[string]string{} // equivalence key → where the last such pod went
	pdbs := newPDBTracker(in.PDBs)
	exclude := map[string]bool{}
	for n := range in.Deleting {
		exclude[n] = true
	}
	snap.Fork()
	defer snap.Revert()
	var unneeded []Candidate
	var unneededKeep []string
	evictions := map[string][]*corev1.Pod{}
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return plan, err
		}
		name := c.Node.Name
		if in.Deleting[name] {
			continue
		}
		if template.ScaleDownDisabled(c.Node) {
			plan.Blocked[name] = "scale-down disabled by annotation"
			continue
		}
		if u := c.Usage.Utilization(); u >= p.opts.UtilizationThreshold {
			plan.Blocked[name] = fmt.Sprintf("utilization %.2f at or above threshold %.2f", u, p.opts.UtilizationThreshold)
			continue
		}
		toMove, reason := p.podsToMove(c.Pods, pdbs)
		if reason != "" {
			plan.Blocked[name] = reason
			continue
		}
		if len(toMove) > 0 {
			if nonEmpty >= p.opts.MaxNonEmptyCandidates {
				plan.Blocked[name] = "not simulated this round (non-empty candidate limit)"
				if since, ok := p.since[name]; ok {
					plan.Unneeded[name] = since // keep its timer; it was unneeded and nothing says otherwise
					unneededKeep = append(unneededKeep, name)
				}
				continue
			}
			nonEmpty++
		}
		if !pdbs.allows(bound(toMove)) {
			plan.Blocked[name] = "a PodDisruptionBudget does not allow evicting its pods"
			continue
		}
		snap.Fork()
		if err := snap.RemoveNode(name); err != nil {
			snap.Revert()
			return plan, fmt.Errorf("node %q: %w", name, err)
		}
		exclude[name] = true
		ok := true
		for _, pod := range toMove {
			moved := pod.DeepCopy()
			moved.Spec.NodeName = ""
			key := estimator.EquivalenceKey(pod)
			dest, err := snap.SchedulePod(ctx, moved, estimator.ScheduleOptions{Exclude: exclude, Hint: hint[key]})
			if err == nil {
				hint[key] = dest
			}
			if err != nil {
				if _, nf := err.(*estimator.NoFitError); !nf {
					snap.Revert()
					return plan, fmt.Errorf("node %q: move pod %s/%s: %w", name, pod.Namespace, pod.Name, err)
				}
				plan.Blocked[name] = fmt.Sprintf("pod %s/%s fits no other node", pod.Namespace, pod.Name)
				ok = false
				break
			}
		}
		if !ok {
			snap.Revert()
			exclude[name] = false
			continue
		}
		snap.Commit()
		pdbs.take(bound(toMove))
		unneeded = append(unneeded, c)
		// Pods the simulation placed here (pending pods, Spec.NodeName empty) moved in the simulation only.
		var evict []*corev1.Pod
		for _, pod := range toMove {
			if pod.Spec.NodeName == name {
				evict = append(evict, pod)
			}
		}
		evictions[name] = evict
	}
	next := map[string]time.Time{}
	for _, n := range unneededKeep {
		next[n] = p.since[n]
	}
	for _, c := range unneeded {
		since, ok := p.since[c.Node.Name]
		if !ok {
			since = now
		}
		next[c.Node.Name] = since
		plan.Unneeded[c.Node.Name] = since
	}
	p.since = next
	p.chooseRemovals(&plan, now, unneeded, evictions, in.Sizes)
	return plan, nil
}

func (p *Planner) chooseRemovals(plan *Plan, now time.Time, unneeded []Candidate, evictions map[string][]*corev1.Pod, sizes map[string]GroupSize) {
	budget := map[string]int{}
	for g, s := range sizes {
		budget[g] = s.Target - s.Min
	}
	empty, drains := 0, 0
	for _, c := range unneeded {
		if now.Sub(p.since[c.Node.Name]) < p.opts.UnneededTime {
			continue
		}
		g := c.Group.Name
		if budget[g] <= 0 {
			plan.Blocked[c.Node.Name] = "node group at minimum size"
			continue
		}
		pods := evictions[c.Node.Name]
		if len(pods) == 0 {
			if empty >= p.opts.MaxEmptyBulkDelete {
				continue
			}
			empty++
		} else {
			if drains >= p.opts.MaxDrain {
				continue
			}
			drains++
		}
		budget[g]--
		plan.Remove = append(plan.Remove, Removal{Node: c.Node, Group: c.Group, Evict: pods})
	}
}

// podsToMove returns the pods that must move off a node, or why the node cannot be drained. Pods the
// simulation placed (pending, Spec.NodeName empty) always move and are not checked: nothing runs yet.
func (p *Planner) podsToMove(pods []*corev1.Pod, pdbs *pdbTracker) ([]*corev1.Pod, string) {
	var out []*corev1.Pod
	for _, pod := range pods {
		if pod.Spec.NodeName == "" {
			out = append(out, pod)
			continue
		}
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || pod.DeletionTimestamp != nil {
			continue
		}
		if isMirror(pod) || isDaemonSet(pod) {
			continue
		}
		id := pod.Namespace + "/" + pod.Name
		safe := pod.Annotations[AnnotationSafeToEvict]
		if v, ok := pod.Annotations[AnnotationTidalSafeToEvict]; ok {
			safe = v
		}
		switch safe {
		case "false":
			return nil, "pod " + id + " is annotated safe-to-evict=false"
		case "true":
			out = append(out, pod)
			continue
		}
		if metav1.GetControllerOf(pod) == nil {
			return nil, "pod " + id + " has no controller"
		}
		if p.opts.SkipNodesWithLocalStorage && hasLocalStorage(pod) {
			return nil, "pod " + id + " uses local storage"
		}
		if p.opts.SkipNodesWithSystemPods && pod.Namespace == metav1.NamespaceSystem && !pdbs.covers(pod) {
			return nil, "kube-system pod " + id + " has no PodDisruptionBudget"
		}
		out = append(out, pod)
	}
	return out, ""
}

// bound keeps the pods that run on a node (not placed by the simulation).
func bound(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			out = append(out, p)
		}
	}
	return out
}

func isMirror(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

func isDaemonSet(pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.Kind == "DaemonSet"
}

func hasLocalStorage(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil || (v.EmptyDir != nil && v.EmptyDir.Medium != corev1.StorageMediumMemory) {
			return true
		}
	}
	return false
}

// pdbTracker counts disruptions still allowed per PDB during one round.
type pdbTracker struct {
	pdbs    []*policyv1.PodDisruptionBudget
	sel     []labels.Selector
	allowed []int32
}

func newPDBTracker(pdbs []*policyv1.PodDisruptionBudget) *pdbTracker {
	t := &pdbTracker{}
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || pdb.Spec.Selector == nil {
			continue // an invalid PDB protects nothing in the API server either
		}
		t.pdbs = append(t.pdbs, pdb)
		t.sel = append(t.sel, sel)
		t.allowed = append(t.allowed, pdb.Status.DisruptionsAllowed)
	}
	return t
}

func (t *pdbTracker) matches(i int, pod *corev1.Pod) bool {
	return t.pdbs[i].Namespace == pod.Namespace && t.sel[i].Matches(labels.Set(pod.Labels))
}

func (t *pdbTracker) covers(pod *corev1.Pod) bool {
	for i := range t.pdbs {
		if t.matches(i, pod) {
			return true
		}
	}
	return false
}

func (t *pdbTracker) allows(pods []*corev1.Pod) bool {
	need := make([]int32, len(t.pdbs))
	for _, pod := range pods {
		for i := range t.pdbs {
			if t.matches(i, pod) {
				need[i]++
				if need[i] > t.allowed[i] {
					return false
				}
			}
		}
	}
	return true
}

func (t *pdbTracker) take(pods []*corev1.Pod) {
	for _, pod := range pods {
		for i := range t.pdbs {
			if t.matches(i, pod) {
				t.allowed[i]--
			}
		}
	}
}
