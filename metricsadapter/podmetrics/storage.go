// Package podmetrics serves metrics.k8s.io/v1beta1 (PodMetrics, NodeMetrics) for pods on simulated nodes
// (kwok) and virtual nodes, so a plain autoscaling/v2 HPA on CPU or memory utilization works in the dev cluster
// and in benchmarks. Pods on virtual nodes whose backend measures real usage (containerd, process; see
// ScrapeOptions) get it from their kubelet's /metrics/resource, scraped on an interval as metrics-server does.
// Other pods get simulated usage: the pod annotation tidal.dev/sim-usage, or a fraction of the containers'
// requests. Pods on other nodes are not served: a real metrics-server owns them.
package podmetrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/metrics/pkg/apis/metrics"
)

// Defaults of Options.
const (
	// DefaultFraction of requests is the usage of a pod without the annotation.
	DefaultFraction = 0.5
	// DefaultWindow is the reported collection window. Simulated usage is instantaneous; a short window lets the
	// HPA use a pod's metric soon after it became Ready.
	DefaultWindow = time.Second
)

// DefaultNodeSelector picks kwok's simulated nodes and virtual-kubelet nodes.
func DefaultNodeSelector() labels.Selector {
	s, _ := labels.Parse("type in (kwok,virtual-kubelet)")
	return s
}

// Options configures the metrics.k8s.io storage. Pods and Nodes are required.
type Options struct {
	Pods  corev1listers.PodLister
	Nodes corev1listers.NodeLister
	// NodeSelector picks the nodes whose pods are served; DefaultNodeSelector when nil.
	NodeSelector labels.Selector
	// Fraction of requests used when a pod has no annotation; DefaultFraction when zero.
	Fraction float64
	// Window is the reported window; DefaultWindow when zero.
	Window time.Duration
	// Scrape, when set, reads real usage from the kubelets of some served nodes.
	Scrape *ScrapeOptions
	// Now stamps the metrics; time.Now when nil.
	Now    func() time.Time
	Logger *zap.Logger
}

// source computes metrics from the listers and the scraper; the two REST storages share it.
type source struct {
	opts    Options
	scraper *scraper // nil: every pod is simulated
}

func newSource(opts Options) (*source, error) {
	if opts.Pods == nil || opts.Nodes == nil {
		return nil, errors.New("podmetrics: options: pod and node listers are required")
	}
	if opts.Fraction < 0 {
		return nil, fmt.Errorf("podmetrics: options: fraction: want >= 0, got %v", opts.Fraction)
	}
	if opts.NodeSelector == nil {
		opts.NodeSelector = DefaultNodeSelector()
	}
	if opts.Fraction == 0 {
		opts.Fraction = DefaultFraction
	}
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	src := &source{opts: opts}
	if opts.Scrape != nil {
		var err error
		if src.scraper, err = newScraper(*opts.Scrape, opts.Nodes, opts.Logger.Named("scrape"), opts.Now); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// servedNode returns the pod's node when it is served.
func (s *source) servedNode(name string) (*corev1.Node, bool) {
	if name == "" {
		return nil, false
	}
	n, err := s.opts.Nodes.Get(name)
	if err != nil || !s.opts.NodeSelector.Matches(labels.Set(n.Labels)) {
		return nil, false
	}
	return n, true
}

// podMetrics returns the pod's metrics, or false when the pod is not served: not running on a served node, or
// measured by the scraper but without a rate yet.
func (s *source) podMetrics(pod *corev1.Pod, now time.Time) (metrics.PodMetrics, bool) {
	if pod.Status.Phase != corev1.PodRunning {
		return metrics.PodMetrics{}, false
	}
	node, ok := s.servedNode(pod.Spec.NodeName)
	if !ok {
		return metrics.PodMetrics{}, false
	}
	if s.scraper != nil {
		if usage, measured := s.scraper.podUsage(node, pod); measured {
			if usage == nil {
				return metrics.PodMetrics{}, false
			}
			return measuredMetrics(pod, usage), true
		}
	}
	usage, err := PodUsage(pod, s.opts.Fraction)
	if err != nil {
		s.opts.Logger.Warn("invalid simulated usage, using the default", zap.String("pod", pod.Namespace+"/"+pod.Name), zap.Error(err))
	}
	pm := metrics.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels,
			CreationTimestamp: metav1.NewTime(now),
		},
		Timestamp:  metav1.NewTime(now),
		Window:     metav1.Duration{Duration: s.opts.Window},
		Containers: make([]metrics.ContainerMetrics, len(usage)),
	}
	for i, u := range usage {
		pm.Containers[i] = metrics.ContainerMetrics{Name: u.Name, Usage: u.Usage}
	}
	return pm, true
}

// measuredMetrics is the PodMetrics of a pod from its containers' measured usage, in the pod's container order.
// The window and timestamp are the first container's (one scrape measures them all).
func measuredMetrics(pod *corev1.Pod, usage map[string]containerUsage) metrics.PodMetrics {
	first := usage[pod.Spec.Containers[0].Name]
	pm := metrics.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels,
			CreationTimestamp: metav1.NewTime(first.Time),
		},
		Timestamp:  metav1.NewTime(first.Time),
		Window:     metav1.Duration{Duration: first.Window},
		Containers: make([]metrics.ContainerMetrics, len(pod.Spec.Containers)),
	}
	for i, c := range pod.Spec.Containers {
		pm.Containers[i] = metrics.ContainerMetrics{Name: c.Name, Usage: usage[c.Name].Usage}
	}
	return pm
}

// nodeMetrics sums the usage of the served pods bound to node.
func (s *source) nodeMetrics(node *corev1.Node, pods []*corev1.Pod, now time.Time) metrics.NodeMetrics {
	total := corev1.ResourceList{}
	for _, res := range usageResources {
		total[res] = quantity(res, 0)
	}
	for _, pod := range pods {
		if pod.Spec.NodeName != node.Name {
			continue
		}
		pm, ok := s.podMetrics(pod, now)
		if !ok {
			continue
		}
		for _, c := range pm.Containers {
			for res, q := range c.Usage {
				t := total[res]
				t.Add(q)
				total[res] = t
			}
		}
	}
	return metrics.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: node.Labels, CreationTimestamp: metav1.NewTime(now)},
		Timestamp:  metav1.NewTime(now),
		Window:     metav1.Duration{Duration: s.opts.Window},
		Usage:      total,
	}
}

// selectors extracts the label and field selectors of a list request.
func selectors(options *metainternalversion.ListOptions) (labels.Selector, fields.Selector) {
	ls, fs := labels.Everything(), fields.Everything()
	if options != nil {
		if options.LabelSelector != nil {
			ls = options.LabelSelector
		}
		if options.FieldSelector != nil {
			fs = options.FieldSelector
		}
	}
	return ls, fs
}

// podStorage is the REST storage of pods.metrics.k8s.io.
type podStorage struct {
	src *source
	rest.TableConvertor
}

var (
	_ rest.Storage              = (*podStorage)(nil)
	_ rest.Getter               = (*podStorage)(nil)
	_ rest.Lister               = (*podStorage)(nil)
	_ rest.Scoper               = (*podStorage)(nil)
	_ rest.KindProvider         = (*podStorage)(nil)
	_ rest.SingularNameProvider = (*podStorage)(nil)
)

func (s *podStorage) New() runtime.Object     { return &metrics.PodMetrics{} }
func (s *podStorage) NewList() runtime.Object { return &metrics.PodMetricsList{} }
func (s *podStorage) Destroy()                {}
func (s *podStorage) Kind() string            { return "PodMetrics" }
func (s *podStorage) NamespaceScoped() bool   { return true }
func (s *podStorage) GetSingularName() string { return "pod" }

// Get returns one pod's metrics; a pod not served is NotFound.
func (s *podStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ns := genericapirequest.NamespaceValue(ctx)
	pod, err := s.src.opts.Pods.Pods(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, apierrors.NewInternalError(fmt.Errorf("get pod %s/%s: %w", ns, name, err))
	}
	if err == nil {
		if pm, ok := s.src.podMetrics(pod, s.src.opts.Now()); ok {
			return &pm, nil
		}
	}
	return nil, apierrors.NewNotFound(metrics.Resource("pods"), name)
}

// List returns the metrics of the served pods matching the selectors, in one namespace or all.
func (s *podStorage) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	ls, fs := selectors(options)
	ns := genericapirequest.NamespaceValue(ctx)
	var pods []*corev1.Pod
	var err error
	if ns == "" {
		pods, err = s.src.opts.Pods.List(ls)
	} else {
		pods, err = s.src.opts.Pods.Pods(ns).List(ls)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list pods: %w", err))
	}
	now := s.src.opts.Now()
	list := &metrics.PodMetricsList{}
	for _, pod := range pods {
		if !fs.Matches(fields.Set{"metadata.name": pod.Name, "metadata.namespace": pod.Namespace}) {
			continue
		}
		if pm, ok := s.src.podMetrics(pod, now); ok {
			list.Items = append(list.Items, pm)
		}
	}
	return list, nil
}

// nodeStorage is the REST storage of nodes.metrics.k8s.io.
type nodeStorage struct {
	src *source
	rest.TableConvertor
}

var (
	_ rest.Storage              = (*nodeStorage)(nil)
	_ rest.Getter               = (*nodeStorage)(nil)
	_ rest.Lister               = (*nodeStorage)(nil)
	_ rest.Scoper               = (*nodeStorage)(nil)
	_ rest.KindProvider         = (*nodeStorage)(nil)
	_ rest.SingularNameProvider = (*nodeStorage)(nil)
)

func (s *nodeStorage) New() runtime.Object     { return &metrics.NodeMetrics{} }
func (s *nodeStorage) NewList() runtime.Object { return &metrics.NodeMetricsList{} }
func (s *nodeStorage) Destroy()                {}
func (s *nodeStorage) Kind() string            { return "NodeMetrics" }
func (s *nodeStorage) NamespaceScoped() bool   { return false }
func (s *nodeStorage) GetSingularName() string { return "node" }

// Get returns one served node's metrics.
func (s *nodeStorage) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	node, err := s.src.opts.Nodes.Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !s.src.opts.NodeSelector.Matches(labels.Set(node.Labels))) {
		return nil, apierrors.NewNotFound(metrics.Resource("nodes"), name)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("get node %s: %w", name, err))
	}
	pods, err := s.src.opts.Pods.List(labels.Everything())
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list pods: %w", err))
	}
	nm := s.src.nodeMetrics(node, pods, s.src.opts.Now())
	return &nm, nil
}

// List returns the metrics of the served nodes matching the selectors.
func (s *nodeStorage) List(_ context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	ls, fs := selectors(options)
	nodes, err := s.src.opts.Nodes.List(ls)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list nodes: %w", err))
	}
	pods, err := s.src.opts.Pods.List(labels.Everything())
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list pods: %w", err))
	}
	now := s.src.opts.Now()
	list := &metrics.NodeMetricsList{}
	for _, node := range nodes {
		if !s.src.opts.NodeSelector.Matches(labels.Set(node.Labels)) || !fs.Matches(fields.Set{"metadata.name": node.Name}) {
			continue
		}
		list.Items = append(list.Items, s.src.nodeMetrics(node, pods, now))
	}
	return list, nil
}
