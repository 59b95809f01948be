package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// containerdFlags are the containerd backend's flags.
type containerdFlags struct {
	address, namespace, dir string
	apiServer               string
	snapshotter             string
}

func (c *containerdFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.address, "containerd-address", "/run/containerd/containerd.sock", "containerd backend: containerd's gRPC socket")
	fs.StringVar(&c.namespace, "containerd-namespace", "tidal", "containerd backend: containerd namespace of the node's images and containers")
	fs.StringVar(&c.dir, "containerd-state-dir", "/var/lib/tidal-virtual-node/containerd", "containerd backend: directory for pod volumes, logs and IO fifos (must be the same path for containerd, i.e. on the host)")
	fs.StringVar(&c.apiServer, "containerd-apiserver", "", "containerd backend: HOST:PORT of the API server as pods on the host network reach it, given to every container as KUBERNETES_SERVICE_HOST/PORT, replacing the kubernetes Service's ClusterIP (default: the virtual node's own API server address)")
	fs.StringVar(&c.snapshotter, "containerd-snapshotter", "", "containerd backend: snapshotter (default: containerd's)")
}

// factory returns the containerd backend constructor. Pods get the API server address in their environment (so
// in-cluster clients find it from the host network), service-account tokens through TokenRequest on client, and
// imagePullSecrets from the virtual node's Secret informer.
func (c *containerdFlags) factory(ctx context.Context, cfg *rest.Config, client kubernetes.Interface) (func(provider.BackendDeps) (backend.Backend, error), error) {
	if c.address == "" {
		return nil, fmt.Errorf("--containerd-address: must be set with --backend=containerd")
	}
	if c.dir == "" {
		return nil, fmt.Errorf("--containerd-state-dir: must be set with --backend=containerd")
	}
	env, err := apiServerEnv(c.apiServer, cfg)
	if err != nil {
		return nil, err
	}
	address := strings.TrimPrefix(c.address, "unix://")
	return func(d provider.BackendDeps) (backend.Backend, error) {
		// New only connects and sweeps what a previous run of this node left; pods start in the background.
		return containerd.New(ctx, containerd.Options{
			Address: address, Namespace: c.namespace, Dir: c.dir, Changed: d.Changed, NodeName: d.NodeName,
			NodeIP: d.NodeIP, Secrets: d.Secrets, Client: client, Env: env, EnvOverride: env, Snapshotter: c.snapshotter, Logger: d.Logger,
		})
	}, nil
}

// apiServerEnv is KUBERNETES_SERVICE_HOST/PORT for pods: from --containerd-apiserver, else from the client
// config's host.
func apiServerEnv(flagValue string, cfg *rest.Config) ([]string, error) {
	hostPort := flagValue
	if hostPort == "" {
		if cfg == nil || cfg.Host == "" {
			return nil, nil
		}
		u, err := url.Parse(cfg.Host)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--containerd-apiserver: cannot derive it from the API server URL %q; set it", cfg.Host)
		}
		hostPort = u.Host
		if u.Port() == "" {
			hostPort = net.JoinHostPort(u.Hostname(), "443")
		}
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("--containerd-apiserver: want HOST:PORT, got %q", hostPort)
	}
	return []string{"KUBERNETES_SERVICE_HOST=" + host, "KUBERNETES_SERVICE_PORT=" + port, "KUBERNETES_SERVICE_PORT_HTTPS=" + port}, nil
}
