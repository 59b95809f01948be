package scaledobject

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/triggerstate"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/scaletarget"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/internal/controller"
)

const (
	kindScaledObject = "ScaledObject"
	// Finalizer lets the operator restore the target and release scalers before the object goes.
	Finalizer = "tidal.dev/scaledobject"
	// LabelScaledObjectName is set on the managed HPA and is the label selector of external metrics (mode hpa).
	LabelScaledObjectName = "scaledobject.tidal.dev/name"
)

// Event reasons (constant, as in sample-controller).
const (
	ReasonScaled            = "Scaled"
	ReasonScaleFailed       = "ScaleFailed"
	ReasonTargetInvalid     = "ScaleTargetInvalid"
	ReasonTriggerInvalid    = triggerstate.ReasonTriggerInvalid
	ReasonTriggerFailing    = "TriggerFailing"
	ReasonPaused            = "Paused"
	ReasonFallback          = "FallbackActive"
	ReasonReady             = "ScaledObjectReady"
	ReasonRestored          = "ReplicasRestored"
	ReasonHPAManaged        = "HPAManaged"
	ReasonSourceUnavailable = "SampleSourceUnavailable"
	// ReasonSecretStoreDegraded: an external secret store could not be read; scaling goes on with the values it
	// returned last, until --secret-store-ttl runs out (then ReasonTriggerInvalid).
	ReasonSecretStoreDegraded = triggerstate.ReasonSecretStoreDegraded
	// ReasonWaiting: some trigger has no sample of the current generation (or no metric spec) yet; replicas are
	// held as they are.
	ReasonWaiting          = "WaitingForSamples"
	retryPermanentProblems = 30 * time.Second
)

// Result tells the runner when to look again without an event.
type Result = controller.Result

// objectState is what the controller remembers of one ScaledObject between reconciles. It is rebuilt from the
// source's snapshot after a restart; the core state (cooldown start, stabilization history, scale events) is
// kept in the status (lastActiveTime, decisionState) and restored before the first decision, so a restart or a
// leader change neither scales a workload to zero early nor cuts a stabilization window short.
type objectState struct {
	reg        triggerstate.State // the registration of its triggers with the source
	triggers   map[int]samples.TriggerState
	core       core.State
	restored   bool // core was loaded from the status
	sampleSeen time.Time
}

func newObjectState() *objectState {
	return &objectState{triggers: map[int]samples.TriggerState{}}
}

func splitKey(key string) (string, string, error) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("bad key %q", key)
}

// Reconcile brings one ScaledObject's target and status in line with its triggers. It is idempotent. With a
// shard, an object owned by another replica is released (its triggers and remembered state dropped) and left
// to its owner; ownership is checked again before every write, and a write refused that way releases the object
// too.
func (c *Controller) Reconcile(ctx context.Context, key string) (Result, error) {
	log := operator.LoggerFrom(ctx)
	ns, name, err := splitKey(key)
	if err != nil {
		log.Error("dropping bad key", zap.Error(err))
		return Result{}, nil
	}
	if err := operator.CheckOwner(c.opts.Shard, ns, name); err != nil {
		c.release(ctx, ns, name)
		return Result{}, nil
	}
	res, err := c.reconcile(ctx, ns, name)
	if errors.Is(err, operator.ErrNotOwner) {
		c.release(ctx, ns, name)
		return Result{}, nil
	}
	return res, err
}

// release forgets an object another replica now owns, logging the hand-over once.
func (c *Controller) release(ctx context.Context, ns, name string) {
	c.mu.Lock()
	_, held := c.objects[ns+"/"+name]
	c.mu.Unlock()
	if held {
		operator.LoggerFrom(ctx).Info("released: owned by another replica")
		c.forget(ctx, ns, name)
	}
}

// mayWrite is checked immediately before every write: ErrNotOwner when the shard moved the object away.
func (c *Controller) mayWrite(so *tidalv1alpha1.ScaledObject) error {
	return operator.CheckOwner(c.opts.Shard, so.Namespace, so.Name)
}

func (c *Controller) reconcile(ctx context.Context, ns, name string) (Result, error) {
	so, err := c.opts.Lister.ScaledObjects(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(ctx, ns, name)
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	if so.DeletionTimestamp != nil {
		return Result{}, c.finalize(ctx, so)
	}
	if !slices.Contains(so.Finalizers, Finalizer) {
		if err := c.mayWrite(so); err != nil {
			return Result{}, err
		}
		so = so.DeepCopy()
		so.Finalizers = append(so.Finalizers, Finalizer)
		if _, err := c.opts.Tidal.TidalV1alpha1().ScaledObjects(ns).Update(ctx, so, metav1.UpdateOptions{FieldManager: operator.FieldManager}); err != nil {
			return Result{}, fmt.Errorf("add finalizer: %w", err)
		}
		return Result{}, nil // the update brings us back
	}

	status := so.Status.DeepCopy()
	target, err := c.opts.Targets.Resolve(ns, so.Spec.ScaleTargetRef)
	if err != nil {
		c.event(so, corev1.EventTypeWarning, ReasonTargetInvalid, err.Error())
		controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonTargetInvalid, err.Error())
		return Result{RequeueAfter: retryPermanentProblems}, c.writeStatus(ctx, so, status)
	}
	status.ScaleTargetKind = target.KindString()
	status.ScaleTargetGVKR = target.GVKR()
	scale, err := c.opts.Targets.GetScale(ctx, target)
	if apierrors.IsNotFound(errors.Unwrap(err)) || apierrors.IsNotFound(err) {
		msg := fmt.Sprintf("spec.scaleTargetRef: %s %q not found", target.GVK.Kind, target.Name)
		controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonTargetInvalid, msg)
		return Result{RequeueAfter: retryPermanentProblems}, c.writeStatus(ctx, so, status)
	}
	if err != nil {
		return Result{}, err
	}
	current := scale.Spec.Replicas
	status.CurrentReplicas = &current
	if status.OriginalReplicaCount == nil {
		orig := current
		status.OriginalReplicaCount = &orig
	}

	st, err := c.ensureTriggers(ctx, so, target)
	if err != nil {
		return Result{}, err
	}
	c.mu.Lock() // st is written by the sample consumer
	fillTriggerStatus(status, so, st)
	c.mu.Unlock()

	// A sample source that cannot be reached (the metrics adapter is down) gives no fresh samples: hold the
	// target where it is, whatever the cooldown says, and say why.
	if h, ok := c.opts.Source.(interface{ Err() error }); ok {
		if err := h.Err(); err != nil {
			controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, ReasonSourceUnavailable,
				"holding replicas: "+err.Error())
			return Result{RequeueAfter: 5 * time.Second}, c.writeStatus(ctx, so, status)
		}
	}

	// Pausing wins over everything else.
	if paused, replicas, perr := pauseOf(so); perr != nil {
		c.event(so, corev1.EventTypeWarning, ReasonPaused, perr.Error())
		controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, "InvalidAnnotation", perr.Error())
		return Result{}, c.writeStatus(ctx, so, status)
	} else if paused {
		return c.reconcilePaused(ctx, so, status, target, current, replicas)
	}
	controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionPaused, metav1.ConditionFalse, "NotPaused", "autoscaling is not paused")
	status.PausedReplicaCount = nil

	if so.Spec.Mode == tidalv1alpha1.ScalingModeHPA {
		return c.reconcileHPAMode(ctx, so, status, target, current, st)
	}
	return c.reconcileDirect(ctx, so, status, target, scale, st)
}

// ensureTriggers (re)registers the object's triggers with the source when its generation changed or its
// secret-store values are due (triggerstate).
func (c *Controller) ensureTriggers(ctx context.Context, so *tidalv1alpha1.ScaledObject, target scaletarget.Target) (*objectState, error) {
	key := so.Namespace + "/" + so.Name
	c.mu.Lock()
	st := c.objects[key]
	if st == nil {
		st = newObjectState()
		c.objects[key] = st
	}
	c.mu.Unlock()
	errs := st.reg.Ensure(ctx, triggerstate.Registration{
		Lock: &c.mu, Generation: so.Generation, Now: c.now(), Source: c.opts.Source,
		Resolve: func(ctx context.Context) (samples.ObjectSpec, error) {
			return triggers.ForScaledObject(ctx, so, c.opts.Targets, c.opts.Resolver, c.log)
		},
		Event: func(reason, msg string) { c.event(so, corev1.EventTypeWarning, reason, msg) },
		Reset: func() { st.triggers = map[int]samples.TriggerState{} },
	})
	for _, e := range errs {
		c.event(so, corev1.EventTypeWarning, ReasonTriggerInvalid, e.Error())
	}
	return st, nil
}

func triggerName(t tidalv1alpha1.ScaleTriggers, i int) string { return triggers.Name(t, i) }

// reconcilePaused applies the paused-replicas annotation, or freezes the target where it is.
func (c *Controller) reconcilePaused(ctx context.Context, so *tidalv1alpha1.ScaledObject, status *tidalv1alpha1.ScaledObjectStatus, target scaletarget.Target, current int32, replicas *int32) (Result, error) {
	msg := "autoscaling is paused"
	if replicas != nil {
		msg = fmt.Sprintf("autoscaling is paused at %d replicas", *replicas)
		status.PausedReplicaCount = replicas
		if current != *replicas {
			if err := c.mayWrite(so); err != nil {
				return Result{}, err
			}
			if _, err := c.opts.Targets.SetReplicas(ctx, target, *replicas); err != nil {
				c.event(so, corev1.EventTypeWarning, ReasonScaleFailed, err.Error())
				return Result{}, err
			}
			c.event(so, corev1.EventTypeNormal, ReasonScaled, fmt.Sprintf("scaled %s from %d to %d: paused-replicas annotation", target.Name, current, *replicas))
			r := *replicas
			status.CurrentReplicas = &r
		}
		status.DesiredReplicas = replicas
	}
	controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionPaused, metav1.ConditionTrue, ReasonPaused, msg)
	controller.SetCondition(&status.Conditions, so.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonReady, "ScaledObject is paused")
	return Result{}, c.writeStatus(ctx, so, status)
}

// forget drops everything the controller and the source hold for a deleted object.
func (c *Controller) forget(ctx context.Context, ns, name string) {
	c.opts.Source.Delete(ctx, samples.Key{Kind: kindScaledObject, Namespace: ns, Name: name})
	c.mu.Lock()
	delete(c.objects, ns+"/"+name)
	c.mu.Unlock()
}

// finalize restores the target when asked, removes the managed HPA, releases scalers, then the finalizer.
func (c *Controller) finalize(ctx context.Context, so *tidalv1alpha1.ScaledObject) error {
	if !slices.Contains(so.Finalizers, Finalizer) {
		c.forget(ctx, so.Namespace, so.Name)
		return nil
	}
	if so.Spec.Advanced != nil && so.Spec.Advanced.RestoreToOriginalReplicaCount && so.Status.OriginalReplicaCount != nil {
		target, err := c.opts.Targets.Resolve(so.Namespace, so.Spec.ScaleTargetRef)
		if err == nil {
			if err := c.mayWrite(so); err != nil {
				return err
			}
			_, err = c.opts.Targets.SetReplicas(ctx, target, *so.Status.OriginalReplicaCount)
			if err != nil && !apierrors.IsNotFound(errors.Unwrap(err)) {
				return fmt.Errorf("restore original replica count: %w", err)
			}
			if err == nil {
				c.event(so, corev1.EventTypeNormal, ReasonRestored, fmt.Sprintf("restored %s to %d replicas", target.Name, *so.Status.OriginalReplicaCount))
			}
		}
	}
	if err := c.deleteHPA(ctx, so); err != nil {
		return err
	}
	c.forget(ctx, so.Namespace, so.Name)
	if err := c.mayWrite(so); err != nil {
		return err
	}
	so = so.DeepCopy()
	so.Finalizers = slices.DeleteFunc(so.Finalizers, func(f string) bool { return f == Finalizer })
	_, err := c.opts.Tidal.TidalV1alpha1().ScaledObjects(so.Namespace).Update(ctx, so, metav1.UpdateOptions{FieldManager: operator.FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (c *Controller) event(so *tidalv1alpha1.ScaledObject, typ, reason, msg string) {
	if c.opts.Recorder != nil {
		c.opts.Recorder.Event(so, typ, reason, msg)
	}
}
