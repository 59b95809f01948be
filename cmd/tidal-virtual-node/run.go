package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/virtualnode/backfill"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// run wires the virtual node, its backend, backfill, the /metrics, /healthz and /readyz server and (with
// --leader-elect) the election, and runs them until ctx is done.
func run(ctx context.Context, env tidalapp.Env, f flags) error {
	log := env.Log
	capacity := corev1.ResourceList{}
	for name, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: f.cpu, corev1.ResourceMemory: f.memory, corev1.ResourcePods: f.pods} {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
		capacity[name] = q
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 200, 400
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	var ready atomic.Bool // the node is registered and its controllers run
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if env.Flags.MetricsAddr != "" {
		srv, err := tidalapp.Listen(env.Flags.MetricsAddr, tidalapp.NewRegistry(), func() error {
			// A standby replica is ready: it serves health and waits for the lease.
			if !ready.Load() && env.Flags.LeaderElect {
				return nil
			}
			if !ready.Load() {
				return errors.New("virtual node not registered yet")
			}
			return nil
		})
		if err != nil {
			return err
		}
		wg.Go(func() { _ = srv.Run(ctx) })
	}
	runNode := func(ctx context.Context) error {
		newBackend, err := backendFactory(ctx, f, cfg, client, log)
		if err != nil {
			return err
		}
		podObjects, err := podObjectsClient(ctx, f, cfg, log)
		if err != nil {
			return err
		}
		vn, err := provider.NewVirtualNode(provider.VirtualNodeOptions{
			Client: client, PodObjects: podObjects,
			Node: provider.NodeOptions{Name: f.nodeName, Address: f.address, Port: int32(f.port), Capacity: capacity,
				Backend: f.backendName, Version: "v1.37.2-tidal", Annotations: f.nodeAnnotations()},
			Server:     provider.ServerOptions{Auth: f.auth, CertFile: f.certFile, KeyFile: f.keyFile, ClientCAFile: f.clientCA},
			NewBackend: newBackend,
			Logger:     log,
			Workers:    f.workers,
		})
		if err != nil {
			return err
		}
		if f.backfill {
			bf, err := backfill.New(backfill.Options{Client: client, NodeName: f.nodeName, Interval: f.backfillInterval,
				ReadyTimeout: f.backfillReadyTimeout, Logger: log.Named("backfill")})
			if err != nil {
				return err
			}
			go bf.Run(ctx)
		}
		go func() {
			if vn.WaitReady(ctx) == nil {
				ready.Store(true)
			}
		}()
		defer ready.Store(false)
		return vn.Run(ctx)
	}
	election := env.Election("tidal-virtual-node-" + f.nodeName)
	if election == nil {
		return runNode(ctx)
	}
	e, err := tidalapp.NewElection(client, *election, nil, log)
	if err != nil {
		return err
	}
	return e.Run(ctx, runNode)
}

// podObjectsClient is the client that reads the Secrets and ConfigMaps of the node's pods: with --node-identity=csr
// the node's own certificate (renewed until ctx is done), else nil (the service account's client).
func podObjectsClient(ctx context.Context, f flags, cfg *rest.Config, log *zap.Logger) (kubernetes.Interface, error) {
	if f.nodeIdentity != provider.NodeIdentityCSR {
		return nil, nil
	}
	id, err := provider.StartNodeIdentity(ctx, provider.NodeIdentityOptions{Config: cfg, NodeName: f.nodeName, Logger: log.Named("node-identity")})
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, id.Stop)
	nodeCfg, err := id.Config()
	if err != nil {
		return nil, err
	}
	nodeCfg.QPS, nodeCfg.Burst = cfg.QPS, cfg.Burst
	c, err := kubernetes.NewForConfig(nodeCfg)
	if err != nil {
		return nil, fmt.Errorf("node identity client: %w", err)
	}
	return c, nil
}
