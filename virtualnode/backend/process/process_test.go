package process

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidalscale/tidal/virtualnode/backend"

	"github.com/tidalscale/tidal/internal/testenv"
)

type statuses struct {
	mu   sync.Mutex
	last map[backend.Key]*corev1.PodStatus
}

func (s *statuses) changed(k backend.Key, st *corev1.PodStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[k] = st
}

func (s *statuses) get(k backend.Key) *corev1.PodStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[k]
}

func newBackend(t *testing.T) (*Backend, *statuses) {
	t.Helper()
	st := &statuses{last: map[backend.Key]*corev1.PodStatus{}}
	b, err := New(Options{Images: StaticImages{"busybox": nil}, AllowedCommands: []string{"sh"}, Dir: t.TempDir(), Changed: st.changed, RestartBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b, st
}

func shPod(name, script string, policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{
			Name: "main", Image: "busybox:1.36", Command: []string{"sh", "-c", script},
		}}},
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, what, 30*time.Second, func() (bool, string) { return cond(), "" })
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// pidsFrom reads PIDs the container script wrote to its pod directory.
func pidsFrom(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func TestDeleteKillsTheWholeProcessGroupAfterGrace(t *testing.T) {
	b, st := newBackend(t)
	// The container ignores SIGTERM and leaves a background child: only SIGKILL of the group ends both.
	pod := shPod("orphans", `trap "" TERM; sleep 300 & echo $! $$ > "$POD_DIR/pids"; wait`, corev1.RestartPolicyAlways)
	key := backend.KeyOf(pod)
	if err := b.Create(context.Background(), backend.Pod{Pod: pod}); err != nil {
		t.Fatal(err)
	}
	var pids []int
	eventually(t, "both processes started", func() bool {
		run, err := b.get(key)
		if err != nil {
			return false
		}
		pids = pidsFrom(t, run.dir+"/pids")
		return len(pids) == 2
	})
	start := time.Now()
	if err := b.Delete(context.Background(), key, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "terminal status reported", func() bool {
		s := st.get(key)
		return s != nil && (s.Phase == corev1.PodFailed || s.Phase == corev1.PodSucceeded)
	})
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Errorf("stopped after %s, want the 500ms grace honoured before SIGKILL", d)
	}
	for _, pid := range pids {
		eventually(t, "pid "+strconv.Itoa(pid)+" gone", func() bool { return !alive(pid) })
	}
	if _, err := b.Status(context.Background(), key); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("status after delete: %v, want ErrNotFound", err)
	}
}

func TestCloseLeavesNoProcesses(t *testing.T) {
	b, _ := newBackend(t)
	pod := shPod("closing", `sleep 300 & echo $! $$ > "$POD_DIR/pids"; wait`, corev1.RestartPolicyAlways)
	_, run := createPod(t, b, pod)
	var pids []int
	eventually(t, "processes started", func() bool { pids = pidsFrom(t, run.dir+"/pids"); return len(pids) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		eventually(t, "pid gone", func() bool { return !alive(pid) })
	}
	if err := b.Create(context.Background(), backend.Pod{Pod: shPod("late", "true", corev1.RestartPolicyNever)}); err == nil {
		t.Error("Create after Close succeeded, want an error")
	}
}

func TestUnknownImageIsAPodError(t *testing.T) {
	b, _ := newBackend(t)
	pod := shPod("x", "true", corev1.RestartPolicyNever)
	pod.Spec.Containers[0].Image = "registry.example/unknown:2"
	err := b.Create(context.Background(), backend.Pod{Pod: pod})
	pe, ok := backend.AsPodError(err)
	if !ok || pe.Reason != backend.ReasonImageNotMapped || pe.Retryable || !strings.Contains(pe.Message, "registry.example/unknown:2") {
		t.Fatalf("err = %v, want a non-retryable %s naming the image", err, backend.ReasonImageNotMapped)
	}
}

func TestLogsOptions(t *testing.T) {
	b, st := newBackend(t)
	pod := shPod("logs", `for i in 1 2 3 4 5; do echo line$i; done; sleep 0.2; echo oops >&2`, corev1.RestartPolicyNever)
	key := backend.KeyOf(pod)
	if err := b.Create(context.Background(), backend.Pod{Pod: pod}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod succeeded", func() bool { s := st.get(key); return s != nil && s.Phase == corev1.PodSucceeded })
	read := func(opts backend.LogOptions) string {
		rc, err := b.Logs(context.Background(), key, "main", opts)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		out, _ := io.ReadAll(rc)
		return string(out)
	}
	cases := []struct {
		name string
		opts backend.LogOptions
		want string
	}{
		{name: "all", opts: backend.LogOptions{}, want: "line1\nline2\nline3\nline4\nline5\noops\n"},
		{name: "tail 2", opts: backend.LogOptions{Tail: 2}, want: "line5\noops\n"},
		{name: "limit bytes", opts: backend.LogOptions{LimitBytes: 8}, want: "line1\nli"},
		{name: "since the future", opts: backend.LogOptions{SinceTime: time.Now().Add(time.Hour)}, want: ""},
		{name: "follow ends when the container exited", opts: backend.LogOptions{Follow: true, Tail: 1}, want: "oops\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := read(tc.opts); got != tc.want {
				t.Errorf("logs = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("timestamps", func(t *testing.T) {
		got := read(backend.LogOptions{Timestamps: true, Tail: 1})
		ts, rest, _ := strings.Cut(strings.TrimSpace(got), " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || rest != "oops" {
			t.Errorf("logs with timestamps = %q, want \"<RFC3339Nano> oops\"", got)
		}
	})
}

func TestRestartPolicies(t *testing.T) {
	cases := []struct {
		name        string
		script      string
		policy      corev1.RestartPolicy
		wantPhase   corev1.PodPhase
		wantRestart bool
	}{
		{name: "Never with failure fails", script: "exit 3", policy: corev1.RestartPolicyNever, wantPhase: corev1.PodFailed},
		{name: "Never with success succeeds", script: "exit 0", policy: corev1.RestartPolicyNever, wantPhase: corev1.PodSucceeded},
		{name: "OnFailure with success succeeds", script: "exit 0", policy: corev1.RestartPolicyOnFailure, wantPhase: corev1.PodSucceeded},
		{name: "OnFailure with failure restarts", script: "exit 3", policy: corev1.RestartPolicyOnFailure, wantPhase: corev1.PodRunning, wantRestart: true},
		{name: "Always with success restarts", script: "exit 0", policy: corev1.RestartPolicyAlways, wantPhase: corev1.PodRunning, wantRestart: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, st := newBackend(t)
			pod := shPod("rp", tc.script, tc.policy)
			key := backend.KeyOf(pod)
			if err := b.Create(context.Background(), backend.Pod{Pod: pod}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "expected status", func() bool {
				s := st.get(key)
				if s == nil || s.Phase != tc.wantPhase || len(s.ContainerStatuses) != 1 {
					return false
				}
				if tc.wantRestart {
					return s.ContainerStatuses[0].RestartCount >= 1
				}
				return true
			})
		})
	}
}

func TestParseImages(t *testing.T) {
	cases := []struct {
		name    string
		doc     string
		image   string
		want    []string
		found   bool
		wantErr bool
	}{
		{name: "list", doc: "tidal/demo-worker: [tidal-demo-worker, --fast]", image: "tidal/demo-worker:1.2", want: []string{"tidal-demo-worker", "--fast"}, found: true},
		{name: "command line", doc: "python: python3 -u", image: "python", want: []string{"python3", "-u"}, found: true},
		{name: "digest", doc: "a/b: [x]", image: "a/b@sha256:abc", want: []string{"x"}, found: true},
		{name: "registry with port", doc: "reg:5000/a: [x]", image: "reg:5000/a:1", want: []string{"x"}, found: true},
		{name: "empty mapping", doc: "busybox: []", image: "busybox:1.36", want: []string{}, found: true},
		{name: "unmapped", doc: "busybox: []", image: "alpine"},
		{name: "bad argv", doc: "a: [1, {x: y}]", wantErr: true},
		{name: "not yaml", doc: "a: [", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseImages(tc.doc)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseImages(%q) = %v, want error", tc.doc, m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, found := m.Resolve(tc.image)
			if found != tc.found || strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("Resolve(%q) = %v, %v; want %v, %v", tc.image, got, found, tc.want, tc.found)
			}
		})
	}
}
