package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/podstatus"
)

// podRun is one pod: its directory, its containers (init ones first) and the goroutine that sets it up and runs
// it. Fields below mu are guarded by it, and so are the status fields of its containers.
type podRun struct {
	b       *Backend
	key     backend.Key
	pod     *corev1.Pod
	vols    map[string]backend.Volume
	dir     string
	started metav1.Time

	inits      []*container
	containers []*container

	stopCh   chan struct{} // closed when the pod is being stopped
	runDone  chan struct{} // closed when run and every supervisor returned
	stopOnce sync.Once
	stopped  chan struct{} // closed when stop finished (everything removed)

	mu       sync.Mutex
	stopping bool
	volDirs  map[string]string
	tokens   []*tokenFile
}

func newPodRun(b *Backend, pod *corev1.Pod, vols map[string]backend.Volume) *podRun {
	r := &podRun{
		b: b, key: backend.KeyOf(pod), pod: pod, vols: vols, started: now(),
		dir:    filepath.Join(b.opts.Dir, unsafeName.ReplaceAllString(pod.Namespace+"_"+pod.Name+"_"+string(pod.UID), "-")),
		stopCh: make(chan struct{}), runDone: make(chan struct{}), stopped: make(chan struct{}),
	}
	for i := range pod.Spec.InitContainers {
		r.inits = append(r.inits, newContainer(r, &pod.Spec.InitContainers[i], true))
	}
	for i := range pod.Spec.Containers {
		r.containers = append(r.containers, newContainer(r, &pod.Spec.Containers[i], false))
	}
	return r
}

func (r *podRun) logger() *zap.Logger { return r.b.log.With(zap.String("pod", r.key.String())) }

// ctx is a context in the backend's containerd namespace that outlives the request that created the pod.
func (r *podRun) ctx() context.Context { return r.b.ctx(context.Background()) }

func (r *podRun) changed() { r.b.opts.Changed(r.key, r.status()) }

func (r *podRun) isStopping() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return false
	}
}

// run prepares the pod (directory, volumes, tokens, images, containers), runs its init containers in order and
// then supervises its containers, until they are done or the pod is stopped.
func (r *podRun) run() {
	var supervisors sync.WaitGroup
	defer func() {
		supervisors.Wait()
		close(r.runDone)
	}()
	all := append(append([]*container{}, r.inits...), r.containers...)
	steps := []struct {
		reason string
		fn     func() error
		who    []*container
	}{
		{ReasonConfigError, r.prepare, all},
		{ReasonConfigError, r.startTokens, all},
	}
	for _, s := range steps {
		if !r.retry(s.reason, s.who, s.fn) {
			return
		}
	}
	for _, c := range all {
		if !r.retry("", []*container{c}, func() error { return c.pullImage(r.ctx()) }) {
			return
		}
	}
	for _, c := range all {
		if !r.retry(ReasonCreateError, []*container{c}, func() error { return c.create(r.ctx()) }) {
			return
		}
	}
	for _, c := range r.inits {
		if !c.runToCompletion() {
			return
		}
	}
	for _, c := range r.containers {
		supervisors.Go(c.supervise)
	}
}

// retry runs fn until it succeeds (true) or the pod stops (false), with the crash-loop backoff between tries.
// While it fails, the containers in who wait with reason (the error's own reason for image pulls).
func (r *podRun) retry(reason string, who []*container, fn func() error) bool {
	backoff := r.b.opts.RestartBackoff
	for {
		if r.isStopping() {
			return false
		}
		err := fn()
		if err == nil {
			return true
		}
		why, backoffReason := reason, reason
		if pe, ok := err.(*pullError); ok {
			why, backoffReason = pe.reason, ReasonImagePullBackOff
			if pe.reason == ReasonInvalidImageName {
				backoffReason = pe.reason
			}
		}
		r.logger().Warn("pod setup failed; retrying", zap.String("reason", why), zap.Duration("after", backoff), zap.Error(err))
		r.setWaiting(who, why, err.Error())
		select {
		case <-r.stopCh:
			return false
		case <-time.After(min(time.Second, backoff)):
		}
		r.setWaiting(who, backoffReason, fmt.Sprintf("back-off %s: %v", backoff, err))
		select {
		case <-r.stopCh:
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.b.opts.RestartBackoffMax)
	}
}

func (r *podRun) setWaiting(who []*container, reason, msg string) {
	r.mu.Lock()
	for _, c := range who {
		c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	}
	r.mu.Unlock()
	r.changed()
}

// prepare writes the pod's volumes under its directory. Directories and files are world-readable (containers
// often run as a non-root user; the pod directory itself is reachable only by root), emptyDirs world-writable.
func (r *podRun) prepare() error {
	if err := os.MkdirAll(filepath.Join(r.dir, "logs"), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "io"), 0o700); err != nil {
		return err
	}
	dirs := map[string]string{}
	for name, v := range r.vols {
		d := filepath.Join(r.dir, "volumes", unsafeName.ReplaceAllString(name, "-"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if v.EmptyDir {
			if err := os.Chmod(d, 0o777); err != nil {
				return err
			}
		}
		for rel, content := range v.Files {
			if err := writeFileAtomic(d, rel, content); err != nil {
				return fmt.Errorf("volume %q: %w", name, err)
			}
		}
		dirs[name] = d
	}
	r.mu.Lock()
	r.volDirs = dirs
	r.mu.Unlock()
	return nil
}

// writeFileAtomic writes content to dir/rel through a temporary file and a rename, so a container reading it
// never sees half a file (tokens are rewritten while the container runs).
func writeFileAtomic(dir, rel string, content []byte) error {
	p := filepath.Join(dir, filepath.Clean("/"+rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(content)
	cerr := tmp.Close()
	if err := firstErr(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), p)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// stop stops the pod: SIGTERM to every task, SIGKILL after grace; then it removes every task, container,
// snapshot and the pod directory. It returns once all that is done.
func (r *podRun) stop(ctx context.Context, grace time.Duration) {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopping = true
		r.mu.Unlock()
		close(r.stopCh)
		cctx := r.b.ctx(context.WithoutCancel(ctx))
		all := append(append([]*container{}, r.inits...), r.containers...)
		for _, c := range all {
			c.signal(cctx, sigTerm)
		}
		deadline := time.NewTimer(grace)
		defer deadline.Stop()
		select {
		case <-r.runDone:
		case <-deadline.C:
			for {
				for _, c := range all {
					c.signal(cctx, sigKill)
				}
				select {
				case <-r.runDone:
				case <-time.After(200 * time.Millisecond):
					continue
				}
				break
			}
		}
		r.mu.Lock()
		tokens := r.tokens
		r.mu.Unlock()
		for _, t := range tokens {
			t.stop()
		}
		for _, c := range all {
			if err := c.remove(cctx); err != nil {
				r.logger().Warn("remove container", zap.String("container", c.spec.Name), zap.Error(err))
			}
		}
		if err := os.RemoveAll(r.dir); err != nil {
			r.logger().Warn("remove pod directory", zap.Error(err))
		}
		close(r.stopped)
	})
	<-r.stopped
}

// status builds the pod status from the containers.
func (r *podRun) status() *corev1.PodStatus {
	r.mu.Lock()
	inits := make([]corev1.ContainerStatus, 0, len(r.inits))
	initialized := true
	initFailed := false
	for _, c := range r.inits {
		st := c.snapshot()
		inits = append(inits, st)
		done := st.State.Terminated != nil && st.State.Terminated.ExitCode == 0
		initialized = initialized && done
		if st.State.Terminated != nil && st.State.Terminated.ExitCode != 0 && r.pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			initFailed = true
		}
	}
	cs := make([]corev1.ContainerStatus, 0, len(r.containers))
	for _, c := range r.containers {
		cs = append(cs, c.snapshot())
	}
	r.mu.Unlock()
	st := podstatus.Build(podstatus.Input{
		Pod: r.pod, Containers: cs, HostIP: r.b.opts.NodeIP, PodIP: r.b.opts.NodeIP, StartTime: r.started,
		Failed: initFailed, Now: now(),
	})
	if len(inits) > 0 {
		st.InitContainerStatuses = inits
	}
	if !initialized {
		for i := range st.Conditions {
			if st.Conditions[i].Type == corev1.PodInitialized {
				st.Conditions[i].Status = corev1.ConditionFalse
				st.Conditions[i].Reason = "ContainersNotInitialized"
			}
		}
	}
	select {
	case <-r.stopped:
		st = podstatus.Terminated(r.pod, st, "Killed", now())
	default:
	}
	return st
}

// container returns the (init) container called name; "" means the only container.
func (r *podRun) container(name string) (*container, error) {
	for _, c := range append(append([]*container{}, r.containers...), r.inits...) {
		if c.spec.Name == name {
			return c, nil
		}
	}
	if name == "" && len(r.containers) == 1 {
		return r.containers[0], nil
	}
	return nil, fmt.Errorf("pod %s: container %q: %w", r.key, name, backend.ErrNotFound)
}

// removeContainer kills and deletes c's task, then deletes c with its snapshot.
func removeContainer(ctx context.Context, c ctrd.Container) error {
	if t, err := c.Task(ctx, nil); err == nil {
		_ = t.Kill(ctx, sigKill, ctrd.WithKillAll)
		if _, err := t.Delete(ctx, ctrd.WithProcessKill); err != nil && !isNotFound(err) {
			return fmt.Errorf("container %s: delete task: %w", c.ID(), err)
		}
	}
	if err := c.Delete(ctx, ctrd.WithSnapshotCleanup); err != nil && !isNotFound(err) {
		return fmt.Errorf("container %s: delete: %w", c.ID(), err)
	}
	return nil
}
