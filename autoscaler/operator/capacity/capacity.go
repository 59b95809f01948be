// Package capacity publishes the demand signal: when a scaler decides a workload needs more replicas, it writes
// (before it writes /scale or creates Jobs) a CapacityRequest saying how many pods of which scheduling shape are
// coming, so the node autoscaler can grow node groups before those pods exist. One request per scaler object,
// owned by it, refreshed on each scale-up decision and expiring after a TTL.
package capacity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelpers "k8s.io/component-helpers/resource"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/api/v1alpha1"
)

// DefaultTTL is how long a request counts after its last refresh: long enough for the pods to be created and
// go Pending (after which they count as themselves), short enough that a decision nobody acted on does not hold
// nodes for long.
const DefaultTTL = 2 * time.Minute

// LabelOwnerKind on a CapacityRequest names the kind of the scaler that wrote it.
const LabelOwnerKind = "tidal.dev/capacity-request-owner-kind"

// Publisher writes CapacityRequests. A nil *Publisher publishes nothing (the operator's --capacity-requests=false).
type Publisher struct {
	client       tidalclient.Interface
	ttl          time.Duration
	now          func() time.Time
	fieldManager string
	written      prometheus.Counter
}

// Options configure a Publisher.
type Options struct {
	Client tidalclient.Interface
	// TTL of a request after each refresh (DefaultTTL when 0).
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now          func() time.Time
	FieldManager string
	// Registerer receives tidal_operator_capacity_requests_written_total; nil skips registration.
	Registerer prometheus.Registerer
}

// New builds a Publisher.
func New(opts Options) *Publisher {
	p := &Publisher{client: opts.Client, ttl: opts.TTL, now: opts.Now, fieldManager: opts.FieldManager,
		written: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tidal", Subsystem: "operator", Name: "capacity_requests_written_total",
			Help: "CapacityRequests created or updated ahead of a scale-up (the demand signal for the node autoscaler)."})}
	if p.ttl <= 0 {
		p.ttl = DefaultTTL
	}
	if p.now == nil {
		p.now = time.Now
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(p.written)
	}
	return p
}

// Request is one workload's expected demand.
type Request struct {
	// Owner is the scaler object (ScaledObject, ScaledJob, HorizontalPodAutoscaler); the request lives in its
	// namespace and is named after it.
	Owner     metav1.Object
	OwnerKind string
	// OwnerRef references Owner (a controller reference for the objects the operator owns, a plain one for an
	// HPA it does not).
	OwnerRef metav1.OwnerReference
	// Replicas the workload is about to have.
	Replicas int32
	// Selector of the workload's pods, in label-selector syntax (the /scale status.selector).
	Selector string
	// Template is the pod template of one replica.
	Template *corev1.PodTemplateSpec
	// Placement is the workload's effective placement (burst or wait, docs/placement.md): the scaler object's
	// spec.placement, else the workload's placement annotations (v1alpha1.ResolvePlacement); nil when unset.
	Placement *v1alpha1.Placement
}

// Name is the CapacityRequest's name for a scaler object: "<kind>-<name>" in lower case, hashed when too long.
func Name(kind, name string) string {
	n := strings.ToLower(kind) + "-" + name
	if len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:253-17] + "-" + hex.EncodeToString(sum[:8])
}

// Shape is the scheduling shape of one replica of tmpl: requests as the scheduler counts them (init containers,
// sidecars and pod overhead included), node selector, tolerations, affinity and topology spread.
func Shape(tmpl *corev1.PodTemplateSpec) v1alpha1.CapacityRequestPod {
	pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
	reqs := resourcehelpers.PodRequests(pod, resourcehelpers.PodResourcesOptions{})
	return v1alpha1.CapacityRequestPod{
		Labels:                    pod.Labels,
		Requests:                  reqs,
		NodeSelector:              pod.Spec.NodeSelector,
		Tolerations:               pod.Spec.Tolerations,
		Affinity:                  pod.Spec.Affinity,
		TopologySpreadConstraints: pod.Spec.TopologySpreadConstraints,
	}
}

// Publish creates or refreshes the owner's CapacityRequest. It is a no-op on a nil Publisher, and for a workload
// without a pod template or selector (nothing the node autoscaler could simulate or deduplicate).
func (p *Publisher) Publish(ctx context.Context, r Request) error {
	_, err := p.PublishNamed(ctx, r)
	return err
}

// PublishNamed is Publish that also returns the request's name ("" when nothing was published).
func (p *Publisher) PublishNamed(ctx context.Context, r Request) (string, error) {
	if p == nil || r.Template == nil || r.Selector == "" {
		return "", nil
	}
	err := p.publish(ctx, r)
	if err != nil {
		return "", err
	}
	return Name(r.OwnerKind, r.Owner.GetName()), nil
}

func (p *Publisher) publish(ctx context.Context, r Request) error {
	sel, err := metav1.ParseToLabelSelector(r.Selector)
	if err != nil {
		return fmt.Errorf("capacity request: selector %q: %w", r.Selector, err)
	}
	ns := r.Owner.GetNamespace()
	want := &v1alpha1.CapacityRequest{
		ObjectMeta: metav1.ObjectMeta{
			Name: Name(r.OwnerKind, r.Owner.GetName()), Namespace: ns,
			Labels:          map[string]string{LabelOwnerKind: r.OwnerKind, "app.kubernetes.io/managed-by": "tidal-operator"},
			OwnerReferences: []metav1.OwnerReference{r.OwnerRef},
		},
		Spec: v1alpha1.CapacityRequestSpec{
			Replicas:  r.Replicas,
			Selector:  *sel,
			Pod:       Shape(r.Template),
			ExpiresAt: metav1.NewTime(p.now().Add(p.ttl).Truncate(time.Second)),
			Placement: r.Placement.DeepCopy(),
		},
	}
	crs := p.client.TidalV1alpha1().CapacityRequests(ns)
	got, err := crs.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := crs.Create(ctx, want, metav1.CreateOptions{FieldManager: p.fieldManager}); err != nil {
			return fmt.Errorf("create capacity request %s/%s: %w", ns, want.Name, err)
		}
		p.written.Inc()
		return nil
	}
	if err != nil {
		return fmt.Errorf("get capacity request %s/%s: %w", ns, want.Name, err)
	}
	if apiequality.Semantic.DeepEqual(got.Spec, want.Spec) {
		return nil
	}
	upd := got.DeepCopy()
	upd.Spec = want.Spec
	upd.Labels = want.Labels
	upd.OwnerReferences = want.OwnerReferences
	if _, err := crs.Update(ctx, upd, metav1.UpdateOptions{FieldManager: p.fieldManager}); err != nil {
		return fmt.Errorf("update capacity request %s/%s: %w", ns, want.Name, err)
	}
	p.written.Inc()
	return nil
}
