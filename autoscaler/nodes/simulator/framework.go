package simulator

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/latest"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultbinder"
	plfeature "k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/interpodaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodename"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeports"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/noderesources"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeunschedulable"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/podtopologyspread"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/queuesort"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/tainttoleration"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedmetrics "k8s.io/kubernetes/pkg/scheduler/metrics"

	"github.com/tidalscale/tidal/autoscaler/nodes/estimator"
)

// FilterPlugins are the scheduler filter plugins the simulation runs, in order. They are the scheduler's own
// code: a pod the simulation places on a node passes exactly the checks kube-scheduler would make for these.
// Volume plugins (VolumeBinding, VolumeZone, NodeVolumeLimits) and DRA are not simulated.
var FilterPlugins = []string{
	names.NodeUnschedulable,
	names.NodeName,
	names.TaintToleration,
	names.NodeAffinity,
	names.NodePorts,
	names.NodeResourcesFit,
	names.PodTopologySpread,
	names.InterPodAffinity,
}

// Options configure New.
type Options struct {
	// InformerFactory gives the plugins that need them their listers: namespaces (InterPodAffinity namespace
	// selectors) and services/replica sets/stateful sets (PodTopologySpread system defaults). The caller starts
	// it. Nil uses an empty fake clientset, which is right for benchmarks and pure simulations.
	InformerFactory informers.SharedInformerFactory
	// Logger for the framework (klog API). Zero value discards.
	Logger klog.Logger
}

// New returns an empty Snapshot with its own scheduler framework. Informers the framework needs are registered
// on opts.InformerFactory during New, so start the factory after New.
func New(ctx context.Context, opts Options) (*Snapshot, error) {
	s := &Snapshot{nodes: map[string]*framework.NodeInfo{}, logger: opts.Logger}
	if s.logger.GetSink() == nil {
		s.logger = klog.Background().V(10)
	}
	factory := opts.InformerFactory
	if factory == nil {
		factory = informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	}
	profile, err := simulationProfile()
	if err != nil {
		return nil, err
	}
	// The framework instruments plugins with the scheduler's metric vectors; Register creates them once per
	// process (in the scheduler's own legacy registry, not ours).
	schedmetrics.Register()
	fts := plfeature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate)
	registry := frameworkruntime.Registry{
		names.PrioritySort:      queuesort.New,
		names.DefaultBinder:     defaultbinder.New,
		names.NodeUnschedulable: frameworkruntime.FactoryAdapter(fts, nodeunschedulable.New),
		names.NodeName:          frameworkruntime.FactoryAdapter(fts, nodename.New),
		names.TaintToleration:   frameworkruntime.FactoryAdapter(fts, tainttoleration.New),
		names.NodeAffinity:      frameworkruntime.FactoryAdapter(fts, nodeaffinity.New),
		names.NodePorts:         frameworkruntime.FactoryAdapter(fts, nodeports.New),
		names.NodeResourcesFit:  frameworkruntime.FactoryAdapter(fts, noderesources.NewFit),
		names.PodTopologySpread: frameworkruntime.FactoryAdapter(fts, podtopologyspread.New),
		names.InterPodAffinity:  frameworkruntime.FactoryAdapter(fts, interpodaffinity.New),
	}
	fw, err := frameworkruntime.NewFramework(klog.NewContext(ctx, s.logger), registry, profile,
		frameworkruntime.WithInformerFactory(factory),
		frameworkruntime.WithSnapshotSharedLister(s),
		frameworkruntime.WithLogger(s.logger),
	)
	if err != nil {
		return nil, fmt.Errorf("simulator: scheduler framework: %w", err)
	}
	s.fw = fw
	return s, nil
}

// simulationProfile is the scheduler's default profile (so plugin args are the defaults kube-scheduler uses)
// with only the simulation's filter plugins enabled at PreFilter and Filter.
func simulationProfile() (*config.KubeSchedulerProfile, error) {
	cfg, err := latest.Default()
	if err != nil {
		return nil, fmt.Errorf("simulator: default scheduler config: %w", err)
	}
	if len(cfg.Profiles) == 0 {
		return nil, errors.New("simulator: default scheduler config has no profile")
	}
	profile := cfg.Profiles[0]
	set := config.PluginSet{}
	for _, name := range FilterPlugins {
		set.Enabled = append(set.Enabled, config.Plugin{Name: name})
	}
	profile.Plugins = &config.Plugins{
		QueueSort: config.PluginSet{Enabled: []config.Plugin{{Name: names.PrioritySort}}},
		PreFilter: set,
		Filter:    set,
		Bind:      config.PluginSet{Enabled: []config.Plugin{{Name: names.DefaultBinder}}},
	}
	return &profile, nil
}

// SchedulePod implements estimator.Snapshot with the framework's PreFilter and Filter plugins.
func (s *Snapshot) SchedulePod(ctx context.Context, pod *corev1.Pod, opts estimator.ScheduleOptions) (string, error) {
	state := framework.NewCycleState()
	pre, status, _ := s.fw.RunPreFilterPlugins(ctx, state, pod)
	if !status.IsSuccess() {
		if status.IsRejected() {
			return "", estimator.NewNoFitError(pod, status.Reasons())
		}
		return "", fmt.Errorf("simulator: prefilter pod %s/%s: %w", pod.Namespace, pod.Name, status.AsError())
	}
	candidates := opts.Nodes
	if candidates == nil {
		candidates = s.order
	}
	var reasons []string
	seen := map[string]bool{}
	try := func(name string) (bool, error) {
		if opts.Exclude[name] {
			return false, nil
		}
		ni, ok := s.nodes[name]
		if !ok {
			return false, nil
		}
		if pre != nil && !pre.AllNodes() && !pre.NodeNames.Has(name) {
			addReason(&reasons, seen, "node(s) didn't match the pod's node name or affinity")
			return false, nil
		}
		st := s.fw.RunFilterPlugins(ctx, state, pod, ni)
		if st.IsSuccess() {
			return true, nil
		}
		if !st.IsRejected() {
			return false, fmt.Errorf("simulator: filter pod %s/%s on node %q: %w", pod.Namespace, pod.Name, name, st.AsError())
		}
		for _, r := range st.Reasons() {
			addReason(&reasons, seen, r)
		}
		return false, nil
	}
	if opts.Hint != "" {
		ok, err := try(opts.Hint)
		if err != nil {
			return "", err
		}
		if ok {
			return opts.Hint, s.AddPod(pod, opts.Hint)
		}
	}
	// candidates may be s.order itself: safe, because AddPod never changes the node order.
	for _, name := range candidates {
		if name == opts.Hint {
			continue
		}
		ok, err := try(name)
		if err != nil {
			return "", err
		}
		if ok {
			return name, s.AddPod(pod, name)
		}
	}
	return "", estimator.NewNoFitError(pod, reasons)
}

func addReason(reasons *[]string, seen map[string]bool, r string) {
	if !seen[r] {
		seen[r] = true
		*reasons = append(*reasons, r)
	}
}
