package provider

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// BackendDeps is what a backend constructor gets from the virtual node.
type BackendDeps struct {
	Changed    backend.ChangeFunc
	ConfigMaps corev1listers.ConfigMapLister
	Secrets    corev1listers.SecretLister
	NodeName   string
	NodeIP     string
	Logger     *zap.Logger
}

// VirtualNodeOptions configure a VirtualNode.
type VirtualNodeOptions struct {
	Client kubernetes.Interface
	// PodObjects reads the Secrets and ConfigMaps the node's pods reference, one GET by name each (never a list
	// or watch). Give it the node's own identity (NodeIdentity: system:node:<name>), which the API server's Node
	// authorizer allows exactly those objects; nil: Client.
	PodObjects kubernetes.Interface
	Node       NodeOptions
	Server     ServerOptions
	// Listener serves the kubelet API; when nil one is opened on Node.Address:Node.Port. When Node.Port is 0
	// it is taken from the listener.
	Listener net.Listener
	// NewBackend builds the backend once the informers exist.
	NewBackend func(BackendDeps) (backend.Backend, error)
	Logger     *zap.Logger
	// Workers reconcile pods and push pod status (default 50: a 1,000-pod burst needs them).
	Workers int
	// RetryBase and RetryMax bound the retry backoff of retryable backend errors (defaults 5s, 5m).
	RetryBase, RetryMax time.Duration
	Clock               clock.WithDelayedExecution
	// QueueQPS bounds how fast the pod controller's queues admit pods (default 500/s, burst twice that).
	// virtual-kubelet's default, client-go's 10/s controller limiter, made a 1,000-pod burst take 90s.
	QueueQPS int
}

// VirtualNode runs the virtual-kubelet node controller (Node object with lease), pod controller (informers,
// PodLifecycleHandler, PodNotifier) and kubelet API for one virtual node. Use NewVirtualNode, then Run.
type VirtualNode struct {
	opts     VirtualNodeOptions
	log      *zap.Logger
	listener net.Listener
	node     *nodeutil.Node
	provider *Provider
	handler  http.Handler
	tlsCfg   *tls.Config
	eb       record.EventBroadcaster
}

// NewVirtualNode validates opts, opens the kubelet API listener and builds the controllers.
func NewVirtualNode(opts VirtualNodeOptions) (*VirtualNode, error) {
	if opts.Client == nil {
		return nil, errors.New("virtual node: Client: must be set")
	}
	if opts.NewBackend == nil {
		return nil, errors.New("virtual node: NewBackend: must be set")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Workers <= 0 {
		opts.Workers = 50
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.QueueQPS <= 0 {
		opts.QueueQPS = 500
	}
	l := opts.Listener
	if l == nil {
		if opts.Node.Port <= 0 {
			return nil, fmt.Errorf("virtual node %q: node port: want 1-65535, got %d", opts.Node.Name, opts.Node.Port)
		}
		var err error
		l, err = net.Listen("tcp", net.JoinHostPort(opts.Node.Address, strconv.Itoa(int(opts.Node.Port))))
		if err != nil {
			return nil, fmt.Errorf("virtual node %q: kubelet API listener: %w", opts.Node.Name, err)
		}
	}
	if opts.Node.Port == 0 {
		if ta, ok := l.Addr().(*net.TCPAddr); ok {
			opts.Node.Port = int32(ta.Port)
		}
	}
	if err := opts.Node.Validate(); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("virtual node %q: %w", opts.Node.Name, err)
	}
	v := &VirtualNode{opts: opts, log: opts.Logger.With(zap.String("node", opts.Node.Name)), listener: l}
	if err := v.build(); err != nil {
		_ = l.Close()
		return nil, err
	}
	return v, nil
}

func (v *VirtualNode) build() error {
	o := v.opts
	v.eb = record.NewBroadcaster()
	recorder := v.eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "tidal-virtual-node", Host: o.Node.Name})
	var pods corev1listers.PodLister
	reader := o.PodObjects
	if reader == nil {
		reader = o.Client
	}
	secrets, configMaps := secretsByName{reader}, configMapsByName{reader}
	newProvider := func(pc nodeutil.ProviderConfig) (nodeutil.Provider, vknode.NodeProvider, error) {
		p, err := New(Options{
			NodeName: o.Node.Name, NodeIP: o.Node.Address, Allocatable: o.Node.Capacity, Taints: o.Node.Node().Spec.Taints,
			ConfigMaps: configMaps, Secrets: secrets, Recorder: recorder, Logger: v.log, Pods: o.Client.CoreV1(),
			Clock: o.Clock, RetryBase: o.RetryBase, RetryMax: o.RetryMax,
		})
		if err != nil {
			return nil, nil, err
		}
		b, err := o.NewBackend(BackendDeps{
			Changed: p.Changed, ConfigMaps: configMaps, Secrets: secrets,
			NodeName: o.Node.Name, NodeIP: o.Node.Address, Logger: v.log.With(zap.String("backend", o.Node.Backend)),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("backend %q: %w", o.Node.Backend, err)
		}
		p.SetBackend(b)
		pods = pc.Pods
		v.provider = p
		return p, nil, nil // nil: virtual-kubelet's naive node provider keeps the node Ready while we run
	}
	n, err := nodeutil.NewNode(o.Node.Name, newProvider, func(cfg *nodeutil.NodeConfig) error {
		cfg.Client = withoutSecretInformers{o.Client}
		cfg.NodeSpec = *o.Node.Node()
		cfg.EventRecorder = recorder
		cfg.NumWorkers = o.Workers
		cfg.HTTPListenAddr = v.listener.Addr().String()
		// We serve the kubelet API ourselves, on our listener: no handler means virtual-kubelet starts no
		// server (a non-nil TLS config only keeps it from warning that it has none).
		cfg.Handler, cfg.TLSConfig = nil, &tls.Config{MinVersion: tls.VersionTLS12}
		return nil
	}, nodeutil.WithPodControllerConfigOverrides(func(pc *vknode.PodControllerConfig) error {
		pc.SyncPodsFromKubernetesRateLimiter = queueLimiter(o.QueueQPS)
		pc.SyncPodStatusFromProviderRateLimiter = queueLimiter(o.QueueQPS)
		pc.DeletePodsFromKubernetesRateLimiter = queueLimiter(o.QueueQPS)
		pc.SecretInformer, pc.ConfigMapInformer = secrets, configMaps
		return nil
	}))
	if err != nil {
		return fmt.Errorf("virtual node %q: %w", o.Node.Name, err)
	}
	v.node = n
	v.tlsCfg, err = o.Server.tlsConfig(o.Node.Name, o.Node.Address, o.Clock.Now())
	if err != nil {
		return fmt.Errorf("virtual node %q: %w", o.Node.Name, err)
	}
	v.handler, err = newHandler(handlerOptions{
		server: o.Server, provider: v.provider, pods: pods, client: o.Client, nodeName: o.Node.Name,
		logger: newVKLogger(v.log.Named("kubelet-api")),
	})
	if err != nil {
		return fmt.Errorf("virtual node %q: %w", o.Node.Name, err)
	}
	return nil
}

// queueLimiter is per-item exponential backoff on failures plus an overall bucket of qps.
func queueLimiter(qps int) workqueue.TypedRateLimiter[any] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[any](5*time.Millisecond, 5*time.Minute),
		&workqueue.TypedBucketRateLimiter[any]{Limiter: rate.NewLimiter(rate.Limit(qps), 2*qps)},
	)
}

// Provider returns the pod lifecycle provider.
func (v *VirtualNode) Provider() *Provider { return v.provider }

// Port returns the kubelet API port.
func (v *VirtualNode) Port() int32 { return v.opts.Node.Port }

// WaitReady waits until the node is registered and the controllers run.
func (v *VirtualNode) WaitReady(ctx context.Context) error {
	select {
	case <-v.node.Ready():
		return nil
	case <-v.node.Done():
		return fmt.Errorf("virtual node %q stopped before ready: %w", v.opts.Node.Name, v.node.Err())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run serves until ctx is done. On the way out it stops every pod in the backend (leaving no processes behind)
// and marks the Node NotReady, so the cluster stops scheduling onto it at once instead of after the node
// monitor grace period.
func (v *VirtualNode) Run(ctx context.Context) error {
	ctx = vklog.WithLogger(ctx, newVKLogger(v.log.Named("vk")))
	v.eb.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: v.opts.Client.CoreV1().Events("")})
	defer v.eb.Shutdown()

	srv := &http.Server{Handler: v.handler, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(tls.NewListener(v.listener, v.tlsCfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			v.log.Error("kubelet API server stopped", zap.Error(err))
		}
	}()
	v.provider.Start(ctx, v.opts.Workers)
	v.log.Info("virtual node starting", zap.Int32("port", v.opts.Node.Port), zap.String("backend", v.opts.Node.Backend))
	err := v.node.Run(ctx)
	_ = srv.Close()

	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if cerr := v.provider.Backend().Close(stopCtx); cerr != nil {
		v.log.Warn("backend close", zap.Error(cerr))
	}
	if nerr := v.markNotReady(stopCtx); nerr != nil {
		v.log.Warn("mark node NotReady", zap.Error(nerr))
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (v *VirtualNode) markNotReady(ctx context.Context) error {
	nodes := v.opts.Client.CoreV1().Nodes()
	n, err := nodes.Get(ctx, v.opts.Node.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %q: %w", v.opts.Node.Name, err)
	}
	n = n.DeepCopy()
	now := metav1.Now()
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, "KubeletStopped", "tidal-virtual-node stopped"
		c.LastHeartbeatTime, c.LastTransitionTime = now, now
	}
	if _, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{FieldManager: "tidal-virtual-node"}); err != nil {
		return fmt.Errorf("node %q: status: %w", v.opts.Node.Name, err)
	}
	return nil
}
