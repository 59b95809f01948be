// Package external serves external.metrics.k8s.io/v1beta1 from the poller's cache: an
// ExternalMetricsProvider for sigs.k8s.io/custom-metrics-apiserver.
//
// A request never calls a scaler. The HPA that the operator creates in mode hpa asks for
// GET /apis/external.metrics.k8s.io/v1beta1/namespaces/NS/<metric>?labelSelector=scaledobject.tidal.dev/name=SO,
// where <metric> is one of the names the object's scalers put in their MetricSpecs (s<index>-<type>-<name>).
// The selector picks the ScaledObject; the answer is the trigger's last sample from the cache. A sample that is
// stale, or whose trigger's latest sample failed, is an error (503): the HPA then keeps the current scale instead
// of acting on an old value — unless the ScaledObject has spec.fallback and the trigger failed failureThreshold
// times in a row: then, as in KEDA, the answer is the value that makes the HPA scale to the fallback replicas.
package external

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	tidallisters "github.com/tidalscale/tidal/api/client/listers/api/v1alpha1"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers"
)

// LabelScaledObjectName is the label selector key that names the ScaledObject of an external metric. It is the
// label the operator puts in the managed HPA's metric selectors (scaledobject.LabelScaledObjectName).
const LabelScaledObjectName = "scaledobject.tidal.dev/name"

// Cache is what the provider reads: *poller.Poller.
type Cache interface {
	// Lookup returns the cached sample of one metric of one object (see poller.Poller.Lookup for the errors).
	Lookup(key samples.Key, metricName string) (scalers.Sample, samples.TriggerState, error)
	// Snapshot returns the state of every object.
	Snapshot() []samples.ObjectState
	// MetricSpecs returns an object's metric specs (the targets fallback values are computed from).
	MetricSpecs(key samples.Key) []autoscalingv2.MetricSpec
}

// Options configures a Provider. Cache is required.
type Options struct {
	Cache Cache
	// Lister, when set, answers selectors that do not name one ScaledObject by equality (for example
	// scaledobject.tidal.dev/name in (a,b), or a selector on the ScaledObject's own labels). Without it such
	// requests are refused as bad requests.
	Lister tidallisters.ScaledObjectLister
	Logger *zap.Logger
	// Metrics receives the provider's collectors; nil registers nothing.
	Metrics prometheus.Registerer
}

// Provider implements provider.ExternalMetricsProvider on top of a Cache.
type Provider struct {
	cache   Cache
	lister  tidallisters.ScaledObjectLister
	log     *zap.Logger
	metrics *metrics
}

var _ provider.ExternalMetricsProvider = (*Provider)(nil)

// New validates opts and builds a Provider.
func New(opts Options) (*Provider, error) {
	if opts.Cache == nil {
		return nil, errors.New("external metrics provider: options: cache is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("external metrics provider: options: metrics: %w", err)
	}
	return &Provider{cache: opts.Cache, lister: opts.Lister, log: opts.Logger, metrics: m}, nil
}

// GetExternalMetric answers one metric for the ScaledObjects the selector picks in namespace, from the cache.
func (p *Provider) GetExternalMetric(_ context.Context, namespace string, selector labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	start := time.Now()
	list, err := p.get(namespace, selector, info.Metric)
	p.metrics.observe(start, err)
	if err != nil {
		p.log.Debug("external metric request failed", zap.String("namespace", namespace),
			zap.String("metric", info.Metric), zap.Stringer("selector", selector), zap.Error(err))
	}
	return list, err
}

func (p *Provider) get(namespace string, selector labels.Selector, metric string) (*external_metrics.ExternalMetricValueList, error) {
	if selector == nil {
		selector = labels.Everything()
	}
	names, err := p.objectNames(namespace, selector)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, notFound(metric, selector)
	}
	list := &external_metrics.ExternalMetricValueList{Items: make([]external_metrics.ExternalMetricValue, 0, len(names))}
	var firstErr error
	for _, name := range names {
		key := samples.Key{Kind: samples.KindScaledObject, Namespace: namespace, Name: name}
		sample, st, err := p.cache.Lookup(key, metric)
		if err != nil && errors.Is(err, poller.ErrSampleFailed) {
			if v, ok := p.fallback(key, metric, st); ok {
				list.Items = append(list.Items, external_metrics.ExternalMetricValue{
					MetricName:   metric,
					MetricLabels: map[string]string{LabelScaledObjectName: name},
					Timestamp:    metav1.NewTime(time.Now()),
					Value:        v,
				})
				continue
			}
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName:   metric,
			MetricLabels: map[string]string{LabelScaledObjectName: name},
			Timestamp:    metav1.NewTime(st.SampledAt),
			Value:        sample.Quantity(),
		})
	}
	if len(list.Items) > 0 {
		return list, nil
	}
	switch {
	case errors.Is(firstErr, poller.ErrStale), errors.Is(firstErr, poller.ErrSampleFailed):
		// The poller's errors name the object, trigger and metric and are already redacted.
		return nil, apierrors.NewServiceUnavailable(firstErr.Error())
	default:
		return nil, notFound(metric, selector)
	}
}

// objectNames returns the ScaledObjects the selector picks. The common case, the operator's own selector
// scaledobject.tidal.dev/name=SO, needs no listing; any other selector is matched against each ScaledObject's
// labels plus scaledobject.tidal.dev/name=<its name>.
func (p *Provider) objectNames(namespace string, selector labels.Selector) ([]string, error) {
	reqs, selectable := selector.Requirements()
	if selectable && len(reqs) == 1 && reqs[0].Key() == LabelScaledObjectName {
		switch reqs[0].Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			return reqs[0].ValuesUnsorted(), nil
		}
	}
	if p.lister == nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("labelSelector: want %s=<ScaledObject name>, got %q",
			LabelScaledObjectName, selector.String()))
	}
	objs, err := p.lister.ScaledObjects(namespace).List(labels.Everything())
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list ScaledObjects in %s: %w", namespace, err))
	}
	var names []string
	for _, so := range objs {
		set := labels.Set{}
		for k, v := range so.Labels {
			set[k] = v
		}
		set[LabelScaledObjectName] = so.Name
		if selector.Matches(set) {
			names = append(names, so.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// fallback returns the value that makes the HPA ask for spec.fallback's replicas once the trigger has failed
// failureThreshold times in a row, as KEDA's adapter does: replicas × the metric's AverageValue target (the HPA
// divides an AverageValue External metric by its target). Value targets have no such value: no fallback.
func (p *Provider) fallback(key samples.Key, metric string, st samples.TriggerState) (resource.Quantity, bool) {
	if p.lister == nil {
		return resource.Quantity{}, false
	}
	so, err := p.lister.ScaledObjects(key.Namespace).Get(key.Name)
	if err != nil || so.Spec.Fallback == nil || st.ConsecutiveFailures < int(so.Spec.Fallback.FailureThreshold) {
		return resource.Quantity{}, false
	}
	fb := so.Spec.Fallback
	replicas := fb.Replicas
	if cur := so.Status.CurrentReplicas; cur != nil {
		switch fb.GetBehavior() {
		case tidalv1alpha1.FallbackBehaviorCurrentReplicas:
			replicas = *cur
		case tidalv1alpha1.FallbackBehaviorCurrentReplicasIfHigher:
			replicas = max(*cur, fb.Replicas)
		case tidalv1alpha1.FallbackBehaviorCurrentReplicasIfLower:
			replicas = min(*cur, fb.Replicas)
		}
	}
	for _, ms := range p.cache.MetricSpecs(key) {
		if ms.External == nil || ms.External.Metric.Name != metric || ms.External.Target.AverageValue == nil {
			continue
		}
		target := ms.External.Target.AverageValue.AsApproximateFloat64()
		return scalers.FloatQuantity(float64(replicas) * target), true
	}
	return resource.Quantity{}, false
}

func notFound(metric string, selector labels.Selector) error {
	return provider.NewMetricNotFoundForSelectorError(external_metrics.Resource("externalmetrics"), metric, "", selector)
}

// ListAllExternalMetrics lists every metric name some object's triggers serve, once each, sorted.
func (p *Provider) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	seen := map[string]struct{}{}
	for _, obj := range p.cache.Snapshot() {
		if obj.Key.Kind != samples.KindScaledObject {
			continue
		}
		for _, t := range obj.Triggers {
			for _, n := range t.MetricNames {
				seen[n] = struct{}{}
			}
		}
	}
	out := make([]provider.ExternalMetricInfo, 0, len(seen))
	for n := range seen {
		out = append(out, provider.ExternalMetricInfo{Metric: n})
	}
	slices.SortFunc(out, func(a, b provider.ExternalMetricInfo) int { return cmp.Compare(a.Metric, b.Metric) })
	return out
}
