package containerd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/ociarchive"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd"
	"github.com/tidalscale/tidal/virtualnode/backend/containerd/daemon"
)

// testImage is the image every test pod runs: testprog, a static Go binary, on an empty base.
const testImage = "tidal.test/testprog:v1"

// env is what TestMain sets up once: a private containerd with the test image imported.
var env struct {
	skip    string // why the tests cannot run here
	daemon  *daemon.Daemon
	dir     string
	ns      string
	archive []byte
}

func TestMain(m *testing.M) {
	code := func() int {
		if err := setupEnv(); err != nil {
			fmt.Fprintln(os.Stderr, "containerd tests:", err)
			return 1
		}
		defer func() {
			if env.daemon != nil {
				_ = env.daemon.Stop()
			}
			if env.dir != "" {
				_ = os.RemoveAll(env.dir)
			}
		}()
		return devcluster.Main(m)
	}()
	os.Exit(code)
}

func setupEnv() error {
	if err := daemon.Check(); err != nil {
		env.skip = err.Error()
		return nil
	}
	if os.Geteuid() != 0 {
		env.skip = "containerd needs root to run containers"
		return nil
	}
	// Generous: on a loaded machine even building a small program can take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("/tmp", "ctd")
	if err != nil {
		return err
	}
	env.dir = dir
	env.ns = "tidal-test"
	env.daemon, err = daemon.Start(ctx, daemon.Options{Dir: filepath.Join(dir, "d")})
	if err != nil {
		return err
	}
	env.archive, err = ociarchive.GoProgram(ctx, ".", "./testdata/testprog", ociarchive.Image{Ref: testImage, Cmd: []string{"sleep"}})
	if err != nil {
		return err
	}
	client, err := ctrd.New(env.daemon.Address)
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := client.Import(namespaces.WithNamespace(ctx, env.ns), bytes.NewReader(env.archive)); err != nil {
		return fmt.Errorf("import test image: %w", err)
	}
	return nil
}

// recorder keeps the last status the backend reported per pod.
type recorder struct {
	mu   sync.Mutex
	last map[backend.Key]*corev1.PodStatus
}

func (r *recorder) changed(k backend.Key, st *corev1.PodStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[k] = st
}

func (r *recorder) get(k backend.Key) *corev1.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[k].DeepCopy()
}

type harness struct {
	t    testing.TB
	b    *containerd.Backend
	rec  *recorder
	node string
	dir  string
}

func newHarness(t *testing.T, mod func(*containerd.Options)) *harness {
	t.Helper()
	if env.skip != "" {
		t.Skip("containerd backend tests need containerd and runc (" + env.skip + "); .ci/run installs them")
	}
	return startHarness(t, mod)
}

func newBenchHarness(b *testing.B) *harness { return startHarness(b, nil) }

func startHarness(t testing.TB, mod func(*containerd.Options)) *harness {
	h := &harness{t: t, rec: &recorder{last: map[backend.Key]*corev1.PodStatus{}}, node: uniqueName("node")}
	h.dir = filepath.Join(env.dir, h.node)
	opts := containerd.Options{
		Address: env.daemon.Address, Namespace: env.ns, Dir: h.dir, Changed: h.rec.changed, NodeName: h.node,
		RestartBackoff: 500 * time.Millisecond, RestartBackoffMax: 2 * time.Second, Logger: zaptest.NewLogger(t),
		PullTimeout: 20 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	b, err := containerd.New(testContext(t), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.b = b
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

const waitTimeout = 2 * time.Minute

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func newPod(name string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uniqueName("uid"))},
		Spec:       corev1.PodSpec{Containers: containers, RestartPolicy: corev1.RestartPolicyAlways},
	}
}

func prog(name string, args ...string) corev1.Container {
	return corev1.Container{Name: name, Image: testImage, Args: args, ImagePullPolicy: corev1.PullIfNotPresent}
}

// waitStatus waits until cond holds for the pod's last reported status.
func (h *harness) waitStatus(key backend.Key, what string, cond func(*corev1.PodStatus) bool) *corev1.PodStatus {
	h.t.Helper()
	var last *corev1.PodStatus
	err := devcluster.WaitFor(testContext(h.t), 100*time.Millisecond, func() (bool, error) {
		last = h.rec.get(key)
		return last != nil && cond(last), nil
	})
	if err != nil {
		h.t.Fatalf("pod %s: %s: not reached: last status %s", key, what, describe(last))
	}
	return last
}

func describe(st *corev1.PodStatus) string {
	if st == nil {
		return "<none>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s reason=%q message=%q", st.Phase, st.Reason, st.Message)
	for _, cs := range append(append([]corev1.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
		fmt.Fprintf(&b, "; %s ready=%v restarts=%d", cs.Name, cs.Ready, cs.RestartCount)
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Running != nil:
			b.WriteString(" running")
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, " terminated %s (%d): %s", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
		}
	}
	return b.String()
}

func running(st *corev1.PodStatus) bool {
	return st.Phase == corev1.PodRunning && len(st.ContainerStatuses) > 0 && st.ContainerStatuses[0].State.Running != nil
}

func ready(st *corev1.PodStatus) bool {
	if st.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range st.ContainerStatuses {
		if !c.Ready {
			return false
		}
	}
	return true
}

// logs reads a container's log.
func (h *harness) logs(key backend.Key, container string, opts backend.LogOptions) string {
	h.t.Helper()
	rc, err := h.b.Logs(testContext(h.t), key, container, opts)
	if err != nil {
		h.t.Fatalf("logs %s/%s: %v", key, container, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		h.t.Fatalf("logs %s/%s: %v", key, container, err)
	}
	return string(b)
}

// waitLogs waits until the container's log contains want.
func (h *harness) waitLogs(key backend.Key, container, want string) {
	h.t.Helper()
	var got string
	err := devcluster.WaitFor(testContext(h.t), 200*time.Millisecond, func() (bool, error) {
		rc, err := h.b.Logs(testContext(h.t), key, container, backend.LogOptions{})
		if err != nil {
			return false, nil
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		got = string(b)
		return strings.Contains(got, want), nil
	})
	if err != nil {
		h.t.Fatalf("logs of %s/%s: want %q, got %q", key, container, want, got)
	}
}

// exec runs cmd in the container and returns its stdout and error.
func (h *harness) exec(key backend.Key, container string, cmd ...string) (string, error) {
	var out, errOut nopCloser
	err := h.b.Exec(testContext(h.t), key, container, cmd, backend.Streams{Stdout: &out, Stderr: &errOut})
	return out.String() + errOut.String(), err
}

type nopCloser struct{ bytes.Buffer }

func (*nopCloser) Close() error { return nil }

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
