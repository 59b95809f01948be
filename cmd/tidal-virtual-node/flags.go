package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	tidalapp "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/aci"
	"github.com/tidalscale/tidal/virtualnode/backend/process"
	"github.com/tidalscale/tidal/virtualnode/backend/sim"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// flags are the command line.
type flags struct {
	nodeName, address                       string
	port                                    int
	cpu, memory, pods                       string
	backendName                             string
	auth, certFile, keyFile, clientCA       string
	processDir, imagesConfigMap, imagesFile string
	processAllowed                          string
	processUID, processGID                  uint
	processNamespaces, processPrivateRoot   bool
	processRootBinds                        string
	simStart, simDelete                     string
	simFailure, simCPU                      float64
	aciSub, aciRG, aciRegion, aciSubnets    string
	aciSecret                               string
	containerd                              containerdFlags
	backfill                                bool
	backfillInterval, backfillReadyTimeout  time.Duration
	pricePerCPUHour                         string
	podStartSeconds                         float64
	workers                                 int
	nodeIdentity                            string
}

// newFlagSet registers the shared flags into common and the virtual node's own into f.
func newFlagSet(common *tidalapp.Flags, f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("tidal-virtual-node", flag.ContinueOnError)
	// A virtual node is one identity whose node Lease already shows liveness; --leader-elect lets a standby
	// replica wait for the lock before it writes the Node and its pods.
	common.Register(fs, tidalapp.RegisterOptions{LeaderElect: true, LeaderElectOffByDefault: true, MetricsAddr: ":8086"})
	fs.StringVar(&f.nodeName, "node-name", envOr("NODE_NAME", "tidal-virtual-node"), "name of the virtual node")
	fs.StringVar(&f.address, "node-address", envOr("POD_IP", "127.0.0.1"), "InternalIP the API server uses to reach the kubelet API")
	fs.IntVar(&f.port, "port", 10250, "kubelet API port (logs, exec, stats)")
	fs.StringVar(&f.cpu, "cpu", "100", "CPU capacity the node advertises")
	fs.StringVar(&f.memory, "memory", "400Gi", "memory capacity the node advertises")
	fs.StringVar(&f.pods, "pods", "1000", "pod capacity the node advertises")
	fs.StringVar(&f.nodeIdentity, "node-identity", provider.NodeIdentityCSR, "identity that reads the Secrets and ConfigMaps of the node's pods: csr (a client certificate for system:node:NAME from a CertificateSigningRequest, renewed before expiry; the API server's Node authorizer then allows only the objects its pods reference) or serviceaccount (the service account, which then needs get on all Secrets and ConfigMaps: clusters without --authorization-mode=Node)")
	fs.IntVar(&f.workers, "workers", 50, "pod reconcile and status workers")
	fs.StringVar(&f.backendName, "backend", "sim", "sim, aci, process (opt-in: runs pods as local processes, sandboxed) or containerd (real containers on the host's network)")
	f.containerd.register(fs)
	fs.StringVar(&f.processAllowed, "process-allowed-commands", "", "process backend: comma-separated executables pods may run besides their image's mapped entrypoint (container command, kubectl exec, exec probes)")
	fs.UintVar(&f.processUID, "process-uid", 65532, "process backend: uid pods run as (never 0)")
	fs.UintVar(&f.processGID, "process-gid", 65532, "process backend: gid pods run as (never 0)")
	fs.BoolVar(&f.processNamespaces, "process-namespaces", true, "process backend: run each container in its own mount and PID namespaces, kubectl exec and exec probes in the container's (needs root, and nsenter from util-linux)")
	fs.BoolVar(&f.processPrivateRoot, "process-private-root", true, "process backend: give each container a private root filesystem (--process-root-binds read-only, its pod directory, its own /proc and /tmp) instead of the host's (needs --process-namespaces)")
	fs.StringVar(&f.processRootBinds, "process-root-binds", strings.Join(process.DefaultRootBinds, ","), "process backend: comma-separated host paths a private root shows read-only")
	fs.StringVar(&f.auth, "kubelet-auth", provider.AuthWebhook, "kubelet API authentication: webhook (client certificates + TokenReview/SubjectAccessReview) or none")
	fs.StringVar(&f.certFile, "tls-cert-file", "", "kubelet API serving certificate (default: self-signed)")
	fs.StringVar(&f.keyFile, "tls-key-file", "", "kubelet API serving key")
	fs.StringVar(&f.clientCA, "client-ca-file", "", "CA of the API server's kubelet client certificate (webhook auth)")
	fs.StringVar(&f.processDir, "process-dir", "/var/lib/tidal-virtual-node", "process backend: directory for pod files and logs")
	fs.StringVar(&f.imagesConfigMap, "process-images-configmap", "", "process backend: NAMESPACE/NAME of the ConfigMap whose key images.yaml maps images to commands")
	fs.StringVar(&f.imagesFile, "process-images-file", "", "process backend: file with the image map (images.yaml format)")
	fs.StringVar(&f.simStart, "sim-start-latency", "lognormal:50ms,150ms", "sim backend: start latency (DURATION, uniform:MIN-MAX or lognormal:MEDIAN,P99)")
	fs.StringVar(&f.simDelete, "sim-delete-latency", "10ms", "sim backend: delete latency")
	fs.Float64Var(&f.simFailure, "sim-failure-rate", 0, "sim backend: probability a pod fails to start")
	fs.Float64Var(&f.simCPU, "sim-cpu-usage", 0.5, "sim backend: fraction of its CPU request a pod reports using")
	fs.StringVar(&f.aciSub, "aci-subscription-id", os.Getenv("AZURE_SUBSCRIPTION_ID"), "aci backend: subscription")
	fs.StringVar(&f.aciRG, "aci-resource-group", "", "aci backend: resource group for container groups")
	fs.StringVar(&f.aciRegion, "aci-region", "", "aci backend: region, e.g. westeurope")
	fs.StringVar(&f.aciSubnets, "aci-subnet-ids", "", "aci backend: comma-separated subnet resource IDs (VNet integration)")
	fs.StringVar(&f.aciSecret, "aci-credentials-secret", "", "aci backend: NAMESPACE/NAME of a Secret with tenantId, clientId, clientSecret (service principal) or only clientId (managed identity); empty: system-assigned managed identity")
	fs.BoolVar(&f.backfill, "backfill", false, "move burst pods back to real nodes once those have room (never below the desired ready count)")
	fs.DurationVar(&f.backfillInterval, "backfill-interval", 15*time.Second, "how often backfill looks for pods to move")
	fs.DurationVar(&f.backfillReadyTimeout, "backfill-ready-timeout", 2*time.Minute, "how long a real-node replacement may take to become Ready before backfill gives up on it")
	fs.StringVar(&f.pricePerCPUHour, "price-per-cpu-hour", "", "price of one CPU-hour on this node, in the currency of NodeGroup spec.pricePerHour; published as the node annotation "+tidalv1alpha1.AnnotationVirtualPricePerCPUHour+" for placement decisions (docs/placement.md)")
	fs.Float64Var(&f.podStartSeconds, "pod-start-seconds", 0, "expected pod start on this node in seconds, published as the node annotation "+tidalv1alpha1.AnnotationVirtualPodStartSeconds+" until the node autoscaler has measured one (0: not published)")
	return fs
}

// parseFlags parses and validates args (tests; main parses through tidalapp.Main and validates in run).
func parseFlags(args []string) (flags, error) {
	var (
		common tidalapp.Flags
		f      flags
	)
	if err := newFlagSet(&common, &f).Parse(args); err != nil {
		return f, err
	}
	return f, f.validate()
}

func (f *flags) validate() error {
	if f.port < 1 || f.port > 65535 {
		return fmt.Errorf("--port: want 1-65535, got %d", f.port)
	}
	if f.nodeIdentity != provider.NodeIdentityCSR && f.nodeIdentity != provider.NodeIdentityServiceAccount {
		return fmt.Errorf("--node-identity: want %s or %s, got %q", provider.NodeIdentityCSR, provider.NodeIdentityServiceAccount, f.nodeIdentity)
	}
	if f.pricePerCPUHour != "" {
		if p, err := strconv.ParseFloat(f.pricePerCPUHour, 64); err != nil || p < 0 || math.IsInf(p, 0) || math.IsNaN(p) {
			return fmt.Errorf("--price-per-cpu-hour: want a non-negative decimal, got %q", f.pricePerCPUHour)
		}
	}
	if f.podStartSeconds < 0 || math.IsInf(f.podStartSeconds, 0) || math.IsNaN(f.podStartSeconds) {
		return fmt.Errorf("--pod-start-seconds: want a non-negative number, got %v", f.podStartSeconds)
	}
	return nil
}

func backendFactory(ctx context.Context, f flags, cfg *rest.Config, client kubernetes.Interface, log *zap.Logger) (func(provider.BackendDeps) (backend.Backend, error), error) {
	switch f.backendName {
	case "containerd":
		return f.containerd.factory(ctx, cfg, client)
	case "process":
		if f.processUID > math.MaxUint32 || f.processGID > math.MaxUint32 {
			return nil, fmt.Errorf("--process-uid/--process-gid: want at most %d", uint32(math.MaxUint32))
		}
		var images process.ImageResolver
		switch {
		case f.imagesFile != "":
			b, err := os.ReadFile(f.imagesFile)
			if err != nil {
				return nil, fmt.Errorf("--process-images-file: %w", err)
			}
			m, err := process.ParseImages(string(b))
			if err != nil {
				return nil, fmt.Errorf("--process-images-file %q: %w", f.imagesFile, err)
			}
			images = m
		case f.imagesConfigMap != "":
			ns, name, ok := strings.Cut(f.imagesConfigMap, "/")
			if !ok || ns == "" || name == "" {
				return nil, fmt.Errorf("--process-images-configmap: want NAMESPACE/NAME, got %q", f.imagesConfigMap)
			}
			images = &process.ConfigMapImages{Namespace: ns, Name: name,
				Get: func(ns, name string) (*corev1.ConfigMap, error) {
					return client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{ResourceVersion: "0"})
				},
				OnError: func(err error) { log.Warn("image map", zap.Error(err)) }}
		default:
			return nil, fmt.Errorf("--backend=process needs --process-images-configmap or --process-images-file")
		}
		return func(d provider.BackendDeps) (backend.Backend, error) {
			return process.New(process.Options{Images: images, Dir: f.processDir, Changed: d.Changed, NodeIP: d.NodeIP, Logger: d.Logger,
				AllowedCommands: splitList(f.processAllowed),
				Sandbox: &process.Sandbox{UID: uint32(f.processUID), GID: uint32(f.processGID), Namespaces: f.processNamespaces,
					PrivateRoot: f.processPrivateRoot, RootBinds: splitList(f.processRootBinds)}})
		}, nil
	case "sim":
		start, err := sim.ParseLatency("--sim-start-latency", f.simStart)
		if err != nil {
			return nil, err
		}
		del, err := sim.ParseLatency("--sim-delete-latency", f.simDelete)
		if err != nil {
			return nil, err
		}
		return func(d provider.BackendDeps) (backend.Backend, error) {
			return sim.New(sim.Options{Changed: d.Changed, NodeIP: d.NodeIP, StartLatency: start, DeleteLatency: del,
				FailureRate: f.simFailure, CPUUsage: f.simCPU})
		}, nil
	case "aci":
		data := map[string][]byte{}
		if f.aciSecret != "" {
			ns, name, ok := strings.Cut(f.aciSecret, "/")
			if !ok || ns == "" || name == "" {
				return nil, fmt.Errorf("--aci-credentials-secret: want NAMESPACE/NAME, got %q", f.aciSecret)
			}
			s, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("--aci-credentials-secret %s: %w", f.aciSecret, err)
			}
			data = s.Data
		}
		cred, err := aci.CredentialFromSecret(data)
		if err != nil {
			return nil, err
		}
		var subnets []string
		for s := range strings.SplitSeq(f.aciSubnets, ",") {
			if s = strings.TrimSpace(s); s != "" {
				subnets = append(subnets, s)
			}
		}
		return func(d provider.BackendDeps) (backend.Backend, error) {
			return aci.New(aci.Options{SubscriptionID: f.aciSub, ResourceGroup: f.aciRG, Region: f.aciRegion, SubnetIDs: subnets,
				Credential: cred, Changed: d.Changed, NodeName: d.NodeName, NodeIP: d.NodeIP, Logger: d.Logger})
		}, nil
	default:
		return nil, fmt.Errorf("--backend: want process, aci, containerd or sim, got %q", f.backendName)
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// nodeAnnotations are the placement inputs the node publishes.
func (f *flags) nodeAnnotations() map[string]string {
	a := map[string]string{}
	if f.pricePerCPUHour != "" {
		a[tidalv1alpha1.AnnotationVirtualPricePerCPUHour] = f.pricePerCPUHour
	}
	if f.podStartSeconds > 0 {
		a[tidalv1alpha1.AnnotationVirtualPodStartSeconds] = strconv.FormatFloat(f.podStartSeconds, 'f', -1, 64)
	}
	if len(a) == 0 {
		return nil
	}
	return a
}
