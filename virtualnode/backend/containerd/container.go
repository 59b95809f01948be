package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/virtualnode/backend/containerlog"
	"github.com/tidalscale/tidal/virtualnode/backend/probe"
)

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

func isNotFound(err error) bool { return errdefs.IsNotFound(err) }

// container is one (init) container of a pod: its containerd container, made once, and one task per start.
type container struct {
	run  *podRun
	spec *corev1.Container
	id   string
	init bool

	image ctrd.Image     // set by pullImage
	ctr   ctrd.Container // set by create

	// guarded by run.mu
	status   corev1.ContainerStatus
	task     ctrd.Task
	log      *containerlog.File // current instance
	prevLog  *containerlog.File // previous instance, for --previous
	liveFail int
	ready    bool
	lastCPU  cpuPoint
}

func newContainer(r *podRun, spec *corev1.Container, init bool) *container {
	return &container{
		run: r, spec: spec, id: containerID(r.pod, spec.Name), init: init,
		status: corev1.ContainerStatus{
			Name: spec.Name, Image: spec.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		},
	}
}

// snapshot returns the status; run.mu must be held.
func (c *container) snapshot() corev1.ContainerStatus {
	st := *c.status.DeepCopy()
	running := st.State.Running != nil
	st.Ready = running && c.ready && !c.init
	started := running
	st.Started = &started
	return st
}

func (c *container) logger() *zap.Logger {
	return c.run.logger().With(zap.String("container", c.spec.Name))
}

// create makes the containerd container (spec and snapshot) once.
func (c *container) create(ctx context.Context) error {
	if c.ctr != nil {
		return nil
	}
	// A container of that id left by an earlier, failed attempt is replaced.
	if old, err := c.run.b.client.LoadContainer(ctx, c.id); err == nil {
		if err := removeContainer(ctx, old); err != nil {
			return err
		}
	}
	c.run.mu.Lock()
	volDirs := c.run.volDirs
	c.run.mu.Unlock()
	opts, err := c.specOpts(volDirs)
	if err != nil {
		return err
	}
	b := c.run.b
	ctr, err := b.client.NewContainer(ctx, c.id,
		ctrd.WithImage(c.image),
		ctrd.WithSnapshotter(b.opts.Snapshotter),
		ctrd.WithNewSnapshot(c.id+"-rootfs", c.image, snapshots.WithLabels(map[string]string{LabelNode: b.opts.NodeName})),
		ctrd.WithNewSpec(opts...),
		ctrd.WithContainerLabels(map[string]string{
			LabelNode: b.opts.NodeName, "tidal.dev/pod": c.run.key.String(), "tidal.dev/container": c.spec.Name,
		}),
	)
	if err != nil {
		return fmt.Errorf("container %q: create: %w", c.spec.Name, err)
	}
	c.ctr = ctr
	c.run.mu.Lock()
	c.status.ImageID = c.image.Target().Digest.String()
	c.run.mu.Unlock()
	return nil
}

// remove deletes the container's task, the container and its snapshot.
func (c *container) remove(ctx context.Context) error {
	if c.ctr == nil {
		return nil
	}
	return removeContainer(ctx, c.ctr)
}

// signal sends sig to the container's running task, if any (every process of the container for SIGKILL).
func (c *container) signal(ctx context.Context, sig syscall.Signal) {
	c.run.mu.Lock()
	t := c.task
	c.run.mu.Unlock()
	if t == nil {
		return
	}
	var opts []ctrd.KillOpts
	if sig == sigKill {
		opts = append(opts, ctrd.WithKillAll)
	}
	if err := t.Kill(ctx, sig, opts...); err != nil && !isNotFound(err) {
		c.logger().Debug("signal container", zap.Stringer("signal", sig), zap.Error(err))
	}
}

// runToCompletion runs an init container until it exits 0 (true), restarting it on failure unless the
// restart policy is Never (false, the pod failed) or the pod stops (false).
func (c *container) runToCompletion() bool {
	backoff := c.run.b.opts.RestartBackoff
	for {
		code := c.runOnce()
		if c.run.isStopping() {
			return false
		}
		if code == 0 {
			return true
		}
		if c.run.pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			c.logger().Info("init container failed; pod failed", zap.Int32("exitCode", code))
			return false
		}
		if !c.backOff(backoff) {
			return false
		}
		backoff = min(2*backoff, c.run.b.opts.RestartBackoffMax)
	}
}

// supervise runs the container until the pod stops or the restart policy says it is done.
func (c *container) supervise() {
	policy := c.run.pod.Spec.RestartPolicy
	backoff := c.run.b.opts.RestartBackoff
	for {
		started := time.Now()
		code := c.runOnce()
		if c.run.isStopping() {
			return
		}
		if !(policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && code != 0)) {
			return
		}
		// A container that ran for a while resets the backoff, as the kubelet does after 10 minutes.
		if time.Since(started) > 10*time.Minute {
			backoff = c.run.b.opts.RestartBackoff
		}
		if !c.backOff(backoff) {
			return
		}
		backoff = min(2*backoff, c.run.b.opts.RestartBackoffMax)
	}
}

// backOff reports CrashLoopBackOff and waits; false when the pod stopped meanwhile.
func (c *container) backOff(d time.Duration) bool {
	r := c.run
	r.mu.Lock()
	term := c.status.State.Terminated
	c.status.LastTerminationState = corev1.ContainerState{Terminated: term}
	msg := fmt.Sprintf("back-off %s restarting failed container %s", d, c.spec.Name)
	if term != nil {
		msg += fmt.Sprintf(" (%s: exit code %d)", term.Reason, term.ExitCode)
	}
	c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}}
	r.mu.Unlock()
	r.changed()
	select {
	case <-r.stopCh:
		return false
	case <-time.After(d):
	}
	r.mu.Lock()
	c.status.RestartCount++
	r.mu.Unlock()
	return true
}

// runOnce starts a task of the container, runs its probes and waits for it to exit. It returns the exit code.
func (c *container) runOnce() int32 {
	r := c.run
	ctx := r.ctx()
	r.mu.Lock()
	instance := c.status.RestartCount
	r.mu.Unlock()
	lf, err := containerlog.Create(filepath.Join(r.dir, "logs", fmt.Sprintf("%s-%d.log", c.spec.Name, instance)), time.Now)
	if err != nil {
		return c.failedStart(err)
	}
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	var copying sync.WaitGroup
	copying.Go(func() { lf.CopyFrom(outR, "stdout") })
	copying.Go(func() { lf.CopyFrom(errR, "stderr") })
	finishLog := func() {
		_ = outW.Close()
		_ = errW.Close()
		copying.Wait()
		lf.Finish()
	}
	task, err := c.ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, outW, errW), cio.WithFIFODir(filepath.Join(r.dir, "io"))))
	if err != nil {
		finishLog()
		c.setLog(lf)
		return c.failedStart(err)
	}
	exitCh, err := task.Wait(ctx)
	if err == nil {
		err = task.Start(ctx)
	}
	if err != nil {
		_, _ = task.Delete(ctx, ctrd.WithProcessKill)
		finishLog()
		c.setLog(lf)
		return c.failedStart(err)
	}
	r.mu.Lock()
	c.task = task
	c.prevLog, c.log = c.log, lf
	c.liveFail = 0
	c.ready = c.spec.ReadinessProbe == nil
	c.status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now()}}
	c.status.ContainerID = "containerd://" + c.id
	stopping := r.stopping
	r.mu.Unlock()
	if stopping {
		c.signal(ctx, sigKill)
	}
	c.logger().Debug("container started", zap.Uint32("pid", task.Pid()))
	r.changed()

	probesDone := make(chan struct{})
	var probes sync.WaitGroup
	c.startProbes(&probes, probesDone)
	st := <-exitCh
	close(probesDone)
	probes.Wait()
	code, _, exitErr := st.Result()
	if exitErr != nil {
		code = 255
	}
	if _, err := task.Delete(ctx); err != nil && !isNotFound(err) {
		c.logger().Warn("delete task", zap.Error(err))
	}
	finishLog()

	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	r.mu.Lock()
	c.task = nil
	startedAt := metav1.Time{}
	if c.status.State.Running != nil {
		startedAt = c.status.State.Running.StartedAt
	}
	if c.liveFail > 0 && code != 0 {
		reason = "LivenessProbeFailed"
	}
	c.ready = false
	c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, StartedAt: startedAt, FinishedAt: now(), ContainerID: c.status.ContainerID,
	}}
	r.mu.Unlock()
	r.changed()
	return int32(code)
}

func (c *container) setLog(lf *containerlog.File) {
	c.run.mu.Lock()
	c.prevLog, c.log = c.log, lf
	c.run.mu.Unlock()
}

// failedStart records a container that could not be started (kubelet: StartError, exit code 128).
func (c *container) failedStart(err error) int32 {
	c.logger().Warn("container failed to start", zap.Error(err))
	t := now()
	c.run.mu.Lock()
	c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 128, Reason: "StartError", Message: err.Error(), StartedAt: t, FinishedAt: t,
	}}
	c.run.mu.Unlock()
	c.run.changed()
	return 128
}

// startProbes runs the container's readiness and liveness probes until done is closed.
func (c *container) startProbes(wg *sync.WaitGroup, done <-chan struct{}) {
	if c.init {
		return
	}
	if p := c.spec.ReadinessProbe; p != nil {
		wg.Go(func() {
			probe.Loop(p, done, func(ctx context.Context) error { return c.probeOnce(ctx, p) }, func(ok bool) {
				c.run.mu.Lock()
				changed := c.ready != ok
				c.ready = ok
				c.run.mu.Unlock()
				if changed {
					c.run.changed()
				}
			})
		})
	}
	if p := c.spec.LivenessProbe; p != nil {
		wg.Go(func() {
			probe.Loop(p, done, func(ctx context.Context) error { return c.probeOnce(ctx, p) }, func(ok bool) {
				if ok {
					return
				}
				c.run.mu.Lock()
				c.liveFail++
				c.run.mu.Unlock()
				c.logger().Info("liveness probe failed, killing container")
				c.signal(c.run.ctx(), sigKill)
			})
		})
	}
}

// probeOnce runs one probe: exec in the container, or HTTP GET / TCP connect on the pod IP.
func (c *container) probeOnce(ctx context.Context, p *corev1.Probe) error {
	switch {
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return errors.New("exec probe: empty command")
		}
		var out limitedBuffer
		if err := c.exec(ctx, p.Exec.Command, execStreams{stdout: &out, stderr: &out}); err != nil {
			return fmt.Errorf("exec probe: %w: %s", err, out.String())
		}
		return nil
	case p.GRPC != nil:
		return errors.New("grpc probes are not supported by the containerd backend")
	default:
		return probe.Network(ctx, p, c.run.b.opts.NodeIP, c.spec.Ports)
	}
}
