// Package backfill moves burst pods from the virtual node back to real nodes once those have room, without
// ever dropping below the desired ready count.
//
// For a Ready pod on the virtual node owned by a ReplicaSet, it creates a replacement from the ReplicaSet's
// template that cannot land on a virtual node and does not match the ReplicaSet's selector (no
// pod-template-hash label, so the ReplicaSet ignores it). Once the replacement is Ready on a real node, the
// virtual pod gets the lowest pod-deletion-cost and the replacement is handed to the ReplicaSet (label and
// controller reference). The ReplicaSet now has one pod too many and deletes the cheapest one: the virtual pod.
// At no point are fewer pods Ready than before. A replacement that cannot be scheduled (no room on real nodes)
// is deleted at once, so it never makes the node autoscaler add capacity, and that ReplicaSet is left alone for
// a while.
//
// PodDisruptionBudgets are respected: the virtual pod is given up only when every budget that selects it allows
// a disruption (status.disruptionsAllowed ≥ 1, counted with the Ready replacement, which carries the pod's
// labels), as the eviction API would require. Until then the Ready replacement waits.
//
// Knob: tidal-virtual-node --backfill (off by default), --backfill-interval, --backfill-ready-timeout; a pod
// template annotated tidal.dev/backfill: "false" is never moved.
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Labels and annotations backfill reads and writes.
const (
	AnnotationBackfill  = "tidal.dev/backfill"     // "false" on a pod (template) opts out
	LabelReplacementFor = "tidal.dev/backfill-for" // on a replacement: the virtual pod's name
	// AnnotationReplacementNode on a replacement names the virtual node whose backfill made it: with several
	// virtual nodes, each backfill handles only its own replacements.
	AnnotationReplacementNode = "tidal.dev/backfill-node"
	AnnotationDeletionCost    = "controller.kubernetes.io/pod-deletion-cost"
	labelPodTemplateHash      = "pod-template-hash"
	labelNodeType             = "type"
	nodeTypeVirtual           = "virtual-kubelet"
	fieldManager              = "tidal-backfill"
	defaultMaxInFlight        = 5
	unschedulableCooldownIv   = 4 // intervals a ReplicaSet is left alone after its replacement found no room
)

// Options configure a Backfiller.
type Options struct {
	Client kubernetes.Interface
	// NodeName is the virtual node to drain.
	NodeName string
	// Interval between passes (default 15s).
	Interval time.Duration
	// ReadyTimeout is how long a scheduled replacement may take to become Ready (default 2m).
	ReadyTimeout time.Duration
	// MaxInFlight bounds concurrent replacements (default 5).
	MaxInFlight int
	Logger      *zap.Logger
}

// Backfiller moves pods back from the virtual node. Use New, then Run.
type Backfiller struct {
	opts Options
	log  *zap.Logger

	mu      sync.Mutex
	backoff map[types.UID]time.Time // ReplicaSet → not before
}

// New validates opts.
func New(opts Options) (*Backfiller, error) {
	if opts.Client == nil {
		return nil, errors.New("backfill: Client: must be set")
	}
	if opts.NodeName == "" {
		return nil, errors.New("backfill: NodeName: must be set")
	}
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = defaultMaxInFlight
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Backfiller{opts: opts, log: opts.Logger.With(zap.String("node", opts.NodeName)), backoff: map[types.UID]time.Time{}}, nil
}

// Run makes a pass every Interval until ctx is done.
func (b *Backfiller) Run(ctx context.Context) {
	t := time.NewTicker(b.opts.Interval)
	defer t.Stop()
	for {
		if _, err := b.RunOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			b.log.Warn("backfill pass", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Result counts what one pass did.
type Result struct {
	Created, Handed, Abandoned int
	// Blocked counts Ready replacements held back by a PodDisruptionBudget.
	Blocked int
}

// RunOnce makes one pass at now.
func (b *Backfiller) RunOnce(ctx context.Context, now time.Time) (Result, error) {
	var res Result
	pods := b.opts.Client.CoreV1().Pods(metav1.NamespaceAll)
	virtual, err := pods.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", b.opts.NodeName).String()})
	if err != nil {
		return res, fmt.Errorf("list pods on %s: %w", b.opts.NodeName, err)
	}
	repl, err := pods.List(ctx, metav1.ListOptions{LabelSelector: LabelReplacementFor})
	if err != nil {
		return res, fmt.Errorf("list replacement pods: %w", err)
	}
	byName := map[types.NamespacedName]*corev1.Pod{}
	for i := range virtual.Items {
		p := &virtual.Items[i]
		byName[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = p
	}
	replaced := map[types.NamespacedName]bool{}
	inFlight := 0
	var errs []error
	for i := range repl.Items {
		r := &repl.Items[i]
		target := types.NamespacedName{Namespace: r.Namespace, Name: r.Labels[LabelReplacementFor]}
		vp, ok := byName[target]
		if node := r.Annotations[AnnotationReplacementNode]; node != b.opts.NodeName && (node != "" || !ok) {
			continue // another virtual node's
		}
		replaced[target] = true
		switch {
		case !ok || vp.DeletionTimestamp != nil:
			errs = append(errs, b.abandon(ctx, r, "the virtual pod is gone"))
			res.Abandoned++
		case unschedulable(r):
			b.coolDown(controllerOf(vp), now)
			errs = append(errs, b.abandon(ctx, r, "no room on real nodes"))
			res.Abandoned++
		case ready(r):
			if pdb, err := b.blockingBudget(ctx, vp); err != nil || pdb != "" {
				if err != nil {
					errs = append(errs, err)
				} else {
					b.log.Debug("replacement waits for a disruption budget", zap.String("pod", vp.Namespace+"/"+vp.Name), zap.String("pdb", pdb))
				}
				res.Blocked++
				inFlight++
				continue
			}
			if err := b.handOver(ctx, vp, r); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Handed++
		case now.Sub(r.CreationTimestamp.Time) > b.opts.ReadyTimeout:
			b.coolDown(controllerOf(vp), now)
			errs = append(errs, b.abandon(ctx, r, "not Ready within the ready timeout"))
			res.Abandoned++
		default:
			inFlight++
		}
	}
	for i := range virtual.Items {
		if inFlight >= b.opts.MaxInFlight {
			break
		}
		vp := &virtual.Items[i]
		owner := controllerOf(vp)
		if replaced[types.NamespacedName{Namespace: vp.Namespace, Name: vp.Name}] || !movable(vp) || owner == nil || b.coolingDown(owner.UID, now) {
			continue
		}
		if err := b.createReplacement(ctx, vp, owner); err != nil {
			errs = append(errs, err)
			continue
		}
		inFlight++
		res.Created++
	}
	return res, errors.Join(errs...)
}

// blockingBudget names a PodDisruptionBudget that selects vp and allows no disruption now ("" when none does).
func (b *Backfiller) blockingBudget(ctx context.Context, vp *corev1.Pod) (string, error) {
	pdbs, err := b.opts.Client.PolicyV1().PodDisruptionBudgets(vp.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list pod disruption budgets in %s: %w", vp.Namespace, err)
	}
	for i := range pdbs.Items {
		pdb := &pdbs.Items[i]
		if pdb.Spec.Selector == nil {
			continue // selects no pod (policy/v1); an empty selector selects them all
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(vp.Labels)) {
			continue
		}
		if pdb.Status.ObservedGeneration < pdb.Generation || pdb.Status.DisruptionsAllowed < 1 {
			return pdb.Name, nil
		}
	}
	return "", nil
}

func controllerOf(p *corev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" {
		return nil
	}
	return ref
}

func movable(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && ready(p) && p.Annotations[AnnotationBackfill] != "false" && p.Labels[labelPodTemplateHash] != ""
}

func ready(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

func (b *Backfiller) coolDown(owner *metav1.OwnerReference, now time.Time) {
	if owner == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backoff[owner.UID] = now.Add(unschedulableCooldownIv * b.opts.Interval)
}

func (b *Backfiller) coolingDown(uid types.UID, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.Before(b.backoff[uid])
}

// createReplacement creates a pod from the owner ReplicaSet's template that must run on a real node.
func (b *Backfiller) createReplacement(ctx context.Context, vp *corev1.Pod, owner *metav1.OwnerReference) error {
	rs, err := b.opts.Client.AppsV1().ReplicaSets(vp.Namespace).Get(ctx, owner.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("replicaset %s/%s: %w", vp.Namespace, owner.Name, err)
	}
	if rs.UID != owner.UID || rs.Spec.Template.Annotations[AnnotationBackfill] == "false" {
		return nil
	}
	pod := replacementFor(vp, rs)
	created, err := b.opts.Client.CoreV1().Pods(vp.Namespace).Create(ctx, pod, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("create replacement for pod %s/%s: %w", vp.Namespace, vp.Name, err)
	}
	b.log.Info("replacement created", zap.String("pod", vp.Namespace+"/"+vp.Name), zap.String("replacement", created.Name))
	return nil
}

// replacementFor builds the replacement of vp from rs's template.
func replacementFor(vp *corev1.Pod, rs *appsv1.ReplicaSet) *corev1.Pod {
	tmpl := rs.Spec.Template.DeepCopy()
	labels := maps.Clone(tmpl.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	delete(labels, labelPodTemplateHash)
	labels[LabelReplacementFor] = vp.Name
	annotations := maps.Clone(tmpl.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationReplacementNode] = vp.Spec.NodeName
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: vp.Name + "-bf-", Namespace: vp.Namespace, Labels: labels, Annotations: annotations},
		Spec:       tmpl.Spec,
	}
	notVirtual := corev1.NodeSelectorRequirement{Key: labelNodeType, Operator: corev1.NodeSelectorOpNotIn, Values: []string{nodeTypeVirtual}}
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &corev1.Affinity{}
	}
	if pod.Spec.Affinity.NodeAffinity == nil {
		pod.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := pod.Spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil || len(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) == 0 {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}}
	}
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for i := range terms {
		terms[i].MatchExpressions = append(terms[i].MatchExpressions, notVirtual)
	}
	return pod
}

// handOver makes the ReplicaSet delete vp in favour of the Ready replacement r.
func (b *Backfiller) handOver(ctx context.Context, vp, r *corev1.Pod) error {
	owner := controllerOf(vp)
	if owner == nil {
		return b.abandon(ctx, r, "the virtual pod has no ReplicaSet")
	}
	pods := b.opts.Client.CoreV1().Pods(vp.Namespace)
	cost, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		AnnotationDeletionCost: strconv.Itoa(math.MinInt32)}}})
	if err != nil {
		return err
	}
	if _, err := pods.Patch(ctx, vp.Name, types.MergePatchType, cost, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("pod %s/%s: set %s: %w", vp.Namespace, vp.Name, AnnotationDeletionCost, err)
	}
	adopt, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":          map[string]any{LabelReplacementFor: nil, labelPodTemplateHash: vp.Labels[labelPodTemplateHash]},
		"annotations":     map[string]any{AnnotationReplacementNode: nil},
		"ownerReferences": []metav1.OwnerReference{*owner},
		"resourceVersion": r.ResourceVersion,
	}})
	if err != nil {
		return err
	}
	if _, err := pods.Patch(ctx, r.Name, types.MergePatchType, adopt, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("pod %s/%s: hand to replicaset %s: %w", r.Namespace, r.Name, owner.Name, err)
	}
	b.log.Info("replacement handed to its ReplicaSet", zap.String("pod", vp.Namespace+"/"+vp.Name), zap.String("replacement", r.Name),
		zap.String("replicaSet", owner.Name))
	return nil
}

func (b *Backfiller) abandon(ctx context.Context, r *corev1.Pod, why string) error {
	err := b.opts.Client.CoreV1().Pods(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(r.UID))})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete replacement %s/%s (%s): %w", r.Namespace, r.Name, why, err)
	}
	b.log.Info("replacement abandoned", zap.String("replacement", r.Namespace+"/"+r.Name), zap.String("why", why))
	return nil
}
