package nodes

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/demand"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaleup"
)

// watchDemand wakes the batcher on a new or changed CapacityRequest, as a newly unschedulable pod does: the
// demand signal's point is to act before the pods exist.
func (a *Autoscaler) watchDemand() error {
	_, err := a.tidalInformers.Tidal().V1alpha1().CapacityRequests().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if cr, ok := obj.(*v1alpha1.CapacityRequest); ok && a.sees(cr.Namespace) {
				a.batcher.Trigger()
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v1alpha1.CapacityRequest)
			n, ok2 := newObj.(*v1alpha1.CapacityRequest)
			// A new Burst decision: pods that went Unschedulable before it was written are let onto the virtual
			// node by the next loop.
			if ok1 && ok2 && a.sees(n.Namespace) && (o.Generation != n.Generation || (isBurst(n) && !isBurst(o))) {
				a.batcher.Trigger()
			}
		},
	})
	if err != nil {
		return fmt.Errorf("node autoscaler: capacity request handler: %w", err)
	}
	return nil
}

// announced reports whether an unexpired CapacityRequest already counted pod: it selects the pod and its
// workload has no more pods than the request's replicas. Such a pod going Pending needs no wake-up of its own
// (the request's already did, and its nodes are requested or on their way); without this it would re-open the
// batch window and delay the loop. Pods beyond the announced count wake the loop as usual.
func (a *Autoscaler) announced(pod *corev1.Pod, now time.Time) bool {
	reqs, err := a.tidalInformers.Tidal().V1alpha1().CapacityRequests().Lister().CapacityRequests(pod.Namespace).List(labels.Everything())
	if err != nil || len(reqs) == 0 {
		return false
	}
	for _, cr := range reqs {
		if !now.Before(cr.Spec.ExpiresAt.Time) {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&cr.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		pods, err := a.informers.Core().V1().Pods().Lister().Pods(pod.Namespace).List(sel)
		if err != nil {
			return false
		}
		existing := int32(0)
		for _, p := range pods {
			if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				existing++
			}
		}
		return existing <= cr.Spec.Replicas
	}
	return false
}

func (a *Autoscaler) sees(namespace string) bool {
	return a.cfg.PodNamespace == "" || a.cfg.PodNamespace == namespace
}

// observeDemand builds this loop's simulated demand: CapacityRequests not yet met by pods, and headroom.
func (a *Autoscaler) observeDemand(st *state, pods []*corev1.Pod, now time.Time) (demand.Result, error) {
	all, err := a.tidalInformers.Tidal().V1alpha1().CapacityRequests().Lister().List(labels.Everything())
	if err != nil {
		return demand.Result{}, fmt.Errorf("list capacity requests: %w", err)
	}
	var reqs []*v1alpha1.CapacityRequest
	for _, cr := range all {
		if a.sees(cr.Namespace) {
			reqs = append(reqs, cr)
		}
	}
	res := demand.FromRequests(reqs, pods, now)
	for _, r := range res.Requests {
		if r.Err != "" {
			a.log.Warn("ignoring capacity request", zap.String("capacityRequest", r.Key.String()), zap.String("reason", r.Err))
		}
	}
	for _, gs := range st.groups {
		if p := demand.Headroom(gs.group); p != nil {
			res.Pods = append(res.Pods, p)
		}
	}
	a.metrics.DemandPods.Set(float64(len(res.Pods)))
	return res, nil
}

// countAhead records the nodes a scale-up requested for simulated pods (metric, and each CapacityRequest's share
// for its status) and returns how many of its pods were simulated. A scale-up for real and simulated pods
// together counts its nodes in proportion, rounded up.
func (a *Autoscaler) countAhead(st *state, up scaleup.ScaleUp) int {
	if len(up.Pods) == 0 {
		return 0
	}
	bySource := map[string]int{}
	simulated := 0
	for _, p := range up.Pods {
		if src := demand.Source(p); src != "" {
			bySource[src]++
			simulated++
		}
	}
	if simulated == 0 {
		return 0
	}
	share := func(n int) int { return (up.Delta*n + len(up.Pods) - 1) / len(up.Pods) }
	a.metrics.NodesAhead.WithLabelValues(up.NodeGroup.Name).Add(float64(share(simulated)))
	if st.aheadBy == nil {
		st.aheadBy = map[string]int{}
	}
	for src, n := range bySource {
		st.aheadBy[src] += share(n)
	}
	return simulated
}

// reportDemand writes each CapacityRequest's status: replicas still missing, nodes provisioned ahead.
func (a *Autoscaler) reportDemand(ctx context.Context, st *state) {
	lister := a.tidalInformers.Tidal().V1alpha1().CapacityRequests().Lister()
	for _, r := range st.demand.Requests {
		cr, err := lister.CapacityRequests(r.Key.Namespace).Get(r.Key.Name)
		if err != nil {
			continue // deleted meanwhile
		}
		want := cr.Status.DeepCopy()
		want.MissingReplicas = r.Missing
		want.ProvisionedNodes += int32(st.aheadBy[demand.RequestSource(r.Key)])
		want.ObservedGeneration = cr.Generation
		if d := st.placements[demand.RequestSource(r.Key)]; d != nil {
			want.Placement = d
		}
		if apiequality.Semantic.DeepEqual(want, &cr.Status) {
			continue
		}
		upd := cr.DeepCopy()
		upd.Status = *want
		_, err = a.opts.TidalClient.TidalV1alpha1().CapacityRequests(cr.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{FieldManager: fieldManager})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			a.log.Warn("capacity request status update failed", zap.String("capacityRequest", r.Key.String()), zap.Error(err))
		}
	}
}

func isBurst(cr *v1alpha1.CapacityRequest) bool {
	return cr.Status.Placement != nil && cr.Status.Placement.Decision == v1alpha1.PlacementDecisionBurst
}
