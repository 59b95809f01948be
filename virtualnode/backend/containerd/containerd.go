// Package containerd is the virtual-node backend that runs each pod's containers as real OCI containers through
// the containerd client: images come from the backend's containerd namespace (imported) or are pulled from a
// registry with the pod's imagePullSecrets; each container gets the pod's env, command/args, working dir, user,
// read-only root, CPU/memory limits as OCI cgroup limits and its volumes as bind mounts; init containers run
// in order; restartPolicy, exec/HTTP/TCP probes, logs, exec and cgroup stats work as on a kubelet.
//
// Networking: every container shares the host's network namespace (the pod IP is the node IP), so a pod's
// ports are the host's ports and two pods must not bind the same one. A pod network would need, per pod, a
// network namespace (oci.WithLinuxNamespace with a path) set up by a CNI plugin (github.com/containerd/go-cni
// with a bridge + host-local IPAM config), its IP reported as podIP, and a route from the API server and the
// other pods to that subnet; nothing of that is here.
//
// Every containerd object the backend makes carries the label tidal.dev/virtual-node=<node>: Close, and New for
// what a crashed node left behind, remove all of them (tasks, containers and their snapshots).
package containerd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/distribution/reference"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// LabelNode labels every container the backend creates with its node name.
const LabelNode = "tidal.dev/virtual-node"

// Reasons of container waiting states, as the kubelet reports them.
const (
	ReasonInvalidImageName = "InvalidImageName"
	ReasonErrImagePull     = "ErrImagePull"
	ReasonImagePullBackOff = "ImagePullBackOff"
	ReasonCreateError      = "CreateContainerError"
	ReasonConfigError      = "CreateContainerConfigError"
)

// Options configure the containerd backend.
type Options struct {
	// Address is containerd's gRPC socket. Required.
	Address string
	// Namespace is the containerd namespace for images and containers (default "tidal").
	Namespace string
	// Dir holds one directory per pod (volumes, logs, IO fifos). Required.
	Dir string
	// Changed receives status changes. Required.
	Changed backend.ChangeFunc
	// NodeName labels the backend's containers (default "tidal-containerd").
	NodeName string
	// NodeIP is reported as host and pod IP (containers share the host network; default 127.0.0.1).
	NodeIP string
	// Secrets resolves imagePullSecrets; without it pulls are anonymous.
	Secrets corev1listers.SecretLister
	// Client requests service-account tokens (TokenRequest) for projected token volumes. Without it a pod that
	// mounts a token fails with reason CreateContainerConfigError.
	Client kubernetes.Interface
	// Env is added to every container's environment before the image's and the pod's own (for example
	// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, so in-cluster clients find the API server).
	Env []string
	// EnvOverride is set after the pod's own environment. virtual-kubelet fills KUBERNETES_SERVICE_HOST/PORT
	// into every pod's env from the kubernetes Service's ClusterIP, which a container on the host network
	// reaches only through kube-proxy; a node without one sets the API server's host address here.
	EnvOverride []string
	// PlainHTTP says which registry hosts are spoken to over plain HTTP (default: localhost and loopback).
	PlainHTTP func(host string) (bool, error)
	// PullTimeout bounds one image pull (default 5m).
	PullTimeout time.Duration
	// Snapshotter names the containerd snapshotter (default containerd's, overlayfs).
	Snapshotter string
	// RestartBackoff is the first crash-loop delay, doubled up to RestartBackoffMax (defaults 10s and 5m, as the
	// kubelet); image pulls back off alike.
	RestartBackoff, RestartBackoffMax time.Duration
	// TokenRefresh returns when to renew a token issued at issued that expires at expiry (default: after 80% of
	// its lifetime, as the kubelet).
	TokenRefresh func(issued, expiry time.Time) time.Duration
	Logger       *zap.Logger
}

// Backend runs pods as containerd containers. Use New.
type Backend struct {
	opts   Options
	log    *zap.Logger
	client *ctrd.Client

	mu     sync.Mutex
	pods   map[backend.Key]*podRun
	closed bool
}

var (
	_ backend.Backend       = (*Backend)(nil)
	_ backend.LogReader     = (*Backend)(nil)
	_ backend.Executor      = (*Backend)(nil)
	_ backend.StatsReporter = (*Backend)(nil)
)

// New connects to containerd and removes whatever a previous run of this node left behind.
func New(ctx context.Context, opts Options) (*Backend, error) {
	var errs []error
	if opts.Address == "" {
		errs = append(errs, errors.New("containerd backend: Address: must be set"))
	}
	if opts.Dir == "" {
		errs = append(errs, errors.New("containerd backend: Dir: must be set"))
	}
	if opts.Changed == nil {
		errs = append(errs, errors.New("containerd backend: Changed: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = "tidal"
	}
	if opts.NodeName == "" {
		opts.NodeName = "tidal-containerd"
	}
	if opts.NodeIP == "" {
		opts.NodeIP = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.PullTimeout <= 0 {
		opts.PullTimeout = 5 * time.Minute
	}
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = 10 * time.Second
	}
	if opts.RestartBackoffMax <= 0 {
		opts.RestartBackoffMax = 5 * time.Minute
	}
	if opts.TokenRefresh == nil {
		opts.TokenRefresh = func(issued, expiry time.Time) time.Duration { return expiry.Sub(issued) * 8 / 10 }
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("containerd backend: Dir %q: %w", opts.Dir, err)
	}
	opts.Dir = dir
	if err := os.MkdirAll(opts.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("containerd backend: Dir %q: %w", opts.Dir, err)
	}
	client, err := ctrd.New(opts.Address, ctrd.WithDefaultNamespace(opts.Namespace), ctrd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd backend: connect %s: %w", opts.Address, err)
	}
	b := &Backend{opts: opts, log: opts.Logger, client: client, pods: map[backend.Key]*podRun{}}
	if err := b.sweep(b.ctx(ctx)); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("containerd backend: remove containers left by a previous run: %w", err)
	}
	return b, nil
}

// Client returns the containerd client (for importing images).
func (b *Backend) Client() *ctrd.Client { return b.client }

// ctx returns ctx in the backend's containerd namespace.
func (b *Backend) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, b.opts.Namespace)
}

// Create implements backend.Backend. The pod is accepted at once; images are resolved and containers started in
// the background, their progress reported through Changed.
func (b *Backend) Create(_ context.Context, p backend.Pod) error {
	pod := p.Pod
	key := backend.KeyOf(pod)
	if err := validate(pod); err != nil {
		return err
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if _, err := reference.ParseDockerRef(c.Image); err != nil {
			return &backend.PodError{Reason: ReasonInvalidImageName,
				Message: fmt.Sprintf("container %q: image %q: %v", c.Name, c.Image, err)}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("containerd backend is closed")
	}
	if _, ok := b.pods[key]; ok {
		return nil
	}
	run := newPodRun(b, pod, p.Volumes)
	b.pods[key] = run
	go run.run()
	b.log.Info("pod accepted", zap.String("pod", key.String()), zap.Int("containers", len(pod.Spec.Containers)),
		zap.Int("initContainers", len(pod.Spec.InitContainers)))
	return nil
}

// Delete implements backend.Backend: SIGTERM to every container, SIGKILL after grace, then the tasks,
// containers, snapshots and the pod directory are removed and the terminal status reported.
func (b *Backend) Delete(ctx context.Context, key backend.Key, grace time.Duration) error {
	run, err := b.get(key)
	if err != nil {
		return err
	}
	go func() {
		run.stop(context.WithoutCancel(ctx), grace)
		b.mu.Lock()
		if b.pods[key] == run {
			delete(b.pods, key)
		}
		b.mu.Unlock()
		b.log.Info("pod stopped", zap.String("pod", key.String()))
		b.opts.Changed(key, run.status())
	}()
	return nil
}

// Status implements backend.Backend.
func (b *Backend) Status(_ context.Context, key backend.Key) (*corev1.PodStatus, error) {
	run, err := b.get(key)
	if err != nil {
		return nil, err
	}
	return run.status(), nil
}

func (b *Backend) get(key backend.Key) (*podRun, error) { return backend.Lookup(&b.mu, b.pods, key) }

// Close implements backend.Backend: it stops every pod (SIGKILL after a short grace), removes every container,
// task and snapshot of this node, and closes the client.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	runs := make([]*podRun, 0, len(b.pods))
	for _, r := range b.pods {
		runs = append(runs, r)
	}
	b.pods = map[backend.Key]*podRun{}
	b.mu.Unlock()
	grace := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(dl)/3)
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() { r.stop(ctx, grace) })
	}
	wg.Wait()
	err := b.sweep(b.ctx(ctx))
	return errors.Join(err, b.client.Close())
}

// sweep removes every container (with its task and snapshot) labelled with this node.
func (b *Backend) sweep(ctx context.Context) error {
	cs, err := b.client.Containers(ctx, fmt.Sprintf("labels.%q==%s", LabelNode, b.opts.NodeName))
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if err := removeContainer(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// containerID is a containerd id for a container of a pod: unique per pod UID, at most 76 characters, matching
// containerd's identifier rules.
func containerID(pod *corev1.Pod, name string) string {
	h := sha256.Sum256([]byte(pod.Namespace + "/" + pod.Name + "/" + string(pod.UID)))
	return hex.EncodeToString(h[:])[:12] + "-" + name
}

func now() metav1.Time { return metav1.Now() }
