// Package provider is Tidal's virtual-kubelet provider: it implements the pod lifecycle (nodeutil.Provider and
// node.PodNotifier) on top of a backend.Backend, and runs the virtual node (node controller with lease, pod
// controller, kubelet API for logs, exec and stats) in VirtualNode.
//
// Kubelet API and the API server: kubectl logs/exec go to the API server, which calls the node's
// status.addresses (InternalIP) at status.daemonEndpoints.kubeletEndpoint.port over TLS. Without
// --kubelet-certificate-authority it does not verify the serving certificate (a self-signed one is made when
// none is given); without --kubelet-client-certificate it presents no client identity. The embedded dev
// cluster (internal/devcluster/controlplane) sets neither, so there the kubelet API must run with AuthNone; a real
// cluster sets --kubelet-client-certificate and the node runs AuthWebhook with that CA as ClientCAFile. The API
// server's pods/log and pods/exec accept a loopback node address; nodes/proxy (and so metrics-server scraping
// through it) refuses one, so on the dev cluster stats are read from the kubelet port directly.
//
// Secrets and ConfigMaps its pods reference are read by name, never listed or watched, with the identity
// VirtualNodeOptions.PodObjects gives: the node's own (system:node:<name>, NodeIdentity: a client certificate from
// a CertificateSigningRequest, renewed before expiry), which the API server's Node authorizer limits to the
// objects referenced by pods bound to the node (docs/virtual-node.md).
//
// Problems with a pod (an unmapped image, a pod larger than the node, a backend quota) become the pod's status
// (Failed, or Pending and retried with backoff for quota) with a reason and a Warning event, never an error
// that would stop the node.
package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/podstatus"
)

// ReasonBackendError is the pod reason while a create that failed for no pod-specific reason is retried.
const ReasonBackendError = "BackendError"

// Options configures a Provider.
type Options struct {
	Backend     backend.Backend
	NodeName    string
	NodeIP      string
	Allocatable corev1.ResourceList // pods, cpu, memory the node offers
	// Taints are the node's taints; a pod that does not tolerate a NoSchedule/NoExecute one is failed with
	// ReasonTaintToleration (pods bound by spec.nodeName never met the scheduler's check).
	Taints     []corev1.Taint
	ConfigMaps corev1listers.ConfigMapLister
	Secrets    corev1listers.SecretLister
	Recorder   record.EventRecorder
	// Pods, when set, is used to remove a deleted pod from the API as soon as its containers stopped (as the
	// kubelet does), instead of after the whole grace period as virtual-kubelet's pod controller would.
	Pods   corev1client.PodsGetter
	Logger *zap.Logger
	Clock  clock.WithDelayedExecution // defaults to the real clock
	// RetryBase and RetryMax bound the backoff of retryable backend errors (quota). Defaults 5s and 5m.
	RetryBase, RetryMax time.Duration
}

// entry is one pod the provider was given.
type entry struct {
	pod       *corev1.Pod       // as given by the pod controller (env resolved)
	status    *corev1.PodStatus // last status known
	inBackend bool              // Create succeeded, the backend runs it
	deleting  bool
	failures  int         // consecutive retryable failures
	retry     clock.Timer // pending retry of Create
}

// Provider implements the virtual-kubelet pod lifecycle over a backend. Use New.
type Provider struct {
	opts  Options
	log   *zap.Logger
	clock clock.WithDelayedExecution

	mu     sync.Mutex
	pods   map[backend.Key]*entry
	notify func(*corev1.Pod)

	queue   workqueue.TypedInterface[backend.Key]
	started metav1.Time
}

// New returns a Provider. Start must be called before pods are created; Options.Backend may be set later with
// SetBackend (the backend needs the provider's Changed callback).
func New(opts Options) (*Provider, error) {
	if opts.NodeName == "" {
		return nil, errors.New("provider: NodeName: must not be empty")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 5 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	return &Provider{
		opts:    opts,
		log:     opts.Logger,
		clock:   opts.Clock,
		pods:    map[backend.Key]*entry{},
		queue:   workqueue.NewTyped[backend.Key](),
		started: metav1.NewTime(opts.Clock.Now()),
	}, nil
}

// SetBackend sets the backend when it could not be given in Options (it needs Changed). Call before Start.
func (p *Provider) SetBackend(b backend.Backend) { p.opts.Backend = b }

// Backend returns the provider's backend.
func (p *Provider) Backend() backend.Backend { return p.opts.Backend }

// Changed is the backend.ChangeFunc to give the backend.
func (p *Provider) Changed(key backend.Key, st *corev1.PodStatus) {
	p.mu.Lock()
	e, ok := p.pods[key]
	if ok {
		e.status = st
	}
	p.mu.Unlock()
	if ok {
		p.queue.Add(key)
	}
}

// Start runs the notification workers until ctx is done.
func (p *Provider) Start(ctx context.Context, workers int) {
	if workers < 1 {
		workers = 1
	}
	for range workers {
		go func() {
			for p.processNotification() {
			}
		}()
	}
	go func() {
		<-ctx.Done()
		p.queue.ShutDown()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.pods {
			if e.retry != nil {
				e.retry.Stop()
			}
		}
	}()
}

func (p *Provider) processNotification() bool {
	key, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(key)
	p.mu.Lock()
	e, ok := p.pods[key]
	notify := p.notify
	var pod *corev1.Pod
	gone := false
	if ok && e.status != nil {
		pod = e.pod.DeepCopy()
		pod.Status = *e.status.DeepCopy()
		if e.deleting && podstatus.Terminal(e.status.Phase) {
			delete(p.pods, key)
			gone = true
		}
	}
	p.mu.Unlock()
	if pod != nil && notify != nil {
		notify(pod)
	}
	if gone {
		p.removeFromAPI(pod)
	}
	return true
}

// NotifyPods implements node.PodNotifier.
func (p *Provider) NotifyPods(_ context.Context, cb func(*corev1.Pod)) {
	p.mu.Lock()
	p.notify = cb
	p.mu.Unlock()
}

// CreatePod implements node.PodLifecycleHandler. Problems with the pod itself (capacity, unknown image, quota)
// become the pod's status and an event, not an error: the node keeps running and the pod controller does not
// retry in a tight loop.
func (p *Provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	key := backend.KeyOf(pod)
	log := p.log.With(zap.String("pod", key.String()))
	p.mu.Lock()
	if _, ok := p.pods[key]; ok {
		p.mu.Unlock()
		return nil
	}
	if msg := untoleratedTaint(p.opts.Taints, pod); msg != "" {
		e := &entry{pod: pod, status: p.failedStatus(pod, ReasonTaintToleration, msg)}
		p.pods[key] = e
		p.mu.Unlock()
		log.Warn("pod does not tolerate the virtual node's taint", zap.String("reason", msg))
		p.event(pod, corev1.EventTypeWarning, ReasonTaintToleration, msg)
		p.queue.Add(key)
		return nil
	}
	if msg := p.exceedsCapacityLocked(pod); msg != "" {
		e := &entry{pod: pod, status: p.failedStatus(pod, backend.ReasonOutOfCapacity, msg)}
		p.pods[key] = e
		p.mu.Unlock()
		log.Warn("pod does not fit the virtual node", zap.String("reason", msg))
		p.event(pod, corev1.EventTypeWarning, backend.ReasonOutOfCapacity, msg)
		p.queue.Add(key)
		return nil
	}
	e := &entry{pod: pod, status: p.pendingStatus(pod, "", "")}
	p.pods[key] = e
	p.mu.Unlock()
	return p.createInBackend(ctx, key)
}

// createInBackend hands the pod of key to the backend, and turns a PodError into status.
func (p *Provider) createInBackend(ctx context.Context, key backend.Key) error {
	p.mu.Lock()
	e, ok := p.pods[key]
	if !ok || e.deleting || e.inBackend {
		p.mu.Unlock()
		return nil
	}
	pod := e.pod
	p.mu.Unlock()
	log := p.log.With(zap.String("pod", key.String()))

	vols, err := p.materialiseVolumes(pod)
	if err == nil {
		err = p.opts.Backend.Create(ctx, backend.Pod{Pod: pod, Volumes: vols})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e2, ok := p.pods[key]; !ok || e2 != e || e.deleting {
		if err == nil {
			// Deleted while we created it: stop it again.
			go func() { _ = p.opts.Backend.Delete(context.WithoutCancel(ctx), key, 0) }()
		}
		return nil
	}
	if err == nil {
		e.inBackend = true
		e.failures = 0
		return nil
	}
	pe, ok := backend.AsPodError(err)
	if !ok {
		// Anything else (a missing ConfigMap, the backend unreachable) is retried here with backoff, the pod
		// Pending: virtual-kubelet's own handling would fail a restartPolicy=Never pod for a transient error.
		pe = &backend.PodError{Reason: ReasonBackendError, Message: err.Error(), Retryable: true, Err: err}
	}
	if !pe.Retryable {
		e.status = p.failedStatus(pod, pe.Reason, pe.Message)
		log.Warn("pod failed in backend", zap.String("reason", pe.Reason), zap.Error(err))
		p.event(pod, corev1.EventTypeWarning, pe.Reason, pe.Message)
		p.queue.Add(key)
		return nil
	}
	e.failures++
	delay := p.backoff(e.failures)
	e.status = p.pendingStatus(pod, pe.Reason, fmt.Sprintf("%s (retrying in %s)", pe.Message, delay))
	log.Info("backend create will be retried", zap.String("reason", pe.Reason), zap.Duration("after", delay), zap.Error(err))
	p.event(pod, corev1.EventTypeWarning, pe.Reason, fmt.Sprintf("%s; retrying in %s", pe.Message, delay))
	e.retry = p.clock.AfterFunc(delay, func() {
		if err := p.createInBackend(context.WithoutCancel(ctx), key); err != nil {
			log.Warn("retried backend create failed", zap.Error(err))
		}
	})
	p.queue.Add(key)
	return nil
}

func (p *Provider) backoff(failures int) time.Duration {
	d := p.opts.RetryBase
	for i := 1; i < failures && d < p.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, p.opts.RetryMax)
}

// forgetLocked drops key; p.mu must be held.
func (p *Provider) forgetLocked(key backend.Key) {
	if e, ok := p.pods[key]; ok && e.retry != nil {
		e.retry.Stop()
	}
	delete(p.pods, key)
}

// UpdatePod implements node.PodLifecycleHandler. Only metadata changes are taken (backends run the spec they were
// given; the API server forbids changing most of it).
func (p *Provider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	key := backend.KeyOf(pod)
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.pods[key]
	if !ok {
		return errdefs.NotFoundf("pod %s is not on virtual node %s", key, p.opts.NodeName)
	}
	e.pod = pod
	return nil
}

// DeletePod implements node.PodLifecycleHandler: it stops the pod within its grace period and reports the
// terminal status asynchronously.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	key := backend.KeyOf(pod)
	p.mu.Lock()
	e, ok := p.pods[key]
	if !ok {
		p.mu.Unlock()
		return errdefs.NotFoundf("pod %s is not on virtual node %s", key, p.opts.NodeName)
	}
	if e.retry != nil {
		e.retry.Stop()
	}
	e.deleting = true
	inBackend := e.inBackend
	if !inBackend {
		e.status = podstatus.Terminated(e.pod, e.status, "Deleted", metav1.NewTime(p.clock.Now()))
		if e.status.Phase != corev1.PodFailed && e.status.Phase != corev1.PodSucceeded {
			e.status.Phase = corev1.PodFailed
		}
	}
	p.mu.Unlock()
	if !inBackend {
		p.queue.Add(key)
		return nil
	}
	grace := gracePeriod(pod)
	if err := p.opts.Backend.Delete(ctx, key, grace); err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			p.mu.Lock()
			p.forgetLocked(key)
			p.mu.Unlock()
			return errdefs.AsNotFound(err)
		}
		return fmt.Errorf("delete pod %s in backend: %w", key, err)
	}
	return nil
}

func gracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	default:
		return 30 * time.Second
	}
}

// GetPod implements node.PodLifecycleHandler.
func (p *Provider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.pods[backend.Key{Namespace: namespace, Name: name}]
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not on virtual node %s", namespace, name, p.opts.NodeName)
	}
	return e.withStatus(), nil
}

// GetPodStatus implements node.PodLifecycleHandler.
func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods implements node.PodLifecycleHandler.
func (p *Provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.pods))
	for _, e := range p.pods {
		out = append(out, e.withStatus())
	}
	return out, nil
}

func (e *entry) withStatus() *corev1.Pod {
	pod := e.pod.DeepCopy()
	if e.status != nil {
		pod.Status = *e.status.DeepCopy()
	}
	return pod
}

func (p *Provider) pendingStatus(pod *corev1.Pod, reason, msg string) *corev1.PodStatus {
	var containers []corev1.ContainerStatus
	waitingReason := "ContainerCreating"
	if reason != "" {
		waitingReason = reason
	}
	for _, c := range pod.Spec.Containers {
		containers = append(containers, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waitingReason, Message: msg}},
		})
	}
	st := podstatus.Build(podstatus.Input{
		Pod: pod, Containers: containers, HostIP: p.opts.NodeIP, Reason: reason, Message: msg,
		Now: metav1.NewTime(p.clock.Now()),
	})
	return st
}

func (p *Provider) failedStatus(pod *corev1.Pod, reason, msg string) *corev1.PodStatus {
	st := p.pendingStatus(pod, reason, msg)
	st.Phase = corev1.PodFailed
	return st
}

func (p *Provider) event(pod *corev1.Pod, typ, reason, msg string) {
	if p.opts.Recorder != nil {
		p.opts.Recorder.Event(pod, typ, reason, msg)
	}
}

// removeFromAPI deletes a pod whose containers all stopped after a delete, with grace 0 and a UID precondition
// (a recreated pod of the same name is left alone).
func (p *Provider) removeFromAPI(pod *corev1.Pod) {
	if p.opts.Pods == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: metav1.NewUIDPreconditions(string(pod.UID))}
	err := p.opts.Pods.Pods(pod.Namespace).Delete(ctx, pod.Name, opts)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		p.log.Warn("remove stopped pod from the API", zap.String("pod", pod.Namespace+"/"+pod.Name), zap.Error(err))
	}
}

func errorsIsNotFound(err error) bool { return errors.Is(err, backend.ErrNotFound) }
