package devcluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyPrefix starts the one line tidal-dev prints to stdout when the cluster is ready.
const readyPrefix = "tidal-dev ready "

// stderrTail is how much of tidal-dev's stderr is kept for error messages.
const stderrTail = 16 << 10

// ReadyLine is the parsed ready line: `tidal-dev ready kubeconfig=PATH apiserver=URL in 4.2s`.
type ReadyLine struct {
	Kubeconfig string
	APIServer  string
	// Startup is the start-up time tidal-dev reports.
	Startup time.Duration
	// ContainerNode, Containerd and ContainerdNamespace are set with --container-node: the node's name, the
	// containerd socket and the namespace its images are taken from.
	ContainerNode, Containerd, ContainerdNamespace string
}

// ParseReadyLine parses tidal-dev's ready line; ok is false for any other line.
func ParseReadyLine(line string) (r ReadyLine, ok bool) {
	if !strings.HasPrefix(line, readyPrefix) {
		return r, false
	}
	fields := strings.Fields(strings.TrimPrefix(line, readyPrefix))
	for i, f := range fields {
		switch {
		case strings.HasPrefix(f, "kubeconfig="):
			r.Kubeconfig = strings.TrimPrefix(f, "kubeconfig=")
		case strings.HasPrefix(f, "apiserver="):
			r.APIServer = strings.TrimPrefix(f, "apiserver=")
		case strings.HasPrefix(f, "container-node="):
			r.ContainerNode = strings.TrimPrefix(f, "container-node=")
		case strings.HasPrefix(f, "containerd="):
			r.Containerd = strings.TrimPrefix(f, "containerd=")
		case strings.HasPrefix(f, "containerd-namespace="):
			r.ContainerdNamespace = strings.TrimPrefix(f, "containerd-namespace=")
		case f == "in" && i+1 < len(fields):
			if d, err := time.ParseDuration(fields[i+1]); err == nil {
				r.Startup = d
			}
		}
	}
	return r, r.Kubeconfig != ""
}

// Process is a running tidal-dev.
type Process struct {
	Ready ReadyLine

	cmd    *exec.Cmd
	exited chan struct{}
	// waitErr is cmd.Wait's result, set before exited is closed.
	waitErr error
	stderr  *tailBuffer
}

// StartProcess runs `bin args...` (args normally start with "up") and waits for the ready line or ctx's end. On
// failure the process is killed and the error carries the end of its stderr.
func StartProcess(ctx context.Context, bin string, args ...string) (*Process, error) {
	p := &Process{cmd: exec.Command(bin, args...), exited: make(chan struct{}), stderr: &tailBuffer{max: stderrTail}}
	var errOut io.Writer = p.stderr
	if os.Getenv(EnvVerbose) != "" {
		errOut = io.MultiWriter(p.stderr, os.Stderr)
	}
	p.cmd.Stderr = errOut
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("tidal-dev: %w", err)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("tidal-dev: start %q: %w", bin, err)
	}
	ready := make(chan ReadyLine, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if r, ok := ParseReadyLine(sc.Text()); ok {
				select {
				case ready <- r:
				default:
				}
			}
		}
		// Drain anything after EOF errors so the child never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()

	select {
	case p.Ready = <-ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("tidal-dev exited before ready (%v): %s", p.waitErr, p.stderr.String())
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.exited
		return nil, fmt.Errorf("tidal-dev not ready: %w: %s", ctx.Err(), p.stderr.String())
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM and waits up to timeout for a clean exit, then kills the process. It reports a non-zero exit
// after SIGTERM as an error.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.exitError()
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("tidal-dev: SIGTERM: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.exitError()
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("tidal-dev: not stopped %s after SIGTERM, killed: %s", timeout, p.stderr.String())
	}
}

func (p *Process) exitError() error {
	if p.waitErr != nil {
		return fmt.Errorf("tidal-dev: %w: %s", p.waitErr, p.stderr.String())
	}
	return nil
}

// Stderr is the end of the process's stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// ModuleRoot walks up from the working directory to the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// BuildBinary builds ./cmd/tidal-dev of this module into a per-user, per-checkout cache directory and returns
// its path. The output path is stable, so the go command skips the (slow) link when nothing changed; a file
// lock serialises test binaries of different packages building at the same time.
func BuildBinary(ctx context.Context) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "tidal-dev-"+strconv.Itoa(os.Getuid()), hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("build tidal-dev: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", fmt.Errorf("build tidal-dev: %w", err)
	}
	defer unlock()

	bin := filepath.Join(dir, "tidal-dev")
	gocmd := "go"
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		gocmd = filepath.Join(goroot, "bin", "go")
	}
	cmd := exec.CommandContext(ctx, gocmd, "build", "-o", bin, "./cmd/tidal-dev")
	cmd.Dir = root
	out := &tailBuffer{max: stderrTail}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tidal-dev in %s: %w: %s", root, err, out.String())
	}
	return bin, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
