package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Defaults for Options.
const (
	DefaultHPASyncPeriod = 15 * time.Second
	// componentStopTimeout bounds how long Stop waits for one component.
	componentStopTimeout = 30 * time.Second
)

// Options configures Start.
type Options struct {
	// Nodes is the number of simulated nodes (0 or more).
	Nodes int
	// Node is the capacity of each simulated node.
	Node NodeShape
	// DataDir holds etcd's data, the PKI, kubeconfigs and component logs. Empty: a fresh temporary directory that
	// Stop removes. A given directory is kept.
	DataDir string
	// Kubeconfig is an extra path the admin kubeconfig is written to (besides DataDir/kubeconfig). An existing
	// file is only overwritten if tidal-dev wrote it.
	Kubeconfig string
	// HPASyncPeriod is kube-controller-manager's --horizontal-pod-autoscaler-sync-period.
	HPASyncPeriod time.Duration
	// Logger receives tidal-dev's own logs.
	Logger *zap.Logger
	// ComponentLog is where the components (klog, etcd, kwok, gRPC) log: a file path, "stderr", or "discard".
	// Empty: DataDir/components.log. Component logging is process-wide, so only one Cluster per process.
	ComponentLog string
	// ComponentVerbosity is the klog -v level of the components.
	ComponentVerbosity int
	// ContainerNode adds a node that runs its pods as real containers (containerd).
	ContainerNode ContainerNodeOptions
}

// Values of Options.ComponentLog that are not paths.
const (
	ComponentLogStderr  = "stderr"
	ComponentLogDiscard = "discard"
)

// Validate reports the first invalid field.
func (o *Options) Validate() error {
	switch {
	case o.Nodes < 0:
		return fmt.Errorf("nodes: must be 0 or more, got %d", o.Nodes)
	case o.Node.CPU.Sign() <= 0:
		return fmt.Errorf("node-cpu: must be positive, got %q", o.Node.CPU.String())
	case o.Node.Memory.Sign() <= 0:
		return fmt.Errorf("node-memory: must be positive, got %q", o.Node.Memory.String())
	case o.HPASyncPeriod <= 0:
		return fmt.Errorf("hpa-sync-period: must be positive, got %s", o.HPASyncPeriod)
	case o.Logger == nil:
		return errors.New("logger: required")
	}
	if o.DataDir != "" {
		if err := checkWritableDir(o.DataDir); err != nil {
			return fmt.Errorf("data-dir: %w", err)
		}
	}
	if o.Kubeconfig != "" {
		if err := checkKubeconfigTarget(o.Kubeconfig); err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
	}
	return nil
}

// Cluster is a running control plane.
type Cluster struct {
	// Kubeconfig is the admin kubeconfig in DataDir.
	Kubeconfig string
	// APIServerURL is https://127.0.0.1:<port>.
	APIServerURL string
	// Config is the admin client configuration.
	Config *rest.Config
	// DataDir is the data directory in use.
	DataDir string

	logger        *zap.Logger
	removeDataDir bool
	etcd          *etcdServer
	apiserver     *component
	// controllers are stopped before the apiserver: kube-controller-manager, kube-scheduler, kwok.
	controllers []*component
	// containerNode is stopped first, so its backend removes its containers while the API server still runs.
	containerNode *ContainerNode
	failed        chan error
	// logFile is the component log file Stop closes, if any.
	logFile *os.File
	// unlockDataDir releases the data dir lock.
	unlockDataDir func()
	stopOnce      sync.Once
	stopErr       error
}

// Start brings up etcd, the apiserver, the controller manager, the scheduler and kwok, creates the simulated
// nodes and returns once all of them are healthy, the nodes are Ready and the default ServiceAccount exists.
// The components run until Stop; ctx only bounds start-up. On error everything started is stopped again.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{logger: o.Logger, failed: make(chan error, 1)}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(context.WithoutCancel(ctx)); stopErr != nil {
				o.Logger.Warn("stop after failed start", zap.Error(stopErr))
			}
		}
	}()
	s, err := c.prepare(o)
	if err != nil {
		return nil, err
	}
	steps := []struct {
		name string
		run  func(ctx context.Context, s *startup) error
	}{
		{"etcd", c.startEtcd},
		{"kubeconfigs", c.writeKubeconfigs},
		{"kube-apiserver", c.startAPIServer},
		{"controllers", c.startControllers},
		{"ready", c.waitReady},
		{"container node", c.startContainerNode},
	}
	for _, step := range steps {
		if err := step.run(ctx, s); err != nil {
			return nil, err
		}
		o.Logger.Debug("start-up step done", zap.String("step", step.name), zap.Duration("after", time.Since(s.began)))
	}
	return c, nil
}

// startup is the state passed between the steps of Start.
type startup struct {
	opts          Options
	began         time.Time
	pki           *pkiFiles
	componentLog  io.Writer
	apiListener   net.Listener
	apiPort       int
	admin         *clientcmdapi.Config
	client        kubernetes.Interface
	kcmKubeconfig string
	schedKubecfg  string
	kcmPort       int
	schedPort     int
}

// prepare sets up the data dir (locked), component logging and the PKI.
func (c *Cluster) prepare(o Options) (*startup, error) {
	s := &startup{opts: o, began: time.Now()}
	var err error
	if c.DataDir, c.removeDataDir, err = prepareDataDir(o.DataDir); err != nil {
		return nil, err
	}
	if c.unlockDataDir, err = lockDataDir(c.DataDir); err != nil {
		c.removeDataDir = false // in use by another process: not ours to remove
		return nil, err
	}
	if s.componentLog, err = c.openComponentLog(o.ComponentLog); err != nil {
		return nil, err
	}
	if err := ConfigureComponentLogging(s.componentLog, o.ComponentVerbosity); err != nil {
		return nil, err
	}
	if s.pki, err = generatePKI(filepath.Join(c.DataDir, "pki"), time.Now()); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return s, nil
}

func (c *Cluster) startEtcd(ctx context.Context, s *startup) error {
	var err error
	c.etcd, err = startEtcd(ctx, etcdOptions{Dir: filepath.Join(c.DataDir, "etcd"), Logger: jsonLogger(s.componentLog, zapcore.WarnLevel)})
	if err != nil {
		return err
	}
	go c.watchEtcd()
	return nil
}

// writeKubeconfigs picks the apiserver port and writes the admin, controller-manager and scheduler kubeconfigs.
func (c *Cluster) writeKubeconfigs(_ context.Context, s *startup) error {
	var err error
	// A kept data dir keeps its apiserver port when it is free, so a restarted cluster is at the address its
	// kubeconfig (and every client started from it) names.
	portFile := filepath.Join(c.DataDir, "apiserver-port")
	if s.apiListener, s.apiPort, err = listenLoopbackPreferring(portFile); err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	c.APIServerURL = fmt.Sprintf("https://127.0.0.1:%d", s.apiPort)
	caPEM, err := os.ReadFile(s.pki.CACert)
	if err != nil {
		return fmt.Errorf("read CA %q: %w", s.pki.CACert, err)
	}
	s.admin = kubeconfigFor(c.APIServerURL, caPEM, adminUser, s.pki.admin)
	c.Kubeconfig = filepath.Join(c.DataDir, "kubeconfig")
	s.kcmKubeconfig = filepath.Join(c.DataDir, "controller-manager.kubeconfig")
	s.schedKubecfg = filepath.Join(c.DataDir, "scheduler.kubeconfig")
	kubeconfigs := map[string]*clientcmdapi.Config{
		c.Kubeconfig:    s.admin,
		s.kcmKubeconfig: kubeconfigFor(c.APIServerURL, caPEM, controllerManager, s.pki.controllerManager),
		s.schedKubecfg:  kubeconfigFor(c.APIServerURL, caPEM, schedulerUser, s.pki.scheduler),
	}
	if s.opts.Kubeconfig != "" {
		kubeconfigs[s.opts.Kubeconfig] = s.admin
	}
	for path, cfg := range kubeconfigs {
		if err := writeKubeconfig(path, cfg); err != nil {
			return err
		}
	}
	if c.Config, err = restConfigFor(s.admin); err != nil {
		return fmt.Errorf("admin client config: %w", err)
	}
	if s.client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	return nil
}

// startAPIServer runs the apiserver and waits for /readyz (which includes the RBAC bootstrap).
func (c *Cluster) startAPIServer(ctx context.Context, s *startup) error {
	c.apiserver = c.run(ctx, "kube-apiserver", func(ctx context.Context) error {
		return runAPIServer(ctx, apiserverOptions{
			EtcdURL: c.etcd.ClientURL, PKI: s.pki, CertDir: filepath.Join(c.DataDir, "apiserver"),
			Listener: s.apiListener, Port: s.apiPort,
		})
	})
	return c.waitHealthy(ctx, "kube-apiserver", func(ctx context.Context) error {
		return s.client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	})
}

// startControllers runs the controller manager, the scheduler and kwok, and creates the simulated nodes.
func (c *Cluster) startControllers(ctx context.Context, s *startup) error {
	kcmListener, kcmPort, err := listenLoopback()
	if err != nil {
		return fmt.Errorf("kube-controller-manager: %w", err)
	}
	s.kcmPort = kcmPort
	c.controllers = append(c.controllers, c.run(ctx, "kube-controller-manager", func(ctx context.Context) error {
		return runControllerManager(ctx, controllerManagerOptions{
			Kubeconfig: s.kcmKubeconfig, PKI: s.pki, CertDir: filepath.Join(c.DataDir, "controller-manager"),
			Listener: kcmListener, Port: kcmPort, HPASyncPeriod: s.opts.HPASyncPeriod,
		})
	}))
	schedListener, schedPort, err := listenLoopback()
	if err != nil {
		return fmt.Errorf("kube-scheduler: %w", err)
	}
	s.schedPort = schedPort
	c.controllers = append(c.controllers, c.run(ctx, "kube-scheduler", func(ctx context.Context) error {
		return runScheduler(ctx, schedulerOptions{
			Kubeconfig: s.schedKubecfg, CertDir: filepath.Join(c.DataDir, "scheduler"),
			Listener: schedListener, Port: schedPort,
		})
	}))
	c.controllers = append(c.controllers, c.run(ctx, "kwok", func(ctx context.Context) error {
		if err := startKwok(ctx, kwokOptions{Config: c.Config, Log: s.componentLog}); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}))
	return createNodes(ctx, s.client, s.opts.Nodes, s.opts.Node)
}

// waitReady waits for the controller manager and scheduler health, Ready nodes and the default ServiceAccount
// (proof that the service-account controllers run, without which no pod can be created).
func (c *Cluster) waitReady(ctx context.Context, s *startup) error {
	checks := []struct {
		name  string
		check func(ctx context.Context) error
	}{
		{"kube-controller-manager", componentHealthz(s.kcmPort)},
		{"kube-scheduler", componentHealthz(s.schedPort)},
		{"simulated nodes", func(ctx context.Context) error { return waitNodesReady(ctx, s.client, s.opts.Nodes) }},
		{"default service account", func(ctx context.Context) error {
			_, err := s.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return err
		}},
	}
	for _, ch := range checks {
		if err := c.waitHealthy(ctx, ch.name, ch.check); err != nil {
			return err
		}
	}
	return nil
}

// watchEtcd reports an etcd failure. The error channel is closed by a clean Close, which is not a failure.
func (c *Cluster) watchEtcd() {
	err, ok := <-c.etcd.Err()
	if !ok || err == nil {
		return
	}
	select {
	case c.failed <- fmt.Errorf("etcd: %w", err):
	default:
	}
}

// Failed delivers the first error of a component that stopped on its own.
func (c *Cluster) Failed() <-chan error { return c.failed }

// Stop stops the controllers, then the apiserver, then etcd, waiting for each, and removes a temporary data dir.
// It is safe to call more than once.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		var errs []error
		if c.containerNode != nil {
			errs = append(errs, c.containerNode.stop(ctx))
		}
		var wg sync.WaitGroup
		errCh := make(chan error, len(c.controllers))
		for _, comp := range c.controllers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errCh <- comp.stop(ctx, c.logger)
			}()
		}
		wg.Wait()
		close(errCh)
		for err := range errCh {
			errs = append(errs, err)
		}
		if c.apiserver != nil {
			errs = append(errs, c.apiserver.stop(ctx, c.logger))
		}
		if c.etcd != nil {
			c.etcd.Close()
			c.logger.Debug("stopped", zap.String("component", "etcd"))
		}
		if c.logFile != nil {
			// Components may still log while their goroutines unwind; keep klog off the closed file.
			_ = ConfigureComponentLogging(io.Discard, 0)
			_ = c.logFile.Close()
		}
		if c.removeDataDir && c.DataDir != "" {
			if err := os.RemoveAll(c.DataDir); err != nil {
				errs = append(errs, fmt.Errorf("remove data dir %q: %w", c.DataDir, err))
			}
		}
		if c.unlockDataDir != nil {
			c.unlockDataDir()
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}
