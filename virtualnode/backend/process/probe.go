package process

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"syscall"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/tidalscale/tidal/virtualnode/backend/probe"
)

// startProbes runs the container's readiness and liveness probes until done is closed.
func (c *container) startProbes(wg *sync.WaitGroup, done <-chan struct{}) {
	ctr := c.spec.container
	if p := ctr.ReadinessProbe; p != nil {
		wg.Go(func() {
			c.probeLoop(p, done, func(ok bool) {
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
	if p := ctr.LivenessProbe; p != nil {
		wg.Go(func() {
			c.probeLoop(p, done, func(ok bool) {
				if ok {
					return
				}
				c.run.mu.Lock()
				c.liveFail++
				pgid := c.pgid
				c.run.mu.Unlock()
				c.run.b.log.Info("liveness probe failed, killing container", zap.String("pod", c.run.key.String()), zap.String("container", c.name()))
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			})
		})
	}
}

// probeLoop runs p every period and calls report with the thresholded result whenever it is decided.
func (c *container) probeLoop(p *corev1.Probe, done <-chan struct{}, report func(bool)) {
	probe.Loop(p, done, func(ctx context.Context) error { return c.probeOnce(ctx, p) }, report)
}

// probeOnce runs one probe: exec (in the container's environment), HTTP GET or TCP connect on 127.0.0.1.
func (c *container) probeOnce(ctx context.Context, p *corev1.Probe) error {
	switch {
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return fmt.Errorf("exec probe: empty command")
		}
		c.run.mu.Lock()
		pid := 0
		if c.proc != nil {
			pid = c.proc.Pid
		}
		c.run.mu.Unlock()
		if pid == 0 {
			return fmt.Errorf("exec probe: container not running")
		}
		cmd := c.run.b.execCmd(ctx, pid, p.Exec.Command, c.env, c.workDir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("exec probe: %w: %s", err, out.String())
		}
		return nil
	case p.HTTPGet != nil, p.TCPSocket != nil:
		return probe.Network(ctx, p, "127.0.0.1", c.spec.container.Ports)
	case p.GRPC != nil:
		return fmt.Errorf("grpc probes are not supported by the process backend")
	default:
		return fmt.Errorf("probe has no handler")
	}
}
