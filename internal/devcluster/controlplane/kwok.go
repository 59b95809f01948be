package controlplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured/unstructuredscheme"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/clock"
	"sigs.k8s.io/kwok/kustomize/stage/node/fast"
	heartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/apis/v1alpha1"
	"sigs.k8s.io/kwok/pkg/client/clientset/versioned"
	"sigs.k8s.io/kwok/pkg/kwok/controllers"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/yaml"
)

// Simulated-node selection and addressing.
const (
	// KwokNodeLabel and KwokNodeLabelValue select the nodes kwok simulates. Nodes without the label (a
	// virtual-kubelet node, say) are left alone.
	KwokNodeLabel      = "type"
	KwokNodeLabelValue = "kwok"
	// kwokPodCIDR is the pool pods get IPs from on nodes without spec.podCIDR.
	kwokPodCIDR = "10.244.0.0/16"
	// kwokLeaseSeconds is the node lease duration kwok renews (kubelet's default is 40s).
	kwokLeaseSeconds = 40
)

// kwokOptions configures startKwok.
type kwokOptions struct {
	Config *rest.Config
	// Log receives kwok's own logs (slog JSON); nil discards them.
	Log io.Writer
}

// startKwok starts kwok's controllers in-process with the default "fast" stages: node initialisation, node
// heartbeat with a lease, pod ready, pod complete (pods owned by a Job turn Succeeded, so Jobs complete) and pod
// delete. It returns once the controllers are started; they stop when ctx is cancelled.
//
// Simulated resource usage for the metrics APIs is planned through pod annotations; see the package
// documentation.
func startKwok(ctx context.Context, o kwokOptions) error {
	// A nil writer gives kwok's no-op logger.
	ctx = kwoklog.NewContext(ctx, kwoklog.NewLogger(o.Log, slog.LevelWarn))

	stages, err := defaultStages()
	if err != nil {
		return err
	}
	cfg := rest.CopyConfig(o.Config)
	cfg.UserAgent = "kwok-controller"

	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kwok: typed client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kwok: dynamic client: %w", err)
	}
	kwokClient, err := versioned.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kwok: kwok client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kwok: discovery client: %w", err)
	}
	restClient, err := unstructuredRESTClient(cfg)
	if err != nil {
		return fmt.Errorf("kwok: rest client: %w", err)
	}
	id, err := controllers.Identity()
	if err != nil {
		return fmt.Errorf("kwok: identity: %w", err)
	}
	imp := impersonator{config: cfg}
	ctr, err := controllers.NewController(controllers.Config{
		Clock:                         clock.RealClock{},
		DynamicClient:                 dyn,
		RESTClient:                    restClient,
		RESTMapper:                    restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		ImpersonatingDynamicClient:    imp,
		ImpersonatingTypedClient:      imp,
		TypedClient:                   typed,
		TypedKwokClient:               kwokClient,
		ManageNodesWithLabelSelector:  KwokNodeLabel + "=" + KwokNodeLabelValue,
		CIDR:                          kwokPodCIDR,
		LocalStages:                   stages,
		PodPlayStageParallelism:       16,
		NodePlayStageParallelism:      4,
		NodeLeaseDurationSeconds:      kwokLeaseSeconds,
		NodeLeaseParallelism:          4,
		PodsOnNodeSyncParallelism:     4,
		EnablePodsOnNodeSyncListPager: true,
		ID:                            id,
	})
	if err != nil {
		return fmt.Errorf("kwok: %w", err)
	}
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("kwok: start: %w", err)
	}
	return nil
}

// defaultStages parses kwok's embedded default stages and groups them by the resource they act on, as kwok's
// own command does.
func defaultStages() (map[internalversion.StageResourceRef][]*internalversion.Stage, error) {
	raw := map[string]string{
		"node-initialize":           fast.DefaultNodeInit,
		"node-heartbeat-with-lease": heartbeat.DefaultNodeHeartbeatWithLease,
		"pod-ready":                 podfast.DefaultPodReady,
		"pod-complete":              podfast.DefaultPodComplete,
		"pod-delete":                podfast.DefaultPodDelete,
	}
	grouped := map[internalversion.StageResourceRef][]*internalversion.Stage{}
	for name, doc := range raw {
		var v v1alpha1.Stage
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			return nil, fmt.Errorf("kwok stage %q: %w", name, err)
		}
		s, err := internalversion.ConvertToInternalStage(&v)
		if err != nil {
			return nil, fmt.Errorf("kwok stage %q: %w", name, err)
		}
		grouped[s.Spec.ResourceRef] = append(grouped[s.Spec.ResourceRef], s)
	}
	return grouped, nil
}

// unstructuredRESTClient is the untyped REST client kwok uses to fetch OpenAPI v3 patch metadata.
func unstructuredRESTClient(cfg *rest.Config) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &schema.GroupVersion{}
	c.NegotiatedSerializer = unstructuredscheme.NewUnstructuredNegotiatedSerializer()
	return rest.RESTClientFor(c)
}

// impersonator builds clients that impersonate a user, for stages that act on behalf of one.
type impersonator struct {
	config *rest.Config
}

func (i impersonator) ImpersonateDynamic(ic rest.ImpersonationConfig) (dynamic.Interface, error) {
	c := rest.CopyConfig(i.config)
	c.Impersonate = ic
	return dynamic.NewForConfig(c)
}

func (i impersonator) ImpersonateTyped(ic rest.ImpersonationConfig) (kubernetes.Interface, error) {
	c := rest.CopyConfig(i.config)
	c.Impersonate = ic
	return kubernetes.NewForConfig(c)
}
