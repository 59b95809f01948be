// Package daemon starts a private containerd: its own config, root, state and socket under one directory, no
// systemd, no CRI plugin. The containerd backend's tests and `tidal-dev up --container-node` use it; a production
// virtual node connects to the host's containerd instead.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ErrMissing is matched (errors.Is) by Start's error when containerd or runc is not installed.
var ErrMissing = errors.New("containerd and runc are needed: apt-get install containerd runc")

// Options configure Start.
type Options struct {
	// Dir holds the config, root, state, socket and log. Required. Keep it short: the socket path must fit in
	// 108 bytes.
	Dir string
	// Binary is the containerd executable (default: "containerd" on PATH).
	Binary string
	// StartTimeout bounds the wait for the socket (default 30s).
	StartTimeout time.Duration
}

// Daemon is a running containerd. Use Start, then Stop.
type Daemon struct {
	// Address is the containerd gRPC socket.
	Address string
	// Log is the path of containerd's log file.
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Check returns an error matching ErrMissing when containerd or runc is not on PATH.
func Check() error {
	for _, b := range []string{"containerd", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found: %w", b, ErrMissing)
		}
	}
	return nil
}

// config is a containerd 1.6+ configuration (version 2) rooted at dir.
func config(dir string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "containerd.sock"),
		filepath.Join(dir, "containerd.sock.ttrpc"), filepath.Join(dir, "opt"))
}

// Start starts containerd with a config under opts.Dir and waits until its socket accepts connections. When a
// containerd already listens on that socket (a previous `tidal-dev up` left it running) it is reused.
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Dir == "" {
		return nil, errors.New("containerd daemon: Dir: must be set")
	}
	if opts.Binary == "" {
		if err := Check(); err != nil {
			return nil, err
		}
		opts.Binary = "containerd"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("containerd daemon: Dir %q: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("containerd daemon: Dir %q: %w", dir, err)
	}
	d := &Daemon{Address: filepath.Join(dir, "containerd.sock"), Log: filepath.Join(dir, "containerd.log"), done: make(chan struct{})}
	if len(d.Address) > 100 {
		return nil, fmt.Errorf("containerd daemon: socket path %q is longer than a unix socket allows; use a shorter Dir", d.Address)
	}
	if dial(d.Address) == nil {
		close(d.done)
		return d, nil
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config(dir)), 0o600); err != nil {
		return nil, fmt.Errorf("containerd daemon: config: %w", err)
	}
	logf, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd daemon: log: %w", err)
	}
	defer logf.Close()
	_ = os.Remove(d.Address)
	d.cmd = exec.Command(opts.Binary, "--config", cfg)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C to tidal-dev reaches it only through Stop (which waits for it).
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("containerd daemon: start %s: %w", opts.Binary, err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	deadline := time.NewTimer(opts.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if dial(d.Address) == nil {
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("containerd daemon exited at start; see %s", d.Log)
		case <-ctx.Done():
			_ = d.Stop()
			return nil, ctx.Err()
		case <-deadline.C:
			_ = d.Stop()
			return nil, fmt.Errorf("containerd daemon: socket %s not ready after %s; see %s", d.Address, opts.StartTimeout, d.Log)
		case <-tick.C:
		}
	}
}

func dial(addr string) error {
	c, err := net.DialTimeout("unix", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// Stop terminates a containerd that Start started (SIGTERM, SIGKILL after 10s) and waits for it. Containers the
// daemon ran keep their shims; remove them through the client before stopping.
func (d *Daemon) Stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	return nil
}
