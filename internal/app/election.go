package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
)

// Default election timings (client-go's and kube-controller-manager's).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// ErrLeaseLost is returned when this replica stopped leading while its context was still live: the process
// should exit and let a standby lead.
var ErrLeaseLost = errors.New("leader election: lease lost")

// ElectionOptions configure leader election through a Lease. Namespace and Name are required.
type ElectionOptions struct {
	Namespace, Name string
	// Identity of this replica in the lease; default hostname_pid.
	Identity                                  string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Election runs a function only while this replica holds the lease.
type Election struct {
	opts    ElectionOptions
	client  kubernetes.Interface
	rec     record.EventRecorder
	log     *zap.Logger
	leading atomic.Bool
}

// NewElection validates opts; rec (may be nil) records leader events on the Lease.
func NewElection(client kubernetes.Interface, opts ElectionOptions, rec record.EventRecorder, log *zap.Logger) (*Election, error) {
	if opts.Namespace == "" || opts.Name == "" {
		return nil, errors.New("leader election: namespace and lease name are required")
	}
	if opts.Identity == "" {
		host, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	opts.LeaseDuration = cmpOrDur(opts.LeaseDuration, DefaultLeaseDuration)
	opts.RenewDeadline = cmpOrDur(opts.RenewDeadline, DefaultRenewDeadline)
	opts.RetryPeriod = cmpOrDur(opts.RetryPeriod, DefaultRetryPeriod)
	if log == nil {
		log = zap.NewNop()
	}
	return &Election{opts: opts, client: client, rec: rec, log: log.With(zap.String("lease", opts.Namespace+"/"+opts.Name), zap.String("identity", opts.Identity))}, nil
}

// Leading reports whether this replica holds the lease now.
func (e *Election) Leading() bool { return e.leading.Load() }

// Identity is this replica's name in the lease.
func (e *Election) Identity() string { return e.opts.Identity }

// Run campaigns until ctx is done, running fn with a context cancelled when leadership ends. It returns fn's
// error, ErrLeaseLost if the lease was lost while ctx was live, or nil when ctx ended. The lease is released on
// the way out so a standby takes over at once.
func (e *Election) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.opts.Namespace, Name: e.opts.Name},
		Client:     e.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.opts.Identity, EventRecorder: e.rec},
	}
	// The elector runs OnStartedLeading in a goroutine of its own and does not wait for it: collect its result.
	done := make(chan error, 1)
	var started, finished atomic.Bool // fn started; fn returned before leadership ended
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: e.opts.Name, ReleaseOnCancel: true,
		LeaseDuration: e.opts.LeaseDuration, RenewDeadline: e.opts.RenewDeadline, RetryPeriod: e.opts.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(c context.Context) {
				e.log.Info("became leader")
				started.Store(true)
				e.leading.Store(true)
				err := fn(c)
				if c.Err() == nil {
					finished.Store(true)
				}
				cancel()
				done <- err
			},
			OnStoppedLeading: func() {
				e.leading.Store(false)
				e.log.Info("stopped leading")
				cancel()
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(lctx)
	cancel()
	if !started.Load() {
		return nil
	}
	if err := <-done; err != nil {
		return err
	}
	if !finished.Load() && ctx.Err() == nil {
		return ErrLeaseLost
	}
	return nil
}

func cmpOrDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
