package containerd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/pkg/cio"
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

// Exec implements backend.Executor: it runs cmd as a process of the container's running task, with the
// container's env, user and working directory. A non-zero exit is a k8s.io/utils/exec.CodeExitError, so
// kubectl exec reports the exit code.
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
	es := execStreams{tty: s.TTY, resize: s.Resize}
	if s.Stdin != nil {
		es.stdin = s.Stdin
	}
	if s.Stdout != nil {
		es.stdout = s.Stdout
	}
	if s.Stderr != nil {
		es.stderr = s.Stderr
	}
	return c.exec(ctx, cmd, es)
}

type execStreams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	tty            bool
	resize         <-chan backend.TermSize
}

// exec runs cmd in the container's running task and waits for it; ctx ending kills it.
func (c *container) exec(ctx context.Context, cmd []string, s execStreams) error {
	c.run.mu.Lock()
	task := c.task
	c.run.mu.Unlock()
	if task == nil {
		return fmt.Errorf("pod %s container %q is not running: %w", c.run.key, c.spec.Name, backend.ErrNotFound)
	}
	cctx := c.run.b.ctx(context.WithoutCancel(ctx))
	spec, err := c.ctr.Spec(cctx)
	if err != nil {
		return fmt.Errorf("container %q: spec: %w", c.spec.Name, err)
	}
	ps := *spec.Process
	ps.Args = cmd
	ps.Terminal = s.tty
	ps.ConsoleSize = nil
	var idb [6]byte
	_, _ = rand.Read(idb[:])
	id := "exec-" + hex.EncodeToString(idb[:])
	opts := []cio.Opt{cio.WithStreams(s.stdin, s.stdout, s.stderr), cio.WithFIFODir(filepath.Join(c.run.dir, "io"))}
	if s.tty {
		opts = append(opts, cio.WithTerminal)
	}
	proc, err := task.Exec(cctx, id, &ps, cio.NewCreator(opts...))
	if err != nil {
		return utilexec.CodeExitError{Err: fmt.Errorf("exec %q: %w", cmd[0], err), Code: 126}
	}
	defer func() { _, _ = proc.Delete(cctx) }()
	exitCh, err := proc.Wait(cctx)
	if err != nil {
		return fmt.Errorf("exec %q: %w", cmd[0], err)
	}
	if err := proc.Start(cctx); err != nil {
		return utilexec.CodeExitError{Err: fmt.Errorf("exec %q: %w", cmd[0], err), Code: 126}
	}
	var resizing sync.WaitGroup
	stopResize := make(chan struct{})
	if s.resize != nil {
		resizing.Go(func() {
			for {
				select {
				case sz, ok := <-s.resize:
					if !ok {
						return
					}
					_ = proc.Resize(cctx, uint32(sz.Width), uint32(sz.Height))
				case <-stopResize:
					return
				}
			}
		})
	}
	defer func() { close(stopResize); resizing.Wait() }()
	select {
	case st := <-exitCh:
		code, _, err := st.Result()
		if err != nil {
			return fmt.Errorf("exec %q: %w", cmd[0], err)
		}
		if io := proc.IO(); io != nil {
			io.Wait()
		}
		if code != 0 {
			return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd[0], code), Code: int(code)}
		}
		return nil
	case <-ctx.Done():
		_ = proc.Kill(cctx, sigKill)
		<-exitCh
		return ctx.Err()
	}
}

// limitedBuffer keeps the first 4 KiB written to it (probe output for error messages).
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := 4096 - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
