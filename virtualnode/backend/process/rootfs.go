package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DefaultRootBinds are the host paths a private root shows, read-only: programs, libraries and configuration.
var DefaultRootBinds = []string{"/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}

// sandboxInitName is argv[0] of the init step: the backend re-executes its own binary (/proc/self/exe) under this
// name as the first process of the container's new mount and PID namespaces; the package's init function sees the
// name, builds the private root, drops to the sandbox user and executes the container's command, never returning
// to the program's main. Every binary that links this package (tidal-virtual-node, its tests) can do it.
const sandboxInitName = "tidal-process-sandbox-init"

// rootSpec is what the init step gets (as JSON in argv[1]; the command follows as argv[2:]).
type rootSpec struct {
	UID, GID uint32
	// Mount is an empty directory, owned by root, on which the root is built (a tmpfs in the new namespace).
	Mount string
	// Binds are host paths shown read-only at the same path; missing ones are skipped, a symlink is recreated.
	Binds []string
	// PodDir is the pod's directory (working directory, volumes), shown writable at the same path.
	PodDir string
	// Exe is the resolved executable, shown read-only at the same path when no bind shows it.
	Exe     string
	WorkDir string
}

func init() {
	if len(os.Args) < 3 || os.Args[0] != sandboxInitName {
		return
	}
	err := sandboxInit(os.Args[1], os.Args[2:])
	fmt.Fprintf(os.Stderr, "%s: %v\n", sandboxInitName, err)
	os.Exit(127)
}

// sandboxInit builds the private root in the current (new, private) mount namespace, pivots into it, drops to
// the sandbox user and executes argv. It returns only on failure.
func sandboxInit(specJSON string, argv []string) error {
	// fd 3 tells the backend when we are done: closed at exec, or at exit.
	syscall.CloseOnExec(3)
	var s rootSpec
	if err := json.Unmarshal([]byte(specJSON), &s); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if os.Getpid() != 1 {
		return errors.New("not the first process of a new PID namespace")
	}
	if s.UID == 0 || s.GID == 0 {
		return errors.New("refusing to run as root")
	}
	// Nothing mounted here reaches the host, nothing mounted on the host reaches the pod.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	root := s.Mount
	if err := syscall.Mount("tmpfs", root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("root tmpfs on %s: %w", root, err)
	}
	for _, b := range s.Binds {
		if err := bindInto(root, b, true); err != nil {
			return err
		}
	}
	if err := mkdirIn(root, "/proc", 0o555); err != nil {
		return err
	}
	// A /proc of the new PID namespace: the pod sees its own processes only.
	if err := syscall.Mount("proc", filepath.Join(root, "proc"), "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := mkdirIn(root, "/tmp", 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", filepath.Join(root, "tmp"), "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	for _, d := range []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"} {
		if err := bindInto(root, d, false); err != nil {
			return err
		}
	}
	if err := bindInto(root, s.PodDir, false); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, s.Exe)); err != nil {
		if err := bindInto(root, s.Exe, true); err != nil {
			return err
		}
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	// pivot_root(".", "."): the old root is stacked under the new one and detached at once.
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount / read-only: %w", err)
	}
	if err := os.Chdir(s.WorkDir); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if err := dropTo(s.UID, s.GID); err != nil {
		return err
	}
	return syscall.Exec(s.Exe, argv, os.Environ())
}

// dropTo switches every thread to uid/gid with no supplementary groups, sets no_new_privs (no set-user-ID binary
// of the bound /usr gives root back) and re-arms the parent death signal, which a change of credentials clears.
func dropTo(uid, gid uint32) error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(int(gid)); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(int(uid)); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	const prSetNoNewPrivs = 38
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0); e != 0 {
		return fmt.Errorf("no_new_privs: %w", e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); e != 0 {
		return fmt.Errorf("parent death signal: %w", e)
	}
	return nil
}

// bindInto shows the host path p at the same path under root (read-only when ro). A missing path is skipped; a
// symlink is recreated (a merged-/usr system's /bin -> usr/bin).
func bindInto(root, p string, ro bool) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	target := filepath.Join(root, p)
	if err := mkdirIn(root, filepath.Dir(p), 0o755); err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		link, err := os.Readlink(p)
		if err != nil {
			return err
		}
		return os.Symlink(link, target)
	case fi.IsDir():
		if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	default:
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_ = f.Close()
	}
	if err := syscall.Mount(p, target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", p, err)
	}
	if !ro {
		return nil
	}
	if err := syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID, ""); err != nil {
		return fmt.Errorf("bind %s read-only: %w", p, err)
	}
	return nil
}

// mkdirIn creates dir (an absolute path) and its parents under root.
func mkdirIn(root, dir string, perm os.FileMode) error {
	target := filepath.Join(root, dir)
	if !strings.HasPrefix(target, root) {
		return fmt.Errorf("%s is outside the root", dir)
	}
	if err := os.MkdirAll(target, perm); err != nil {
		return err
	}
	return os.Chmod(target, perm)
}
