// Package app is the scaffold every Tidal deployable shares: the common flags (kubeconfig, namespace, log level,
// metrics address, leader election, --version), a zap logger from --log-level, a context cancelled on SIGINT or
// SIGTERM, the /metrics, /healthz and /readyz server, and leader election through a Lease. A cmd/*/main.go
// registers its flags, builds its component's Options and calls Main; the component's own Run uses Server and
// Election, so tests start the same Run in-process.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tidalscale/tidal/internal/version"
)

// FlagSet is what Flags.Register needs; both *flag.FlagSet and *pflag.FlagSet are one.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
	Parse(args []string) error
}

// Flags are the flags every deployable shares.
type Flags struct {
	Kubeconfig  string
	Namespace   string
	LogLevel    string
	MetricsAddr string
	// LeaderElect is registered only for a component that writes (RegisterOptions.LeaderElect).
	LeaderElect bool
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Version                                   bool
	// WatchNamespace limits a component that watches ScaledObjects/ScaledJobs to one namespace (empty: all);
	// registered only with RegisterOptions.WatchNamespace.
	WatchNamespace string
	// AuthFileRoot is the directory ClusterTriggerAuthentication spec.filePath is read under (empty: refused);
	// registered with WatchNamespace, by the components that resolve triggers.
	AuthFileRoot string
	// SecretStoreTTL is how long parameters read from an external secret store are used (--secret-store-ttl;
	// autoscaler/triggers/stores); registered with WatchNamespace.
	SecretStoreTTL time.Duration
}

// RegisterOptions say which shared flags a deployable takes.
type RegisterOptions struct {
	// LeaderElect registers --leader-elect (default true) and its timings.
	LeaderElect bool
	// LeaderElectOffByDefault makes --leader-elect default to false.
	LeaderElectOffByDefault bool
	// MetricsAddr is --metrics-addr's default (":8080" when empty).
	MetricsAddr string
	// Namespace is --namespace's default when POD_NAMESPACE is unset ("tidal-system" when empty).
	Namespace string
	// WatchNamespace registers --watch-namespace (default $WATCH_NAMESPACE).
	WatchNamespace bool
}

// Register adds the shared flags to fs.
func (f *Flags) Register(fs FlagSet, o RegisterOptions) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "path to a kubeconfig; empty means in-cluster")
	fs.StringVar(&f.Namespace, "namespace", envOr("POD_NAMESPACE", cmpOr(o.Namespace, DefaultNamespace)), "this component's namespace (its Lease, ClusterTriggerAuthentication secrets)")
	fs.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.MetricsAddr, "metrics-addr", cmpOr(o.MetricsAddr, ":8080"), "address for /metrics, /healthz and /readyz; empty disables")
	fs.BoolVar(&f.Version, "version", false, "print the version and exit")
	if o.WatchNamespace {
		fs.StringVar(&f.WatchNamespace, "watch-namespace", os.Getenv("WATCH_NAMESPACE"), "only ScaledObjects and ScaledJobs of this namespace; empty watches all")
		fs.StringVar(&f.AuthFileRoot, "filepath-auth-root-path", "", "directory under which a ClusterTriggerAuthentication's spec.filePath is read "+
			"(a mounted Secret, for instance); empty refuses filePath")
		fs.DurationVar(&f.SecretStoreTTL, "secret-store-ttl", 5*time.Minute, "how long trigger parameters read from an external secret store (hashiCorpVault...) "+
			"are used: re-read after half of it; while the store cannot be read the last values are used, the object not Ready, until it is over")
	}
	if o.LeaderElect {
		fs.BoolVar(&f.LeaderElect, "leader-elect", !o.LeaderElectOffByDefault, "elect a leader through a Lease so several replicas can run with one active")
		fs.DurationVar(&f.LeaseDuration, "leader-elect-lease-duration", DefaultLeaseDuration, "how long a standby waits before taking over a lease that was not renewed")
		fs.DurationVar(&f.RenewDeadline, "leader-elect-renew-deadline", DefaultRenewDeadline, "how long the leader keeps retrying to renew before it gives up leading")
		fs.DurationVar(&f.RetryPeriod, "leader-elect-retry-period", DefaultRetryPeriod, "how often candidates try to acquire or renew the lease")
	}
}

// Env is what Main hands a command once its flags are parsed.
type Env struct {
	Log *zap.Logger
	// Config is the Kubernetes client config from --kubeconfig (in-cluster when empty).
	Config *rest.Config
	Flags  *Flags
}

// Election is the leader election the flags ask for, for a lease called name; nil without --leader-elect.
func (e Env) Election(name string) *ElectionOptions {
	if !e.Flags.LeaderElect {
		return nil
	}
	return &ElectionOptions{Namespace: e.Flags.Namespace, Name: name, LeaseDuration: e.Flags.LeaseDuration,
		RenewDeadline: e.Flags.RenewDeadline, RetryPeriod: e.Flags.RetryPeriod}
}

// Main parses args into fs (which has the shared flags registered into f), answers --version, builds the logger
// and client config, and calls run with a context cancelled on SIGINT or SIGTERM. It exits the process: 0 on
// success or --help, 1 on error. name is the component ("operator" for tidal-operator).
func Main(name string, fs FlagSet, f *Flags, run func(ctx context.Context, env Env) error) {
	if err := Exec(name, fs, f, os.Args[1:], os.Stdout, run); err != nil {
		if errors.Is(err, flag.ErrHelp) || errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "tidal-%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Exec is Main without the exit, for tests.
func Exec(name string, fs FlagSet, f *Flags, args []string, stdout io.Writer, run func(ctx context.Context, env Env) error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.Version {
		_, err := fmt.Fprintln(stdout, version.String(name))
		return err
	}
	log, err := NewLogger(f.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: f.Kubeconfig}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	v := version.Get()
	log.Info("starting", zap.String("component", "tidal-"+name), zap.String("version", v.Version), zap.String("commit", v.Commit))
	return run(ctx, Env{Log: log, Config: cfg, Flags: f})
}

// NewLogger builds the production zap logger at level (debug, info, warn or error).
func NewLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg.Build()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func cmpOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
