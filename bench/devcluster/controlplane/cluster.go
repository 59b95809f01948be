// Package controlplane runs a whole Kubernetes control plane in the current process: an embedded etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler from k8s.io/kubernetes, and kwok simulating the
// nodes. It links k8s.io/kubernetes and is meant for cmd/tidal-dev only; tests reach the cluster through
// bench/devcluster, which starts the tidal-dev binary.
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
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
	failed      chan error
	// logFile is the component log file Stop closes, if any.
	logFile  *os.File
	stopOnce sync.Once
	stopErr  error
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

	if c.DataDir, c.removeDataDir, err = prepareDataDir(o.DataDir); err != nil {
		return nil, err
	}
	componentLog, err := c.openComponentLog(o.ComponentLog)
	if err != nil {
		return nil, err
	}
	if err := ConfigureComponentLogging(componentLog, o.ComponentVerbosity); err != nil {
		return nil, err
	}
	pki, err := generatePKI(filepath.Join(c.DataDir, "pki"), time.Now())
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}

	start := time.Now()
	c.etcd, err = startEtcd(ctx, etcdOptions{Dir: filepath.Join(c.DataDir, "etcd"), Logger: jsonLogger(componentLog, zapcore.WarnLevel)})
	if err != nil {
		return nil, err
	}
	o.Logger.Debug("etcd ready", zap.String("url", c.etcd.ClientURL), zap.Duration("after", time.Since(start)))

	apiListener, apiPort, err := listenLoopback()
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	c.APIServerURL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	caPEM, err := os.ReadFile(pki.CACert)
	if err != nil {
		return nil, fmt.Errorf("read CA %q: %w", pki.CACert, err)
	}
	admin := kubeconfigFor(c.APIServerURL, caPEM, adminUser, pki.admin)
	c.Kubeconfig = filepath.Join(c.DataDir, "kubeconfig")
	kcmKubeconfig := filepath.Join(c.DataDir, "controller-manager.kubeconfig")
	schedKubeconfig := filepath.Join(c.DataDir, "scheduler.kubeconfig")
	kubeconfigs := map[string]*clientcmdapi.Config{
		c.Kubeconfig:    admin,
		kcmKubeconfig:   kubeconfigFor(c.APIServerURL, caPEM, controllerManager, pki.controllerManager),
		schedKubeconfig: kubeconfigFor(c.APIServerURL, caPEM, schedulerUser, pki.scheduler),
	}
	if o.Kubeconfig != "" {
		kubeconfigs[o.Kubeconfig] = admin
	}
	for path, cfg := range kubeconfigs {
		if err := writeKubeconfig(path, cfg); err != nil {
			return nil, err
		}
	}
	if c.Config, err = restConfigFor(admin); err != nil {
		return nil, fmt.Errorf("admin client config: %w", err)
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}

	c.apiserver = c.run(ctx, "kube-apiserver", func(ctx context.Context) error {
		return runAPIServer(ctx, apiserverOptions{
			EtcdURL: c.etcd.ClientURL, PKI: pki, CertDir: filepath.Join(c.DataDir, "apiserver"),
			Listener: apiListener, Port: apiPort,
		})
	})
	if err := c.waitHealthy(ctx, "kube-apiserver", func(ctx context.Context) error {
		return client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}); err != nil {
		return nil, err
	}
	o.Logger.Debug("kube-apiserver ready", zap.Duration("after", time.Since(start)))

	kcmListener, kcmPort, err := listenLoopback()
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager: %w", err)
	}
	c.controllers = append(c.controllers, c.run(ctx, "kube-controller-manager", func(ctx context.Context) error {
		return runControllerManager(ctx, controllerManagerOptions{
			Kubeconfig: kcmKubeconfig, PKI: pki, CertDir: filepath.Join(c.DataDir, "controller-manager"),
			Listener: kcmListener, Port: kcmPort, HPASyncPeriod: o.HPASyncPeriod,
		})
	}))
	schedListener, schedPort, err := listenLoopback()
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler: %w", err)
	}
	c.controllers = append(c.controllers, c.run(ctx, "kube-scheduler", func(ctx context.Context) error {
		return runScheduler(ctx, schedulerOptions{
			Kubeconfig: schedKubeconfig, CertDir: filepath.Join(c.DataDir, "scheduler"),
			Listener: schedListener, Port: schedPort,
		})
	}))
	c.controllers = append(c.controllers, c.run(ctx, "kwok", func(ctx context.Context) error {
		if err := startKwok(ctx, kwokOptions{Config: c.Config, Log: componentLog}); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}))
	if err := createNodes(ctx, client, o.Nodes, o.Node); err != nil {
		return nil, err
	}

	checks := []struct {
		name  string
		check func(ctx context.Context) error
	}{
		{"kube-controller-manager", componentHealthz(kcmPort)},
		{"kube-scheduler", componentHealthz(schedPort)},
		{"simulated nodes", func(ctx context.Context) error { return waitNodesReady(ctx, client, o.Nodes) }},
		{"default service account", func(ctx context.Context) error {
			_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return err
		}},
	}
	for _, ch := range checks {
		if err := c.waitHealthy(ctx, ch.name, ch.check); err != nil {
			return nil, err
		}
	}
	o.Logger.Debug("cluster ready", zap.Duration("after", time.Since(start)), zap.Int("nodes", o.Nodes))
	return c, nil
}

// Failed delivers the first error of a component that stopped on its own.
func (c *Cluster) Failed() <-chan error { return c.failed }

// Stop stops the controllers, then the apiserver, then etcd, waiting for each, and removes a temporary data dir.
// It is safe to call more than once.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		var errs []error
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
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// component is one control-plane part running in a goroutine with its own context.
type component struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// run starts fn in a goroutine with a context that only Stop cancels. If fn returns before that, the cluster is
// reported as failed.
func (c *Cluster) run(ctx context.Context, name string, fn func(ctx context.Context) error) *component {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	comp := &component{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(comp.done)
		comp.err = fn(cctx)
		if cctx.Err() == nil {
			err := comp.err
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			select {
			case c.failed <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
	return comp
}

func (comp *component) stop(ctx context.Context, logger *zap.Logger) error {
	comp.cancel()
	t := time.NewTimer(componentStopTimeout)
	defer t.Stop()
	select {
	case <-comp.done:
		logger.Debug("stopped", zap.String("component", comp.name))
		if comp.err != nil && !errors.Is(comp.err, context.Canceled) {
			return fmt.Errorf("%s: %w", comp.name, comp.err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s: not stopped after %s", comp.name, componentStopTimeout)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", comp.name, ctx.Err())
	}
}

// waitHealthy polls check until it succeeds, a component fails, or ctx ends.
func (c *Cluster) waitHealthy(ctx context.Context, what string, check func(ctx context.Context) error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-c.failed:
			return false, err
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		last = check(pctx)
		return last == nil, nil
	})
	if err != nil {
		if last != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, err, last)
		}
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

// componentHealthz checks a component's /healthz on its loopback secure port. /healthz is always allowed without
// authentication; the component's self-signed serving certificate is not verified (loopback only).
func componentHealthz(port int) func(ctx context.Context) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health probe of a self-signed component
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

// openComponentLog resolves Options.ComponentLog to a writer.
func (c *Cluster) openComponentLog(spec string) (io.Writer, error) {
	switch spec {
	case ComponentLogStderr:
		return os.Stderr, nil
	case ComponentLogDiscard:
		return io.Discard, nil
	case "":
		spec = filepath.Join(c.DataDir, "components.log")
	}
	f, err := os.OpenFile(spec, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("component-log: %w", err)
	}
	c.logFile = f
	return f, nil
}

// prepareDataDir returns the directory to use and whether Stop removes it.
func prepareDataDir(dir string) (string, bool, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "tidal-dev-")
		if err != nil {
			return "", false, fmt.Errorf("data-dir: %w", err)
		}
		return tmp, true, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false, fmt.Errorf("data-dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", false, fmt.Errorf("data-dir %q: %w", dir, err)
	}
	return abs, false, nil
}

// checkWritableDir reports whether dir is, or can be created as, a directory we can write to.
func checkWritableDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case os.IsNotExist(err):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("%q: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("%q: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("%q: not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".tidal-dev-probe-")
	if err != nil {
		return fmt.Errorf("%q: not writable: %w", dir, err)
	}
	name := probe.Name()
	_ = probe.Close()
	return os.Remove(name)
}
