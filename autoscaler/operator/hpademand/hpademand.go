// Package hpademand publishes the demand signal for HorizontalPodAutoscalers, the operator's own (ScaledObject
// mode hpa) and those it does not own: when an HPA's status.desiredReplicas rises above its currentReplicas, it
// writes the target's CapacityRequest (autoscaler/operator/capacity), owned by the HPA. The HPA controller has
// already written /scale by then, so the request leads the pods by the ReplicaSet and scheduler's reaction time
// rather than the whole chain; it still reaches the node autoscaler before the pods go Pending.
package hpademand

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	"k8s.io/client-go/tools/cache"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/internal/controller"
)

const kindHPA = "HorizontalPodAutoscaler"

// Options wire a Controller; all but Shard and Logger are required.
type Options struct {
	Informer cache.SharedIndexInformer // HorizontalPodAutoscalers (autoscaling/v2)
	Lister   autoscalinglisters.HorizontalPodAutoscalerLister
	Targets  *scaletarget.Client
	Capacity *capacity.Publisher
	Logger   *zap.Logger
	Metrics  *operator.Metrics
	// Shard, when set, limits this replica to the HPAs it owns.
	Shard operator.Shard
}

// Controller publishes CapacityRequests for HPA scale-ups.
type Controller struct {
	opts   Options
	runner *controller.Runner
}

// New builds a Controller and registers its informer handler: only a rise of desiredReplicas above
// currentReplicas is worth a reconcile.
func New(opts Options) (*Controller, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Controller{opts: opts}
	var err error
	c.runner, err = controller.New(controller.Options{
		Name: "hpademand", Kind: kindHPA, Reconcile: c.Reconcile,
		Synced: []cache.InformerSynced{opts.Informer.HasSynced}, Logger: opts.Logger.Named("hpademand"), Metrics: opts.Metrics.Runtime(),
	})
	if err != nil {
		return nil, err
	}
	_, err = opts.Informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler); ok && scalingUp(h) {
				c.runner.EnqueueObject(obj)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*autoscalingv2.HorizontalPodAutoscaler)
			n, ok2 := newObj.(*autoscalingv2.HorizontalPodAutoscaler)
			if ok1 && ok2 && scalingUp(n) && o.Status.DesiredReplicas != n.Status.DesiredReplicas {
				c.runner.EnqueueObject(newObj)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("hpa informer: %w", err)
	}
	return c, nil
}

func scalingUp(h *autoscalingv2.HorizontalPodAutoscaler) bool {
	return h.Status.DesiredReplicas > h.Status.CurrentReplicas
}

// Run runs the workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error { return c.runner.Run(ctx, workers) }

// Reconcile publishes the CapacityRequest of one HPA that is scaling up. A target without /scale selector or pod
// template is skipped (nothing to simulate); a missing target is the HPA's own problem, reported by it.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return controller.Result{}, nil
	}
	if err := operator.CheckOwner(c.opts.Shard, ns, name); err != nil {
		return controller.Result{}, nil //nolint:nilerr // another replica publishes for it
	}
	h, err := c.opts.Lister.HorizontalPodAutoscalers(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	if !scalingUp(h) {
		return controller.Result{}, nil
	}
	ref := h.Spec.ScaleTargetRef
	target, err := c.opts.Targets.Resolve(ns, tidalv1alpha1.ScaleTarget{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name})
	if err != nil {
		return controller.Result{}, nil //nolint:nilerr // the HPA reports its unresolvable target itself
	}
	scale, err := c.opts.Targets.GetScale(ctx, target)
	if apierrors.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	tmpl, err := c.opts.Targets.PodTemplate(ctx, target)
	if err != nil {
		return controller.Result{}, err
	}
	gvk := autoscalingv2.SchemeGroupVersion.WithKind(kindHPA)
	return controller.Result{}, c.opts.Capacity.Publish(ctx, capacity.Request{
		Owner: h, OwnerKind: kindHPA,
		OwnerRef: metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: h.Name, UID: h.UID},
		Replicas: h.Status.DesiredReplicas, Selector: scale.Status.Selector, Template: tmpl,
	})
}
