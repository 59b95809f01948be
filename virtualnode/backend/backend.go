// Package backend defines what a virtual-node backend implements: somewhere to run the pods the virtual node is
// given (local processes, Azure Container Instances, a latency model).
//
// The provider (virtualnode/provider) owns the Kubernetes side: it resolves env (the pod controller already did),
// materialises volumes, checks capacity and turns backend status into pod status updates. A backend only runs
// pods and reports their status. Optional capabilities (logs, exec, stats) are separate interfaces checked by
// type assertion.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// Key names a pod.
type Key struct {
	Namespace string
	Name      string
}

// String returns "namespace/name".
func (k Key) String() string { return k.Namespace + "/" + k.Name }

// KeyOf returns the key of pod.
func KeyOf(pod *corev1.Pod) Key { return Key{Namespace: pod.Namespace, Name: pod.Name} }

// Pod is what a backend is asked to run.
type Pod struct {
	// Pod is the API object with env already resolved (fieldRefs, ConfigMap and Secret keys). Read-only.
	Pod *corev1.Pod
	// Volumes holds the content of the pod's ConfigMap, Secret and emptyDir volumes by volume name.
	Volumes map[string]Volume
}

// Volume is the materialised content of one pod volume.
type Volume struct {
	// Files maps a path relative to the mount point to its content. Empty for an emptyDir.
	Files map[string][]byte
	// Secret is true when the content came from a Secret (backends must not log it).
	Secret bool
	// EmptyDir is true for an emptyDir volume.
	EmptyDir bool
	// Tokens are the service-account tokens of a projected volume, at paths relative to the mount point. A
	// backend that can ask the API server for tokens (TokenRequest) writes them and refreshes them before they
	// expire; the others leave them out.
	Tokens []TokenProjection
}

// TokenProjection is one projected service-account token.
type TokenProjection struct {
	Path              string
	Audience          string // empty means the API server's
	ExpirationSeconds int64  // 0 means one hour
}

// ChangeFunc is called by a backend with a pod's new status whenever it changed, including the terminal status
// after Delete. The status is the caller's to keep. It must not block for long.
type ChangeFunc func(Key, *corev1.PodStatus)

// Backend runs pods.
//
// Create returns once the pod is accepted (not running): progress is reported through the backend's ChangeFunc
// and read with Status. Create of a pod the backend already runs is a no-op. A problem with the pod itself (an
// image with no mapping, a quota exceeded) is a *PodError, so the provider can set the pod's status and reason.
//
// Delete stops the pod's containers, giving them grace to exit before they are killed, and reports the terminal
// status through ChangeFunc; it need not wait for the pod to stop. After that report the backend forgets the pod.
// Delete of an unknown pod returns an error matching ErrNotFound.
//
// Status returns the pod's current status (phase, conditions, container statuses); ErrNotFound for an unknown pod.
//
// Close stops every pod the backend runs (process backends must leave no orphan processes) and releases resources.
type Backend interface {
	Create(ctx context.Context, pod Pod) error
	Delete(ctx context.Context, key Key, grace time.Duration) error
	Status(ctx context.Context, key Key) (*corev1.PodStatus, error)
	Close(ctx context.Context) error
}

// LogOptions selects what Logs returns.
type LogOptions struct {
	Tail       int // lines from the end; 0 means all
	LimitBytes int
	Timestamps bool
	Follow     bool
	Previous   bool
	SinceTime  time.Time // zero means no lower bound
}

// LogReader is implemented by backends that keep container logs.
type LogReader interface {
	Logs(ctx context.Context, key Key, container string, opts LogOptions) (io.ReadCloser, error)
}

// TermSize is a terminal size.
type TermSize struct{ Width, Height uint16 }

// Streams are the standard streams of an exec session. Stdin, Stdout and Stderr may be nil.
type Streams struct {
	Stdin  io.Reader
	Stdout io.WriteCloser
	Stderr io.WriteCloser
	TTY    bool
	Resize <-chan TermSize
}

// Executor is implemented by backends that can run a command in a running container.
type Executor interface {
	Exec(ctx context.Context, key Key, container string, cmd []string, streams Streams) error
}

// StatsReporter is implemented by backends that measure their pods' resource use.
type StatsReporter interface {
	// PodStats returns the stats of every running pod.
	PodStats(ctx context.Context) ([]statsv1alpha1.PodStats, error)
}

// ErrNotFound is matched (errors.Is) by the error a backend returns for a pod it does not know.
var ErrNotFound = errors.New("pod not found in backend")

// NotFound returns an error for key that matches ErrNotFound.
func NotFound(key Key) error { return fmt.Errorf("pod %s: %w", key, ErrNotFound) }

// Lookup returns a backend's state of the pod key from pods, read under mu, or a NotFound error.
func Lookup[R any](mu *sync.Mutex, pods map[Key]R, key Key) (R, error) {
	mu.Lock()
	defer mu.Unlock()
	run, ok := pods[key]
	if !ok {
		var zero R
		return zero, NotFound(key)
	}
	return run, nil
}

// Reasons a PodError gives; they become the pod's status.reason.
const (
	ReasonImageNotMapped     = "ImageNotMapped"
	ReasonQuotaExceeded      = "QuotaExceeded"
	ReasonOutOfCapacity      = "OutOfCapacity"
	ReasonInvalidPod         = "InvalidPod"
	ReasonStartFailed        = "StartFailed"
	ReasonSimulatedFailure   = "SimulatedFailure"
	ReasonUnsupportedFeature = "Unsupported"
)

// PodError is a problem with running a particular pod. Retryable errors (a quota that may free up) leave the pod
// Pending and are retried with backoff; the others fail the pod.
type PodError struct {
	Reason    string
	Message   string
	Retryable bool
	Err       error
}

func (e *PodError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Reason + ": " + e.Message
}

func (e *PodError) Unwrap() error { return e.Err }

// AsPodError returns the *PodError in err's chain, if any.
func AsPodError(err error) (*PodError, bool) {
	var pe *PodError
	if errors.As(err, &pe) {
		return pe, true
	}
	return nil, false
}
