package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd/daemon"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// Defaults of ContainerNodeOptions.
const (
	DefaultContainerNodeName      = "tidal-containers"
	DefaultContainerdNamespace    = "tidal"
	containerNodeCPU, containerMe = "16", "32Gi"
)

// ContainerNodeOptions configure the container node: a virtual node (the Tidal virtual-kubelet provider with the
// containerd backend) that runs the pods scheduled onto it as real containers on the host's network.
type ContainerNodeOptions struct {
	// Enabled registers the node.
	Enabled bool
	// Address is the socket of a running containerd to use; empty starts a private one with its config, root,
	// state and socket under DATA-DIR/ctd (stopped with the cluster).
	Address string
	// Name of the Node (default DefaultContainerNodeName).
	Name string
	// Namespace is the containerd namespace of its images and containers (default DefaultContainerdNamespace).
	Namespace string
}

// ContainerNode is the running container node.
type ContainerNode struct {
	// Name of the Node. It is labelled tidal.dev/virtual-node-backend=containerd and tainted
	// virtual-kubelet.io/provider=tidal:NoSchedule, like every Tidal virtual node.
	Name string
	// Address is the containerd socket (import images into Namespace there).
	Address   string
	Namespace string

	daemon *daemon.Daemon
	router *serviceRouter
	cancel context.CancelFunc
	done   chan error
}

// startContainerNode starts (or connects to) containerd and runs the virtual node until stop.
func (c *Cluster) startContainerNode(ctx context.Context, s *startup) error {
	o := s.opts.ContainerNode
	if !o.Enabled {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("container node: runs containers through containerd and runc, which needs root")
	}
	n := &ContainerNode{Name: o.Name, Address: o.Address, Namespace: o.Namespace, done: make(chan error, 1)}
	if n.Name == "" {
		n.Name = DefaultContainerNodeName
	}
	if n.Namespace == "" {
		n.Namespace = DefaultContainerdNamespace
	}
	c.containerNode = n
	log := c.logger.Named("container-node")
	if n.Address == "" {
		d, err := daemon.Start(ctx, daemon.Options{Dir: filepath.Join(c.DataDir, "ctd")})
		if err != nil {
			if errors.Is(err, daemon.ErrMissing) {
				return fmt.Errorf("container node: %w", err)
			}
			return fmt.Errorf("container node: start containerd: %w", err)
		}
		n.daemon, n.Address = d, d.Address
		log.Info("containerd started", zap.String("address", d.Address), zap.String("log", d.Log))
	}
	// Containers share the host's network: the API server is at 127.0.0.1 for them, not at the kubernetes
	// Service's ClusterIP (there is no kube-proxy).
	apiEnv := []string{"KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT=" + strconv.Itoa(s.apiPort),
		"KUBERNETES_SERVICE_PORT_HTTPS=" + strconv.Itoa(s.apiPort)}
	nodeIP := hostIP()
	l, err := net.Listen("tcp", net.JoinHostPort(nodeIP, "0"))
	if err != nil {
		return fmt.Errorf("container node: kubelet API listener: %w", err)
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		_ = l.Close()
		return fmt.Errorf("container node: client: %w", err)
	}
	vn, err := provider.NewVirtualNode(provider.VirtualNodeOptions{
		Client: client,
		Node: provider.NodeOptions{Name: n.Name, Address: nodeIP, Backend: "containerd", Version: "v1.37.2-tidal",
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(containerNodeCPU),
				corev1.ResourceMemory: resource.MustParse(containerMe), corev1.ResourcePods: resource.MustParse("110")}},
		// The dev apiserver presents no kubelet client certificate.
		Server:   provider.ServerOptions{Auth: provider.AuthNone},
		Listener: l,
		NewBackend: func(d provider.BackendDeps) (backend.Backend, error) {
			return containerd.New(ctx, containerd.Options{Address: n.Address, Namespace: n.Namespace,
				Dir: filepath.Join(c.DataDir, "container-node"), Changed: d.Changed, NodeName: d.NodeName, NodeIP: d.NodeIP,
				Secrets: d.Secrets, Client: client, Env: apiEnv, EnvOverride: apiEnv, Logger: d.Logger})
		},
		Logger:  log.WithOptions(zap.IncreaseLevel(zap.InfoLevel)),
		Workers: 8,
	})
	if err != nil {
		return fmt.Errorf("container node: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	go func() {
		err := vn.Run(runCtx)
		if runCtx.Err() == nil {
			select {
			case c.failed <- fmt.Errorf("container node %s: %w", n.Name, err):
			default:
			}
		}
		n.done <- err
	}()
	n.router = newServiceRouter(client, n.Name, log.Named("services"))
	go n.router.run(runCtx)
	if err := vn.WaitReady(ctx); err != nil {
		return fmt.Errorf("container node: not ready: %w", err)
	}
	return nil
}

// ContainerNode returns the container node, nil without one.
func (c *Cluster) ContainerNode() *ContainerNode { return c.containerNode }

// stop stops the virtual node (its backend removes every container it ran), the service routes and a containerd
// it started.
func (n *ContainerNode) stop(ctx context.Context) error {
	var errs []error
	if n.cancel != nil {
		n.cancel()
		select {
		case err := <-n.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("container node: %w", err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("container node: not stopped: %w", ctx.Err()))
		}
	}
	if n.router != nil {
		n.router.wait()
	}
	if n.daemon != nil {
		errs = append(errs, n.daemon.Stop())
	}
	return errors.Join(errs...)
}

// hostIP is the node's (and so every pod's) IP: the host's first non-loopback IPv4 address. Not 127.0.0.1, which
// the endpoint controllers may not put into Endpoints/EndpointSlices, so the Services of the node's pods would have
// none (and an APIService on one would stay MissingEndpoints). 127.0.0.1 when the host has no other address.
func hostIP() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
