package process

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
	period := secondsOr(p.PeriodSeconds, 10)
	timeout := secondsOr(p.TimeoutSeconds, 1)
	success := int(max(p.SuccessThreshold, 1))
	failure := int(max(p.FailureThreshold, 1))
	if p.FailureThreshold == 0 {
		failure = 3
	}
	select {
	case <-done:
		return
	case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
	}
	var okRun, failRun int
	for {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := c.probeOnce(ctx, p)
		cancel()
		if err == nil {
			okRun, failRun = okRun+1, 0
			if okRun >= success {
				report(true)
			}
		} else {
			failRun, okRun = failRun+1, 0
			if failRun >= failure {
				report(false)
				failRun = 0
			}
		}
		select {
		case <-done:
			return
		case <-time.After(period):
		}
	}
}

func secondsOr(s int32, def int) time.Duration {
	if s <= 0 {
		return time.Duration(def) * time.Second
	}
	return time.Duration(s) * time.Second
}

// probeOnce runs one probe: exec (in the container's environment), HTTP GET or TCP connect on 127.0.0.1.
func (c *container) probeOnce(ctx context.Context, p *corev1.Probe) error {
	switch {
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return fmt.Errorf("exec probe: empty command")
		}
		cmd := exec.CommandContext(ctx, p.Exec.Command[0], p.Exec.Command[1:]...)
		cmd.Env, cmd.Dir = c.env, c.workDir
		cmd.SysProcAttr = c.run.b.procAttr()
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) } // the whole group
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("exec probe: %w: %s", err, out.String())
		}
		return nil
	case p.HTTPGet != nil:
		port, err := c.port(p.HTTPGet.Port)
		if err != nil {
			return err
		}
		scheme := "http"
		if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		host := p.HTTPGet.Host
		if host == "" {
			host = "127.0.0.1"
		}
		url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), p.HTTPGet.Path)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("http probe: %w", err)
		}
		for _, h := range p.HTTPGet.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("http probe: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("http probe: status %d", resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := c.port(p.TCPSocket.Port)
		if err != nil {
			return err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = "127.0.0.1"
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("tcp probe: %w", err)
		}
		return conn.Close()
	case p.GRPC != nil:
		return fmt.Errorf("grpc probes are not supported by the process backend")
	default:
		return fmt.Errorf("probe has no handler")
	}
}

// port resolves a probe port, by number or by container port name.
func (c *container) port(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.spec.container.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("probe port %q: no container port with that name", p.StrVal)
}
