package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// TestCommandAllowList: a pod runs only the image map's entrypoint or an allow-listed executable; kubectl exec and
// exec probes are held to the same list.
func TestCommandAllowList(t *testing.T) {
	b, _ := newBackend(t) // busybox maps to no entrypoint; only "sh" is allowed
	ctx := context.Background()

	other := shPod("other-binary", "", corev1.RestartPolicyNever)
	other.Spec.Containers[0].Command = []string{"cat", "/etc/hostname"}
	var pe *backend.PodError
	if err := b.Create(ctx, backend.Pod{Pod: other}); !errors.As(err, &pe) || pe.Reason != ReasonCommandNotAllowed {
		t.Fatalf("Create with cat: %v, want PodError %s", err, ReasonCommandNotAllowed)
	}

	probed := shPod("probe-binary", "sleep 30", corev1.RestartPolicyNever)
	probed.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"id"}}}}
	if err := b.Create(ctx, backend.Pod{Pod: probed}); !errors.As(err, &pe) || pe.Reason != ReasonCommandNotAllowed {
		t.Fatalf("Create with an exec probe running id: %v, want PodError %s", err, ReasonCommandNotAllowed)
	}

	pod := shPod("allowed", "sleep 30", corev1.RestartPolicyNever)
	key := backend.KeyOf(pod)
	if err := b.Create(ctx, backend.Pod{Pod: pod}); err != nil {
		t.Fatalf("Create with sh: %v", err)
	}
	waitRunning(t, b, key)
	var ce utilexec.CodeExitError
	err := b.Exec(ctx, key, "main", []string{"id"}, backend.Streams{})
	if !errors.As(err, &ce) || ce.Code != 126 || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("exec id: %v, want exit 126 not allowed", err)
	}
	var out bytes.Buffer
	if err := b.Exec(ctx, key, "main", []string{"/usr/bin/sh", "-c", "echo ok"}, backend.Streams{Stdout: nopCloser{&out}}); err != nil || out.String() != "ok\n" {
		t.Fatalf("exec /usr/bin/sh (allowed as sh): %v %q", err, out.String())
	}
}

// TestSandboxIdentityAndNamespaces: with a Sandbox, the container, kubectl exec and exec probes run as the
// unprivileged uid, the container as PID 1 of its own PID namespace, and root-only files stay unreadable.
func TestSandboxIdentityAndNamespaces(t *testing.T) {
	b, st, dir := sandboxBackend(t, Sandbox{UID: 65532, GID: 65532, Namespaces: true})
	if _, err := New(Options{Images: StaticImages{}, Dir: dir + "/x", Changed: st.changed, Sandbox: &Sandbox{}}); err == nil {
		t.Fatal("a sandbox with uid 0 was accepted")
	}
	if _, err := New(Options{Images: StaticImages{}, Dir: dir + "/x", Changed: st.changed,
		Sandbox: &Sandbox{UID: 65532, GID: 65532, PrivateRoot: true}}); err == nil {
		t.Fatal("a private root without namespaces was accepted")
	}

	pod := shPod("sandboxed", `id -u > "$POD_DIR/who"; echo $$ >> "$POD_DIR/who"; sleep 60`, corev1.RestartPolicyNever)
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", `test "$(id -u)" = 65532`}}}}
	key, run := createPod(t, b, pod)
	eventually(t, "the container wrote its identity", func() bool {
		raw, err := os.ReadFile(run.dir + "/who")
		return err == nil && strings.Count(string(raw), "\n") == 2
	})
	raw, _ := os.ReadFile(run.dir + "/who")
	if got := strings.Fields(string(raw)); got[0] != "65532" || got[1] != "1" {
		t.Fatalf("container uid and pid = %v, want 65532 and 1 (own PID namespace)", got)
	}
	eventually(t, "the exec readiness probe (as uid 65532) passes", func() bool {
		s := st.get(key)
		return s != nil && len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].Ready
	})
	var out bytes.Buffer
	if err := b.Exec(context.Background(), key, "main", []string{"sh", "-c", "id -u; cat /etc/shadow"}, backend.Streams{Stdout: nopCloser{&out}, Stderr: nopCloser{&out}}); err == nil {
		t.Fatalf("exec read /etc/shadow: %q", out.String())
	}
	if !strings.HasPrefix(out.String(), "65532\n") {
		t.Fatalf("exec ran as %q, want uid 65532", out.String())
	}
}

// sandboxBackend is a backend running busybox-mapped pods (sh allowed) in sandbox s, in a temporary directory
// under /tmp that the sandbox user may traverse; it skips the test when not root.
func sandboxBackend(t *testing.T, s Sandbox) (*Backend, *statuses, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root (the virtual node runs as root to switch users)")
	}
	dir, err := os.MkdirTemp("", "tidal-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	st := &statuses{last: map[backend.Key]*corev1.PodStatus{}}
	b, err := New(Options{Images: StaticImages{"busybox": nil}, AllowedCommands: []string{"sh"}, Dir: dir + "/pods",
		Changed: st.changed, Sandbox: &s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b, st, dir
}

// createPod creates pod in b and returns its key and run.
func createPod(t *testing.T, b *Backend, pod *corev1.Pod) (backend.Key, *podRun) {
	t.Helper()
	key := backend.KeyOf(pod)
	if err := b.Create(context.Background(), backend.Pod{Pod: pod}); err != nil {
		t.Fatal(err)
	}
	run, err := b.get(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, run
}

// containerPID is the host PID of the container's running process.
func containerPID(t *testing.T, b *Backend, key backend.Key) int {
	t.Helper()
	waitRunning(t, b, key)
	run, err := b.get(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := run.container("main")
	if err != nil {
		t.Fatal(err)
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	return c.proc.Pid
}

func execOut(t *testing.T, b *Backend, key backend.Key, script string) string {
	t.Helper()
	var out bytes.Buffer
	if err := b.Exec(context.Background(), key, "main", []string{"sh", "-c", script}, backend.Streams{Stdout: nopCloser{&out}, Stderr: nopCloser{&out}}); err != nil {
		t.Fatalf("exec %q: %v: %s", script, err, out.String())
	}
	return out.String()
}

// TestExecJoinsTheContainersNamespaces: kubectl exec (and so exec probes, which run the same way) runs in the
// container's own PID and mount namespaces, as the sandbox user, not in namespaces of its own.
func TestExecJoinsTheContainersNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sandbox Sandbox
	}{
		{"namespaces", Sandbox{UID: 65532, GID: 65532, Namespaces: true}},
		{"private root", Sandbox{UID: 65532, GID: 65532, Namespaces: true, PrivateRoot: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _, _ := sandboxBackend(t, tc.sandbox)
			pod := shPod("target", "sleep 60", corev1.RestartPolicyNever)
			key, _ := createPod(t, b, pod)
			pid := containerPID(t, b, key)
			var want []string
			for _, ns := range []string{"pid", "mnt"} {
				l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
				if err != nil {
					t.Fatal(err)
				}
				self, _ := os.Readlink("/proc/self/ns/" + ns)
				if l == self {
					t.Fatalf("the container shares the node's %s namespace %s", ns, l)
				}
				want = append(want, l)
			}
			want = append(want, "65532")
			got := strings.Fields(execOut(t, b, key, "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; id -u"))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("exec ran in %v, want the container's namespaces and uid %v", got, want)
			}
			if tc.sandbox.PrivateRoot {
				// The container's own /proc: its PID 1 is the container's command.
				if got := execOut(t, b, key, "tr '\\0' ' ' < /proc/1/cmdline"); got != "sh -c sleep 60 " {
					t.Fatalf("exec sees /proc/1 as %q, want the container's sh -c sleep 60", got)
				}
			}
		})
	}
}

// TestPrivateRootHidesTheHost: with a private root a pod sees the bound system directories read-only, its own
// directory writable, an empty /tmp and /proc of its own, and nothing else of the host: a file in a host
// directory outside the bound set is not there, for the container nor for kubectl exec.
func TestPrivateRootHidesTheHost(t *testing.T) {
	b, _, dir := sandboxBackend(t, Sandbox{UID: 65532, GID: 65532, Namespaces: true, PrivateRoot: true})
	hostDir, err := os.MkdirTemp("/var/tmp", "tidal-host-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(hostDir) })
	secret, hostTmp := hostDir+"/secret", dir+"/host-only"
	for _, f := range []string{secret, hostTmp} {
		if err := os.WriteFile(f, []byte("host"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`r="$POD_DIR/report"
test -e %[1]s && echo secret-visible >> "$r" || echo secret-hidden >> "$r"
test -e %[2]s && echo tmp-visible >> "$r" || echo tmp-hidden >> "$r"
touch /usr/tidal-probe 2>/dev/null && echo usr-writable >> "$r" || echo usr-readonly >> "$r"
echo x > /tmp/x && echo tmp-writable >> "$r"
test -r /etc/passwd && echo etc-readable >> "$r"
echo "procs=$(ls -d /proc/[0-9]* | wc -l)" >> "$r"
echo done >> "$r"
sleep 60`, secret, hostTmp)
	pod := shPod("private", script, corev1.RestartPolicyNever)
	key, run := createPod(t, b, pod)
	var report []byte
	eventually(t, "the container wrote its report", func() bool {
		report, err = os.ReadFile(run.dir + "/report")
		return err == nil && strings.HasSuffix(string(report), "done\n")
	})
	lines := strings.Fields(string(report))
	want := []string{"secret-hidden", "tmp-hidden", "usr-readonly", "tmp-writable", "etc-readable"}
	if len(lines) != len(want)+2 || fmt.Sprint(lines[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("report %q, want %v then procs and done", report, want)
	}
	// The container's PID namespace holds sh, sleep and the report's ls: a handful, not the host's processes.
	if n, err := strconv.Atoi(strings.TrimPrefix(lines[len(want)], "procs=")); err != nil || n > 5 {
		t.Fatalf("the container sees %s processes in /proc, want its own few", lines[len(want)])
	}
	if got := execOut(t, b, key, fmt.Sprintf("test -e %s && echo visible || echo hidden; cat /tmp/x", secret)); got != "hidden\nx\n" {
		t.Fatalf("exec sees %q, want the host file hidden and the container's /tmp", got)
	}
}

func waitRunning(t *testing.T, b *Backend, key backend.Key) {
	t.Helper()
	eventually(t, "container running", func() bool {
		run, err := b.get(key)
		if err != nil {
			return false
		}
		c, err := run.container("main")
		if err != nil {
			return false
		}
		run.mu.Lock()
		defer run.mu.Unlock()
		return c.proc != nil
	})
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// TestPrivateRootInitFailureIsTheContainersExit: when the init step cannot build the root (here: a working
// directory the root does not have), the container terminates with 127 and the reason in its log; it never runs
// in the host's root instead.
func TestPrivateRootInitFailureIsTheContainersExit(t *testing.T) {
	b, st, _ := sandboxBackend(t, Sandbox{UID: 65532, GID: 65532, Namespaces: true, PrivateRoot: true})
	pod := shPod("nowd", "echo ran", corev1.RestartPolicyNever)
	pod.Spec.Containers[0].WorkingDir = "/var/lib"
	key, _ := createPod(t, b, pod)
	eventually(t, "the container terminated", func() bool {
		s := st.get(key)
		return s != nil && len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].State.Terminated != nil
	})
	if term := st.get(key).ContainerStatuses[0].State.Terminated; term.ExitCode != 127 {
		t.Fatalf("exit code %d, want 127 from the init step", term.ExitCode)
	}
	rc, err := b.Logs(context.Background(), key, "main", backend.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var logs bytes.Buffer
	_, _ = logs.ReadFrom(rc)
	if !strings.Contains(logs.String(), sandboxInitName+": working directory") || strings.Contains(logs.String(), "ran") {
		t.Fatalf("logs %q, want the init step's working directory error and no run", logs.String())
	}
}
