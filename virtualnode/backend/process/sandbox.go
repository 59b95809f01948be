package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// ReasonCommandNotAllowed fails a pod whose container would run an executable the node's configuration does not
// allow.
const ReasonCommandNotAllowed = "CommandNotAllowed"

// Sandbox confines every process the backend starts for a pod: containers, kubectl exec and exec probes.
type Sandbox struct {
	// UID and GID the pod's processes run as. Must not be 0: pods never run as the node's own (root) user.
	UID, GID uint32
	// Namespaces runs each container in new mount and PID namespaces (CLONE_NEWNS|CLONE_NEWPID; needs root or
	// CAP_SYS_ADMIN): it cannot signal the node's processes, and everything it starts dies with it. kubectl exec
	// and exec probes join the container's namespaces (nsenter from util-linux, which must be on PATH): they see
	// its processes and its root, not the node's.
	Namespaces bool
	// PrivateRoot (needs Namespaces) gives each container its own root filesystem instead of the host's: RootBinds
	// read-only, the pod's directory writable at its own path, a /proc of its PID namespace, an empty /tmp,
	// /dev/{null,zero,random,urandom}, and the container's executable read-only. Nothing else of the host is
	// visible. Built by an init step (the binary re-executed as the namespaces' first process) that pivots into
	// the root, drops to UID/GID with no_new_privs and executes the command.
	PrivateRoot bool
	// RootBinds are the host paths a private root shows read-only (default DefaultRootBinds).
	RootBinds []string

	nsenter, rootMount string // set by prepare
}

func (s *Sandbox) validate() error {
	if s == nil {
		return nil
	}
	if s.UID == 0 || s.GID == 0 {
		return fmt.Errorf("process backend: Sandbox: UID and GID must not be 0 (got %d:%d)", s.UID, s.GID)
	}
	if s.PrivateRoot && !s.Namespaces {
		return errors.New("process backend: Sandbox: PrivateRoot needs Namespaces")
	}
	for _, p := range s.RootBinds {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			return fmt.Errorf("process backend: Sandbox: RootBinds: want absolute paths other than /, got %q", p)
		}
	}
	return nil
}

// prepare resolves what the sandbox needs on the node: nsenter for exec into the namespaces, and the root-owned
// mount point of private roots.
func (s *Sandbox) prepare(dir string) error {
	if s == nil || !s.Namespaces {
		return nil
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("process backend: Sandbox.Namespaces: exec into a container needs nsenter (util-linux): %w", err)
	}
	s.nsenter = nsenter
	if s.PrivateRoot {
		s.rootMount = filepath.Join(dir, ".root")
		if err := os.MkdirAll(s.rootMount, 0o700); err != nil {
			return fmt.Errorf("process backend: private root mount point: %w", err)
		}
		if len(s.RootBinds) == 0 {
			s.RootBinds = DefaultRootBinds
		}
	}
	return nil
}

// procAttr is the SysProcAttr of every process of a pod: its own process group killed with the node, and the
// sandbox's identity and namespaces.
func (b *Backend) procAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s := b.opts.Sandbox; s != nil {
		a.Credential = &syscall.Credential{Uid: s.UID, Gid: s.GID, NoSetGroups: true}
		if s.Namespaces {
			a.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID
		}
	}
	return a
}

// containerCmd is the command that starts a container's process: argv itself (path resolved on the host), or
// with a private root the init step, which runs as root until it has built the root and then becomes argv.
// After Start, started waits until the process is argv (the init step has executed it, or failed): an exec
// before that would join a half-built root.
func (b *Backend) containerCmd(path string, argv, env []string, workDir, podDir string) (cmd *exec.Cmd, started func() error, err error) {
	s := b.opts.Sandbox
	if s == nil || !s.PrivateRoot {
		return &exec.Cmd{Path: path, Args: argv, Env: env, Dir: workDir, SysProcAttr: b.procAttr()}, func() error { return nil }, nil
	}
	// A path relative to the node's directory is shown at its absolute path.
	if path, err = filepath.Abs(path); err != nil {
		return nil, nil, err
	}
	spec, err := json.Marshal(rootSpec{UID: s.UID, GID: s.GID, Mount: s.rootMount, Binds: s.RootBinds, PodDir: podDir,
		Exe: path, WorkDir: workDir})
	if err != nil {
		return nil, nil, err
	}
	// The init step holds the write end as fd 3, close-on-exec: EOF on the read end means it executed argv or
	// exited.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID}
	cmd = &exec.Cmd{Path: "/proc/self/exe", Args: append([]string{sandboxInitName, string(spec)}, argv...), Env: env,
		SysProcAttr: attr, ExtraFiles: []*os.File{w}}
	started = func() error {
		_ = w.Close()
		defer r.Close()
		_ = r.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("private root: the init step did not finish: %w", err)
		}
		return nil
	}
	return cmd, started, nil
}

// execCmd is the command for kubectl exec and exec probes in the container whose process is pid: with
// namespaces it joins the container's mount and PID namespaces, root and working directory (nsenter) as the
// sandbox user; else a new process like the container's.
func (b *Backend) execCmd(ctx context.Context, pid int, argv, env []string, workDir string) *exec.Cmd {
	s := b.opts.Sandbox
	var x *exec.Cmd
	if s == nil || !s.Namespaces {
		x = exec.CommandContext(ctx, argv[0], argv[1:]...)
		x.Dir, x.SysProcAttr = workDir, b.procAttr()
	} else {
		args := []string{"--target", strconv.Itoa(pid), "--mount", "--pid", "--root", "--wd",
			"--setuid", strconv.FormatUint(uint64(s.UID), 10), "--setgid", strconv.FormatUint(uint64(s.GID), 10), "--"}
		x = exec.CommandContext(ctx, s.nsenter, append(args, argv...)...)
		x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	x.Env = env
	x.Cancel = func() error { return syscall.Kill(-x.Process.Pid, syscall.SIGKILL) } // the whole group
	return x
}

// commandAllowed reports whether argv0 may run in a pod: the image map's own entrypoint for the container's image
// (entrypoint, possibly empty), or one of Options.AllowedCommands. Names are compared as given and as resolved
// on PATH, so "sh" allows "/usr/bin/sh" and the reverse.
func (b *Backend) commandAllowed(entrypoint []string, argv0 string) bool {
	allowed := slices.Clone(b.opts.AllowedCommands)
	if len(entrypoint) > 0 {
		allowed = append(allowed, entrypoint[0])
	}
	if slices.Contains(allowed, argv0) {
		return true
	}
	resolved, err := exec.LookPath(argv0)
	if err != nil {
		return false
	}
	for _, a := range allowed {
		if p, err := exec.LookPath(a); err == nil && p == resolved {
			return true
		}
	}
	return false
}

// notAllowed is the error for a command outside the allow-list.
func notAllowed(what, argv0 string) error {
	return fmt.Errorf("%s %q is not allowed on this virtual node (allowed: the image map's entrypoints and --process-allowed-commands)", what, argv0)
}

// ownPodDir gives the pod's directory to the sandbox user, so its processes can write their working directory
// and read their volumes, and lets that user traverse (not list) the backend's directory.
func (b *Backend) ownPodDir(dir string) error {
	s := b.opts.Sandbox
	if s == nil {
		return nil
	}
	if err := os.Chmod(b.opts.Dir, 0o711); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, int(s.UID), int(s.GID)); err != nil {
			return errors.Join(fmt.Errorf("give %s to the sandbox user", p), err)
		}
		return nil
	})
}
