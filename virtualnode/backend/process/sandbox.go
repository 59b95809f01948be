package process

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
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

	nsenter string // set by prepare
}

func (s *Sandbox) validate() error {
	if s == nil {
		return nil
	}
	if s.UID == 0 || s.GID == 0 {
		return fmt.Errorf("process backend: Sandbox: UID and GID must not be 0 (got %d:%d)", s.UID, s.GID)
	}
	return nil
}

// prepare resolves what the sandbox needs on the node: nsenter for exec into the namespaces.
func (s *Sandbox) prepare() error {
	if s == nil || !s.Namespaces {
		return nil
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("process backend: Sandbox.Namespaces: exec into a container needs nsenter (util-linux): %w", err)
	}
	s.nsenter = nsenter
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
