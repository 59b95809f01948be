package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"

	utilexec "k8s.io/utils/exec"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/containerlog"
)

// Logs implements backend.LogReader.
func (b *Backend) Logs(ctx context.Context, key backend.Key, container string, opts backend.LogOptions) (io.ReadCloser, error) {
	run, err := b.get(key)
	if err != nil {
		return nil, err
	}
	c, err := run.container(container)
	if err != nil {
		return nil, err
	}
	run.mu.Lock()
	current, previous := c.log, c.prevLog
	run.mu.Unlock()
	return containerlog.ReadInstance(ctx, key, container, current, previous, opts)
}

func (r *podRun) container(name string) (*container, error) {
	for _, c := range r.containers {
		if c.name() == name {
			return c, nil
		}
	}
	if name == "" && len(r.containers) == 1 {
		return r.containers[0], nil
	}
	return nil, fmt.Errorf("pod %s: container %q: %w", r.key, name, backend.ErrNotFound)
}

// Exec implements backend.Executor: it runs cmd with the container's environment and working directory. A
// non-zero exit is returned as a k8s.io/utils/exec.CodeExitError so kubectl exec reports the exit code.
func (b *Backend) Exec(ctx context.Context, key backend.Key, container string, cmd []string, s backend.Streams) error {
	run, err := b.get(key)
	if err != nil {
		return err
	}
	c, err := run.container(container)
	if err != nil {
		return err
	}
	if len(cmd) == 0 {
		return &backend.PodError{Reason: backend.ReasonInvalidPod, Message: "exec: empty command"}
	}
	if s.TTY {
		return &backend.PodError{Reason: backend.ReasonUnsupportedFeature, Message: "exec: TTY is not supported by the process backend; drop -t"}
	}
	run.mu.Lock()
	pid := 0
	if c.proc != nil {
		pid = c.proc.Pid
	}
	run.mu.Unlock()
	if pid == 0 {
		return fmt.Errorf("pod %s container %q is not running: %w", key, container, backend.ErrNotFound)
	}
	if cmd[0] != c.spec.argv[0] && !b.commandAllowed(nil, cmd[0]) {
		return utilexec.CodeExitError{Err: notAllowed("exec command", cmd[0]), Code: 126}
	}
	x := b.execCmd(ctx, pid, cmd, c.env, c.workDir)
	if s.Stdin != nil {
		x.Stdin = s.Stdin
	}
	if s.Stdout != nil {
		x.Stdout = s.Stdout
	}
	if s.Stderr != nil {
		x.Stderr = s.Stderr
	}
	err = x.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q: %w", cmd[0], err), Code: ee.ExitCode()}
	}
	if err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) {
			code = 127
		}
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q: %w", cmd[0], err), Code: code}
	}
	return nil
}
