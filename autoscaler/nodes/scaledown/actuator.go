package scaledown

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// Event reasons on nodes.
const (
	EventScaleDown       = "ScaleDown"
	EventScaleDownFailed = "ScaleDownFailed"
)

// ActuatorOptions configure NewActuator.
type ActuatorOptions struct {
	Client    kubernetes.Interface
	Providers provider.Registry
	Recorder  record.EventRecorder
	Logger    *zap.Logger
	// DrainTimeout bounds eviction and waiting for pods to go (default 10m, cluster-autoscaler's
	// max-graceful-termination plus margin).
	DrainTimeout time.Duration
	// PollInterval while waiting for evicted pods to disappear (default 1s).
	PollInterval time.Duration
	// OnDone is called after each removal finishes (err nil on success). Optional.
	OnDone func(r Removal, err error)
}

// Actuator removes nodes in the background, one goroutine per node. Safe for concurrent use.
type Actuator struct {
	opts     ActuatorOptions
	mu       sync.Mutex
	inFlight map[string]bool
	wg       sync.WaitGroup
}

// NewActuator returns an Actuator.
func NewActuator(opts ActuatorOptions) *Actuator {
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Actuator{opts: opts, inFlight: map[string]bool{}}
}

// Deleting returns the names of nodes being removed.
func (a *Actuator) Deleting() map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]bool, len(a.inFlight))
	for n := range a.inFlight {
		out[n] = true
	}
	return out
}

// Wait blocks until every started removal has finished.
func (a *Actuator) Wait() { a.wg.Wait() }

// Start removes the nodes in the background: taint and cordon, evict pods, wait for them, delete through the
// provider. A node already being removed is skipped. The removals stop when ctx is cancelled.
func (a *Actuator) Start(ctx context.Context, removals []Removal) {
	for _, r := range removals {
		a.mu.Lock()
		if a.inFlight[r.Node.Name] {
			a.mu.Unlock()
			continue
		}
		a.inFlight[r.Node.Name] = true
		a.mu.Unlock()
		a.wg.Add(1)
		go func(r Removal) {
			defer a.wg.Done()
			err := a.remove(ctx, r)
			a.mu.Lock()
			delete(a.inFlight, r.Node.Name)
			a.mu.Unlock()
			if a.opts.OnDone != nil {
				a.opts.OnDone(r, err)
			}
		}(r)
	}
}

func (a *Actuator) remove(ctx context.Context, r Removal) error {
	log := a.opts.Logger.With(zap.String("nodeGroup", r.Group.Name), zap.String("node", r.Node.Name))
	prov, ok := a.opts.Providers[r.Group.Spec.ProviderRef.Name]
	if !ok {
		return fmt.Errorf("node %q: node group %q: providerRef.name: unknown provider %q", r.Node.Name, r.Group.Name, r.Group.Spec.ProviderRef.Name)
	}
	if err := a.taint(ctx, r.Node.Name, true); err != nil {
		return a.fail(ctx, r, log, fmt.Errorf("node %q: taint: %w", r.Node.Name, err))
	}
	if len(r.Evict) > 0 {
		a.event(r.Node, corev1.EventTypeNormal, EventScaleDown, fmt.Sprintf("node removed by tidal-node-autoscaler: draining %d pods", len(r.Evict)))
		if err := a.drain(ctx, r, log); err != nil {
			return a.fail(ctx, r, log, err)
		}
	}
	if err := prov.DeleteNodes(ctx, r.Group, []*corev1.Node{r.Node}); err != nil {
		return a.fail(ctx, r, log, err)
	}
	a.event(r.Node, corev1.EventTypeNormal, EventScaleDown, "node removed by tidal-node-autoscaler")
	log.Info("scaled down node", zap.Int("evicted", len(r.Evict)))
	return nil
}

func (a *Actuator) fail(ctx context.Context, r Removal, log *zap.Logger, err error) error {
	log.Warn("scale-down failed; untainting node", zap.Error(err))
	a.event(r.Node, corev1.EventTypeWarning, EventScaleDownFailed, err.Error())
	if uerr := a.taint(context.WithoutCancel(ctx), r.Node.Name, false); uerr != nil && !apierrors.IsNotFound(uerr) {
		log.Warn("untaint failed", zap.Error(uerr))
	}
	return err
}

func (a *Actuator) event(node *corev1.Node, typ, reason, msg string) {
	if a.opts.Recorder != nil {
		a.opts.Recorder.Event(node, typ, reason, msg)
	}
}

// taint adds (or removes) the to-be-deleted NoSchedule taint and cordons the node (or undoes both).
func (a *Actuator) taint(ctx context.Context, name string, add bool) error {
	if !add {
		return RemoveTaint(ctx, a.opts.Client, name)
	}
	return updateNode(ctx, a.opts.Client, name, func(n *corev1.Node) *corev1.Node { return withTaint(n, time.Now()) })
}

// RemoveTaint removes the to-be-deleted taint and the autoscaler's cordon from the named node; a node that is
// gone or carries neither is left as it is.
func RemoveTaint(ctx context.Context, client kubernetes.Interface, name string) error {
	return updateNode(ctx, client, name, withoutTaint)
}

// updateNode applies mutate (which returns a changed copy, or nil for no change) to the node, re-reading it on
// conflict.
func updateNode(ctx context.Context, client kubernetes.Interface, name string, mutate func(*corev1.Node) *corev1.Node) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if node = mutate(node); node == nil {
			return nil
		}
		_, err = client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{FieldManager: "tidal-node-autoscaler"})
		return err
	})
}

// withTaint returns a copy of node with the to-be-deleted taint and cordoned, remembering in
// template.AnnotationCordonedByAutoscaler whether it was cordoned before.
func withTaint(node *corev1.Node, now time.Time) *corev1.Node {
	node = node.DeepCopy()
	var taints []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Key != template.TaintToBeDeleted {
			taints = append(taints, t)
		}
	}
	if !HasTaint(node) {
		if node.Annotations == nil {
			node.Annotations = map[string]string{}
		}
		node.Annotations[template.AnnotationCordonedByAutoscaler] = fmt.Sprint(!node.Spec.Unschedulable)
	}
	node.Spec.Taints = append(taints, corev1.Taint{Key: template.TaintToBeDeleted, Value: fmt.Sprint(now.Unix()), Effect: corev1.TaintEffectNoSchedule})
	node.Spec.Unschedulable = true
	return node
}

// withoutTaint returns a copy of node without the to-be-deleted taint, uncordoned unless it was cordoned before the
// autoscaler tainted it; nil when there is nothing to undo.
func withoutTaint(node *corev1.Node) *corev1.Node {
	mark, marked := node.Annotations[template.AnnotationCordonedByAutoscaler]
	if !HasTaint(node) && !marked {
		return nil
	}
	node = node.DeepCopy()
	var taints []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Key != template.TaintToBeDeleted {
			taints = append(taints, t)
		}
	}
	node.Spec.Taints = taints
	if !marked || mark == "true" {
		node.Spec.Unschedulable = false
	}
	delete(node.Annotations, template.AnnotationCordonedByAutoscaler)
	return node
}

// HasTaint reports whether node carries the to-be-deleted taint.
func HasTaint(node *corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == template.TaintToBeDeleted {
			return true
		}
	}
	return false
}

// drain evicts every pod through the Eviction API (retrying while a PDB answers 429) and waits until the pods
// are gone from the node.
func (a *Actuator) drain(ctx context.Context, r Removal, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, a.opts.DrainTimeout)
	defer cancel()
	for _, pod := range r.Evict {
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
		err := wait.PollUntilContextCancel(ctx, a.opts.PollInterval, true, func(ctx context.Context) (bool, error) {
			err := a.opts.Client.PolicyV1().Evictions(pod.Namespace).Evict(ctx, ev)
			switch {
			case err == nil, apierrors.IsNotFound(err):
				return true, nil
			case apierrors.IsTooManyRequests(err):
				log.Debug("eviction blocked by PodDisruptionBudget; retrying", zap.String("pod", pod.Namespace+"/"+pod.Name))
				return false, nil
			default:
				return false, err
			}
		})
		if err != nil {
			return fmt.Errorf("node %q: evict pod %s/%s: %w", r.Node.Name, pod.Namespace, pod.Name, err)
		}
	}
	want := map[string]bool{}
	for _, pod := range r.Evict {
		want[string(pod.UID)] = true
	}
	err := wait.PollUntilContextCancel(ctx, a.opts.PollInterval, true, func(ctx context.Context) (bool, error) {
		list, err := a.opts.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.nodeName", r.Node.Name).String(),
		})
		if err != nil {
			return false, nil // transient; the deadline bounds it
		}
		for i := range list.Items {
			if want[string(list.Items[i].UID)] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("node %q: evicted pods still present after %s", r.Node.Name, a.opts.DrainTimeout)
		}
		return fmt.Errorf("node %q: wait for evicted pods: %w", r.Node.Name, err)
	}
	return nil
}
