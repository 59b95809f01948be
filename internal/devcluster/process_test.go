package devcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseReadyLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want ReadyLine
		ok   bool
	}{
		{
			name: "ready line",
			line: "tidal-dev ready kubeconfig=/tmp/x/kubeconfig apiserver=https://127.0.0.1:6443 in 4.2s",
			want: ReadyLine{Kubeconfig: "/tmp/x/kubeconfig", APIServer: "https://127.0.0.1:6443", Startup: 4200 * time.Millisecond},
			ok:   true,
		},
		{
			name: "with a container node",
			line: "tidal-dev ready kubeconfig=/k apiserver=https://127.0.0.1:1 container-node=tidal-containers containerd=/d/ctd/containerd.sock containerd-namespace=tidal in 7.3s",
			want: ReadyLine{Kubeconfig: "/k", APIServer: "https://127.0.0.1:1", Startup: 7300 * time.Millisecond,
				ContainerNode: "tidal-containers", Containerd: "/d/ctd/containerd.sock", ContainerdNamespace: "tidal"},
			ok: true,
		},
		{name: "log line", line: "10:00:00 INFO tidal-dev cluster ready", ok: false},
		{name: "ready without kubeconfig", line: "tidal-dev ready apiserver=https://127.0.0.1:1", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseReadyLine(tc.line)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBadInputExitsWithOneLineError(t *testing.T) {
	t.Parallel()
	bin := testBinary(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		wantField string
	}{
		{name: "negative nodes", args: []string{"--nodes", "-1"}, wantField: "nodes"},
		{name: "bad cpu quantity", args: []string{"--node-cpu", "four"}, wantField: "node-cpu"},
		{name: "bad memory quantity", args: []string{"--node-memory", "16Gx"}, wantField: "node-memory"},
		{name: "zero memory", args: []string{"--node-memory", "0"}, wantField: "node-memory"},
		{name: "data dir is a file", args: []string{"--data-dir", file}, wantField: "data-dir"},
		{name: "data dir below a file", args: []string{"--data-dir", filepath.Join(file, "sub")}, wantField: "data-dir"},
		{name: "data dir not writable", args: []string{"--data-dir", "/proc/tidal-dev-data"}, wantField: "data-dir"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantField: "log-level"},
		{name: "unknown flag", args: []string{"--nodez", "3"}, wantField: "nodez"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, append([]string{"up"}, tc.args...)...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero exit; stderr: %s", err, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			msg := strings.TrimRight(stderr.String(), "\n")
			if strings.Contains(msg, "\n") {
				t.Errorf("stderr has %d lines, want one: %q", strings.Count(msg, "\n")+1, msg)
			}
			if !strings.Contains(msg, tc.wantField) {
				t.Errorf("stderr %q does not name %q", msg, tc.wantField)
			}
		})
	}
}

func TestSecondInstanceStartsAndStopsCleanly(t *testing.T) {
	t.Parallel()
	first := Get(t)
	bin := testBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	second, err := StartProcess(ctx, bin, "up", "--nodes", "1", "--exit-with-parent", "--log-level", "warn")
	if err != nil {
		t.Fatalf("start second tidal-dev: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = second.Stop(time.Minute)
		}
	})
	if second.Ready.APIServer == first.Config.Host {
		t.Fatalf("second apiserver %s is the first one's", second.Ready.APIServer)
	}
	c2, err := Connect(second.Ready.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := c2.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
	if err != nil {
		t.Fatalf("list nodes of second cluster: %v", err)
	}
	if len(nodes.Items) != 1 {
		t.Errorf("second cluster has %d kwok nodes, want 1", len(nodes.Items))
	}
	// The first cluster is unaffected.
	if _, err := first.Client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("first cluster after second started: %v", err)
	}

	ports, err := listeningPorts(second.Pid())
	if err != nil {
		t.Logf("cannot inspect listening ports (%v); checking the apiserver port only", err)
		ports = []int{portOf(t, second.Ready.APIServer)}
	}
	if len(ports) < 4 {
		t.Errorf("second tidal-dev listens on %v, want at least etcd client+peer, apiserver, controller-manager and scheduler", ports)
	}

	stopped = true
	if err := second.Stop(time.Minute); err != nil {
		t.Fatalf("stop second tidal-dev: %v", err)
	}
	if err := syscall.Kill(second.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after stop (kill -0: %v)", second.Pid(), err)
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d not free after stop: %v", p, err)
			continue
		}
		_ = l.Close()
	}
	if dir := kubeconfigDir(second.Ready); !notExist(dir) {
		t.Errorf("temporary data dir %s left behind", dir)
	}
}

func TestExitWithParent(t *testing.T) {
	t.Parallel()
	bin := testBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A shell is the parent; it starts tidal-dev in the background, prints its pid and exits once the ready
	// line is seen, orphaning tidal-dev.
	script := fmt.Sprintf(`%q up --nodes 0 --exit-with-parent --log-level warn > "$1" 2>&1 &
echo $!
while ! grep -q 'tidal-dev ready' "$1"; do sleep 0.2; done`, bin)
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script, "sh", out)
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("parent shell: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(stdout)))
	if err != nil {
		t.Fatalf("pid %q: %v", stdout, err)
	}
	err = WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), nil
	})
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		log, _ := os.ReadFile(out)
		t.Fatalf("tidal-dev %d still running after its parent exited: %v; output: %s", pid, err, log)
	}
}

func portOf(t *testing.T, url string) int {
	t.Helper()
	i := strings.LastIndex(url, ":")
	p, err := strconv.Atoi(url[i+1:])
	if err != nil {
		t.Fatalf("port of %q: %v", url, err)
	}
	return p
}

// listeningPorts lists the TCP ports pid listens on, from /proc (Linux only).
func listeningPorts(pid int) ([]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// local_address is fields[1] ("0100007F:1F90"), st is fields[3] (0A = LISTEN), inode is fields[9].
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			hexPort := fields[1][strings.LastIndex(fields[1], ":")+1:]
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err == nil {
				ports = append(ports, int(p))
			}
		}
		_ = f.Close()
	}
	return ports, nil
}

func TestDataDirIsKeptAndNotShared(t *testing.T) {
	t.Parallel()
	bin := testBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	first, err := StartProcess(ctx, bin, "up", "--nodes", "0", "--data-dir", dir, "--exit-with-parent", "--log-level", "warn")
	if err != nil {
		t.Fatalf("start tidal-dev: %v", err)
	}
	t.Cleanup(func() { _ = first.Stop(time.Minute) })
	if want := filepath.Join(dir, "kubeconfig"); first.Ready.Kubeconfig != want {
		t.Errorf("kubeconfig %q, want %q", first.Ready.Kubeconfig, want)
	}

	var stderr bytes.Buffer
	second := exec.CommandContext(ctx, bin, "up", "--nodes", "0", "--data-dir", dir, "--exit-with-parent")
	second.Stderr = &stderr
	err = second.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
		t.Fatalf("second tidal-dev on the same data dir: %v, want a non-zero exit; stderr: %s", err, stderr.String())
	}
	if msg := strings.TrimSpace(stderr.String()); !strings.Contains(msg, "in use") || strings.Contains(msg, "\n") {
		t.Errorf("stderr = %q, want one line saying the data dir is in use", msg)
	}

	if err := first.Stop(time.Minute); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, kept := range []string{"kubeconfig", "etcd", "pki/ca.crt", "components.log"} {
		if notExist(filepath.Join(dir, kept)) {
			t.Errorf("%s missing from the kept data dir after stop", kept)
		}
	}
}
