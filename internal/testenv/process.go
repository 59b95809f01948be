package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/devcluster"
)

var buildMu sync.Mutex

// Binary is the path of Tidal's program cmd/<name>: $env when it is set (make test builds the binaries once and
// sets TIDAL_OPERATOR_BIN and friends), else built into a per-user temporary directory.
func Binary(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	root, err := devcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("tidal-test-bin-%d", os.Getuid()), name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s (or set $%s): %v: %s", name, env, err, b)
	}
	return out
}

// Proc is a program a test started; its output goes to a file that is logged when the test fails.
type Proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
	once   sync.Once
}

// Start runs bin with args until the test ends (interrupt, then kill after 20 s) or Kill.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.log", filepath.Base(bin), time.Now().UnixNano()))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, cmd: exec.Command(bin, args...), exited: make(chan struct{}), log: logPath}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); _ = logFile.Close(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), b)
		}
	})
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill ends the process with SIGKILL, as a node failure or an OOM kill would, and waits for it.
func (p *Proc) Kill() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

func (p *Proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// Supervised is a program kept running the way a kubelet keeps a container of a restartPolicy Always pod: it
// is started again a second after each exit, until the test ends.
type Supervised struct {
	stop     chan struct{}
	done     chan struct{}
	restarts atomic.Int32
	mu       sync.Mutex
	cur      *exec.Cmd
}

// Supervise runs bin with args under supervision; its output (every run) goes to one file logged on failure.
func Supervise(t testing.TB, bin string, args ...string) *Supervised {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), fmt.Sprintf("%s-supervised-%d.log", filepath.Base(bin), time.Now().UnixNano()))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	s := &Supervised{stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop(bin, args, logFile)
	t.Cleanup(func() {
		s.mu.Lock()
		close(s.stop)
		if s.cur != nil {
			_ = s.cur.Process.Signal(os.Interrupt)
		}
		s.mu.Unlock()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			s.mu.Lock()
			if s.cur != nil {
				_ = s.cur.Process.Kill()
			}
			s.mu.Unlock()
			<-s.done
		}
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s %s (supervised, %d restarts):\n%s", filepath.Base(bin), strings.Join(args, " "), s.Restarts(), b)
		}
	})
	return s
}

func (s *Supervised) loop(bin string, args []string, out *os.File) {
	defer close(s.done)
	for {
		s.mu.Lock()
		select {
		case <-s.stop:
			s.mu.Unlock()
			return
		default:
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = out, out
		err := cmd.Start()
		if err == nil {
			s.cur = cmd
		}
		s.mu.Unlock()
		if err != nil {
			fmt.Fprintf(out, "supervisor: start %s: %v\n", bin, err)
		} else {
			err = cmd.Wait()
			fmt.Fprintf(out, "supervisor: %s exited: %v\n", filepath.Base(bin), err)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(time.Second):
			s.restarts.Add(1)
		}
	}
}

// Restarts counts how many times the program was started again.
func (s *Supervised) Restarts() int { return int(s.restarts.Load()) }

// PlainKubeconfig writes a kubeconfig for an unauthenticated plain-HTTP server (a test's proxy in front of the
// API server, which authenticates itself) and returns its path.
func PlainKubeconfig(t testing.TB, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: %s\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user: {}\ncurrent-context: c\n", server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FreeAddr is a free loopback host:port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
