package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/virtualnode/backend/containerlog"
)

// containerSpec is a container with its resolved argv.
type containerSpec struct {
	container *corev1.Container
	argv      []string
}

// container supervises the processes of one container: start, wait, restart per restartPolicy with crash-loop
// backoff, probes. Fields below mu are guarded by run.mu.
type container struct {
	run     *podRun
	spec    containerSpec
	env     []string
	workDir string

	// guarded by run.mu
	status   corev1.ContainerStatus
	proc     *os.Process // current process, nil when not running
	pgid     int
	log      *containerlog.File // current instance
	prevLog  *containerlog.File // previous instance, for --previous
	liveFail int                // consecutive liveness failures
	ready    bool               // readiness probe result
	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when supervise returned
	lastCPU  cpuPoint
}

func (c *container) name() string { return c.spec.container.Name }

// snapshot returns the status; run.mu must be held.
func (c *container) snapshot() corev1.ContainerStatus {
	st := *c.status.DeepCopy()
	running := st.State.Running != nil
	st.Ready = running && c.ready
	started := running
	st.Started = &started
	return st
}

func (c *container) stopChan() chan struct{} {
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	if c.stopCh == nil {
		c.stopCh = make(chan struct{})
	}
	return c.stopCh
}

// supervise runs the container until the pod stops or the restart policy says it is done.
func (c *container) supervise() {
	defer close(c.done)
	defer func() {
		if c.run.isStopping() {
			c.finishStopped()
		}
	}()
	stop := c.stopChan()
	policy := c.run.pod.Spec.RestartPolicy
	backoff := c.run.b.opts.RestartBackoff
	for attempt := 0; ; attempt++ {
		if c.run.isStopping() {
			return
		}
		started := time.Now()
		exitCode, reason, msg := c.runOnce()
		if c.run.isStopping() {
			return
		}
		restart := policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && exitCode != 0)
		if !restart {
			return
		}
		// A container that ran for a while resets the backoff, as the kubelet does after 10 minutes.
		if time.Since(started) > 10*time.Minute {
			backoff = c.run.b.opts.RestartBackoff
		}
		c.run.mu.Lock()
		term := c.status.State.Terminated
		c.status.LastTerminationState = corev1.ContainerState{Terminated: term}
		c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container %s (%s: %s)", backoff, c.name(), reason, msg),
		}}
		c.run.mu.Unlock()
		c.run.changed()
		select {
		case <-stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.run.b.opts.RestartBackoffMax)
		c.run.mu.Lock()
		c.status.RestartCount++
		c.run.mu.Unlock()
	}
}

// runOnce starts the process, runs probes and waits for it to exit. It returns the exit code and reason.
func (c *container) runOnce() (int32, string, string) {
	r := c.run
	c.run.mu.Lock()
	instance := c.status.RestartCount
	c.run.mu.Unlock()
	lf, err := containerlog.Create(filepath.Join(r.dir, "logs", fmt.Sprintf("%s-%d.log", unsafeName.ReplaceAllString(c.name(), "-"), instance)), time.Now)
	if err != nil {
		return c.failedStart(err)
	}
	path, err := exec.LookPath(c.spec.argv[0])
	if err != nil {
		lf.Finish()
		c.setLog(lf)
		return c.failedStart(fmt.Errorf("command %q: %w", c.spec.argv[0], err))
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		lf.Finish()
		return c.failedStart(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		lf.Finish()
		return c.failedStart(err)
	}
	cmd, started, err := r.b.containerCmd(path, c.spec.argv, c.env, c.workDir, r.dir)
	if err == nil {
		cmd.Stdout, cmd.Stderr = outW, errW
		if err = cmd.Start(); err != nil {
			_ = started() // releases the init step's pipe: nothing holds it, so this returns at once
		} else if err = started(); err != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		lf.Finish()
		c.setLog(lf)
		return c.failedStart(err)
	}
	outW.Close()
	errW.Close()
	var copying sync.WaitGroup
	copying.Go(func() { lf.CopyFrom(outR, "stdout"); outR.Close() })
	copying.Go(func() { lf.CopyFrom(errR, "stderr"); errR.Close() })

	now := metav1.Now()
	r.mu.Lock()
	if r.stopping {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	c.proc, c.pgid = cmd.Process, cmd.Process.Pid
	c.prevLog, c.log = c.log, lf
	c.liveFail = 0
	c.ready = c.spec.container.ReadinessProbe == nil
	c.status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	c.status.ContainerID = fmt.Sprintf("process://%d", cmd.Process.Pid)
	r.mu.Unlock()
	r.b.log.Debug("container started", zap.String("pod", r.key.String()), zap.String("container", c.name()), zap.Int("pid", cmd.Process.Pid))
	r.changed()

	probesDone := make(chan struct{})
	var probes sync.WaitGroup
	c.startProbes(&probes, probesDone)

	waitErr := cmd.Wait()
	close(probesDone)
	probes.Wait()
	// Background children that kept the pipes open die with the group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	copyDone := make(chan struct{})
	go func() { copying.Wait(); close(copyDone) }()
	select {
	case <-copyDone:
	case <-time.After(2 * time.Second):
	}
	lf.Finish()

	code, reason := exitStatus(cmd.ProcessState, waitErr)
	r.mu.Lock()
	c.proc = nil
	startedAt := metav1.Time{}
	if c.status.State.Running != nil {
		startedAt = c.status.State.Running.StartedAt
	}
	if c.liveFail > 0 && reason != "Completed" {
		reason = "LivenessProbeFailed"
	}
	c.ready = false
	c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, StartedAt: startedAt, FinishedAt: metav1.Now(), ContainerID: c.status.ContainerID,
	}}
	r.mu.Unlock()
	r.changed()
	return code, reason, fmt.Sprintf("exit code %d", code)
}

func (c *container) setLog(lf *containerlog.File) {
	c.run.mu.Lock()
	c.prevLog, c.log = c.log, lf
	c.run.mu.Unlock()
}

// failedStart records a container that could not be started (kubelet: StartError, exit code 128).
func (c *container) failedStart(err error) (int32, string, string) {
	c.run.b.log.Warn("container failed to start", zap.String("pod", c.run.key.String()), zap.String("container", c.name()), zap.Error(err))
	now := metav1.Now()
	c.run.mu.Lock()
	c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 128, Reason: "StartError", Message: err.Error(), StartedAt: now, FinishedAt: now,
	}}
	c.run.mu.Unlock()
	c.run.changed()
	return 128, "StartError", err.Error()
}

func exitStatus(ps *os.ProcessState, err error) (int32, string) {
	if ps == nil {
		return 128, "Error"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal()), "Error"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || ps.ExitCode() != 0 {
		return int32(ps.ExitCode()), "Error"
	}
	return 0, "Completed"
}

// stop sends SIGTERM to the container's process group, SIGKILL after grace, and waits until the supervisor is
// done (so no process can start after stop returns).
func (c *container) stop(grace time.Duration) {
	stop := c.stopChan()
	c.stopOnce.Do(func() { close(stop) })
	c.run.mu.Lock()
	if c.proc != nil {
		_ = syscall.Kill(-c.pgid, syscall.SIGTERM)
	}
	done := c.done
	c.run.mu.Unlock()
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	select {
	case <-done:
		return
	case <-deadline.C:
	}
	for {
		c.run.mu.Lock()
		if c.proc != nil {
			_ = syscall.Kill(-c.pgid, syscall.SIGKILL)
		}
		c.run.mu.Unlock()
		select {
		case <-done:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// finishStopped marks a container that is not running as terminated when the pod stops.
func (c *container) finishStopped() {
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	if c.status.State.Terminated != nil {
		return
	}
	if last := c.status.LastTerminationState.Terminated; last != nil {
		c.status.State = corev1.ContainerState{Terminated: last.DeepCopy()}
		return
	}
	c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 0, Reason: "Completed", FinishedAt: metav1.Now()}}
}
