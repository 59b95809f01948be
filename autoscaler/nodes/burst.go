package nodes

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/demand"
	"github.com/tidalscale/tidal/autoscaler/nodes/placement"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaleup"
)

// labelBackfillReplacement marks the virtual node's backfill replacements (virtualnode/backfill): they must reach
// a real node, never get the virtual node's toleration.
const labelBackfillReplacement = "tidal.dev/backfill-for"

// place makes the burst-or-wait decision (docs/placement.md) for each unexpired CapacityRequest with
// spec.placement whose pods this loop's scale-up provisions nodes for, and lets the unschedulable pods of
// requests decided Burst onto the virtual node. Decisions go to the requests' status in reportDemand.
func (a *Autoscaler) place(ctx context.Context, now time.Time, st *state, plan scaleup.Plan) {
	a.virtualStart.Observe(st.burst)
	reqs, err := a.tidalInformers.Tidal().V1alpha1().CapacityRequests().Lister().List(labels.Everything())
	if err != nil {
		return
	}
	for _, cr := range reqs {
		if !a.sees(cr.Namespace) || cr.Spec.Placement == nil || !now.Before(cr.Spec.ExpiresAt.Time) || cr.DeletionTimestamp != nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&cr.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		key := demand.RequestSource(types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name})
		decision := cr.Status.Placement.DeepCopy()
		g := groupFor(plan, key, cr.Namespace, sel)
		if g == nil && decision != nil && hasPending(st, cr.Namespace, sel) {
			// Pods still wait for the nodes decided on: decide again (a virtual node may have come, an estimate
			// changed).
			if gs := st.byName[decision.NodeGroup]; gs != nil {
				g = gs.group
			}
		}
		if g != nil {
			d := placement.Decide(placement.Inputs{
				Policy: *cr.Spec.Placement, NodeGroup: g, NodeProvision: st.byName[g.Name].provisionOrNil(),
				Virtual: st.virtual, VirtualStart: a.virtualStart.Estimate(),
			}, now)
			if decision == nil || decision.Decision != d.Decision || decision.NodeGroup != d.NodeGroup {
				a.log.Info("placement decided", zap.String("capacityRequest", cr.Namespace+"/"+cr.Name),
					zap.String("decision", string(d.Decision)), zap.String("reason", d.Reason))
				a.placementEvent(cr, &d)
				decision = &d
			}
		}
		if decision == nil {
			continue
		}
		burst := map[types.UID]bool{}
		if decision.Decision == v1alpha1.PlacementDecisionBurst && st.virtual != nil {
			for _, p := range st.pending {
				if p.Namespace != cr.Namespace || !sel.Matches(labels.Set(p.Labels)) || !burstable(p) {
					continue
				}
				if _, busy := a.bursting.LoadOrStore(p.UID, struct{}{}); busy {
					continue // the pod handler is on it
				}
				err := a.letOntoVirtual(ctx, p, decision.DecidedAt.Time)
				a.bursting.Delete(p.UID)
				if err != nil {
					a.log.Warn("burst to the virtual node failed", zap.String("pod", p.Namespace+"/"+p.Name), zap.Error(err))
					continue
				}
				burst[p.UID] = true
				a.podEvent(now, p, corev1.EventTypeNormal, EventBurstToVirtual, "given the virtual node toleration: "+decision.Reason)
			}
		}
		// BurstPods: the workload's pods that carry the burst mark now (pending or on the virtual node).
		decision.BurstPods = 0
		if pods, err := a.informers.Core().V1().Pods().Lister().Pods(cr.Namespace).List(sel); err == nil {
			for _, p := range pods {
				if p.Annotations[placement.AnnotationBurst] != "" && !burst[p.UID] && p.DeletionTimestamp == nil {
					decision.BurstPods++
				}
			}
		}
		decision.BurstPods += int32(len(burst))
		if st.placements == nil {
			st.placements = map[string]*v1alpha1.PlacementDecision{}
		}
		st.placements[key] = decision
	}
}

// Event reasons of placement.
const (
	// EventPlacementDecided on the CapacityRequest and its owner (the ScaledObject or ScaledJob).
	EventPlacementDecided = "PlacementDecided"
	// EventBurstToVirtual on a pod given the virtual node's toleration.
	EventBurstToVirtual = "BurstToVirtual"
)

// placementEvent records a new decision on the request and on its owner, so `kubectl describe` of the scaler
// object shows it.
func (a *Autoscaler) placementEvent(cr *v1alpha1.CapacityRequest, d *v1alpha1.PlacementDecision) {
	if a.opts.Recorder == nil {
		return
	}
	msg := fmt.Sprintf("%s for CapacityRequest %s (node group %s): %s", d.Decision, cr.Name, d.NodeGroup, d.Reason)
	a.opts.Recorder.Event(&corev1.ObjectReference{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "CapacityRequest",
		Name: cr.Name, Namespace: cr.Namespace, UID: cr.UID}, corev1.EventTypeNormal, EventPlacementDecided, msg)
	for _, o := range cr.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			a.opts.Recorder.Event(&corev1.ObjectReference{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, Namespace: cr.Namespace, UID: o.UID},
				corev1.EventTypeNormal, EventPlacementDecided, msg)
		}
	}
}

// groupFor is the group whose new nodes the plan gives the request's pods (its simulated pods, or real pods its
// selector matches); nil when the plan provisions nothing for them.
func groupFor(plan scaleup.Plan, source, namespace string, sel labels.Selector) *v1alpha1.NodeGroup {
	for _, up := range plan.ScaleUps {
		for _, p := range up.Pods {
			src := demand.Source(p)
			if src == source || (src == "" && p.Namespace == namespace && sel.Matches(labels.Set(p.Labels))) {
				return up.NodeGroup
			}
		}
	}
	return nil
}

// hasPending: some real pod the selector matches is unschedulable.
func hasPending(st *state, namespace string, sel labels.Selector) bool {
	for _, p := range st.pending {
		if p.Namespace == namespace && sel.Matches(labels.Set(p.Labels)) {
			return true
		}
	}
	return false
}

func (gs *groupState) provisionOrNil() *v1alpha1.ProvisionTimeEstimate {
	if gs == nil {
		return nil
	}
	return gs.provision
}

// burstable: a real, unschedulable pod that does not tolerate virtual nodes yet, was not let on before and is not
// a backfill replacement.
func burstable(p *corev1.Pod) bool {
	return demand.Source(p) == "" && p.Labels[labelBackfillReplacement] == "" && p.Annotations[placement.AnnotationBurst] == "" &&
		isUnschedulable(p) && !placement.Tolerates(p)
}

// unschedulable handles a pod that just went Unschedulable: a pod of a request decided Burst is let onto the
// virtual node at once; otherwise it wakes the loop unless an unexpired request already announced it.
func (a *Autoscaler) unschedulable(p *corev1.Pod) {
	if p.Labels[labelBackfillReplacement] != "" {
		return // see observe: never demand of its own
	}
	now := time.Now()
	if cr := a.burstRequest(p, now); cr != nil && burstable(p) {
		if _, busy := a.bursting.LoadOrStore(p.UID, struct{}{}); busy {
			return
		}
		go func() {
			defer a.bursting.Delete(p.UID)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := a.letOntoVirtual(ctx, p, cr.Status.Placement.DecidedAt.Time); err != nil {
				a.log.Warn("burst to the virtual node failed", zap.String("pod", p.Namespace+"/"+p.Name), zap.Error(err))
				a.batcher.Trigger() // the loop retries
				return
			}
			a.podEvent(time.Now(), p, corev1.EventTypeNormal, EventBurstToVirtual, "given the virtual node toleration: "+cr.Status.Placement.Reason)
		}()
		return
	}
	if !a.announced(p, now) {
		a.batcher.Trigger()
	}
}

// burstRequest is the unexpired CapacityRequest decided Burst that selects pod, nil when none.
func (a *Autoscaler) burstRequest(pod *corev1.Pod, now time.Time) *v1alpha1.CapacityRequest {
	reqs, err := a.tidalInformers.Tidal().V1alpha1().CapacityRequests().Lister().CapacityRequests(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	for _, cr := range reqs {
		if cr.Status.Placement == nil || cr.Status.Placement.Decision != v1alpha1.PlacementDecisionBurst || !now.Before(cr.Spec.ExpiresAt.Time) {
			continue
		}
		if sel, err := metav1.LabelSelectorAsSelector(&cr.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			return cr
		}
	}
	return nil
}

// letOntoVirtual adds the virtual nodes' toleration to a pending pod (Kubernetes allows adding tolerations to a
// pod) and marks it with AnnotationBurst; the scheduler then places it on the virtual node, the only node with
// room. The workload's template is untouched, so nothing rolls out, and the virtual node's backfill later
// replaces the pod with one from the template on a real node.
func (a *Autoscaler) letOntoVirtual(ctx context.Context, p *corev1.Pod, decidedAt time.Time) error {
	var ops []map[string]any
	if len(p.Spec.Tolerations) == 0 {
		ops = append(ops, map[string]any{"op": "add", "path": "/spec/tolerations", "value": []corev1.Toleration{placement.Toleration()}})
	} else {
		ops = append(ops, map[string]any{"op": "add", "path": "/spec/tolerations/-", "value": placement.Toleration()})
	}
	stamp := decidedAt.UTC().Format(time.RFC3339)
	if p.Annotations == nil {
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{placement.AnnotationBurst: stamp}})
	} else {
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations/tidal.dev~1burst", "value": stamp})
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	_, err = a.opts.Client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.JSONPatchType, body, metav1.PatchOptions{FieldManager: fieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("add the virtual node toleration: %w", err)
	}
	return nil
}
