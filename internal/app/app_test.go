package app

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/version"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

func TestExecPrintsVersionWithoutRunning(t *testing.T) {
	oldV, oldC := version.Version, version.Commit
	t.Cleanup(func() { version.Version, version.Commit = oldV, oldC })
	version.Version, version.Commit = "v9.8.7", "deadbee"
	fs := flag.NewFlagSet("tidal-test", flag.ContinueOnError)
	var f Flags
	f.Register(fs, RegisterOptions{LeaderElect: true})
	var out bytes.Buffer
	err := Exec("test", fs, &f, []string{"--version"}, &out, func(context.Context, Env) error {
		t.Fatal("run called with --version")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), "tidal-test version v9.8.7 commit deadbee"; got != want {
		t.Errorf("--version printed %q, want %q", got, want)
	}
}

func TestExecRefusesBadLogLevel(t *testing.T) {
	fs := flag.NewFlagSet("tidal-test", flag.ContinueOnError)
	var f Flags
	f.Register(fs, RegisterOptions{})
	err := Exec("test", fs, &f, []string{"--log-level=loud"}, io.Discard, func(context.Context, Env) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("Exec = %v, want an error naming --log-level", err)
	}
	if fs.Lookup("leader-elect") != nil {
		t.Error("--leader-elect registered for a component that does not write")
	}
}

func TestServerServesHealthReadinessAndMetrics(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tidal_test_things_total", Help: "things"})
	reg.MustRegister(c)
	c.Inc()
	var ready error = context.DeadlineExceeded
	s, err := Listen("127.0.0.1:0", reg, func() error { return ready })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while not ready = %d, want 503", code)
	}
	ready = nil
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready = %d", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "tidal_test_things_total 1") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics lacks the registry's series:\n%s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// Two replicas of one lease: one leads; when it stops, the other takes over; a replica whose function returns
// ends its campaign without error.
func TestElectionHandsOverWhenTheLeaderStops(t *testing.T) {
	c := devcluster.Get(t)
	ns := c.Namespace(t)
	newElection := func(id string) *Election {
		e, err := NewElection(c.Client, ElectionOptions{Namespace: ns, Name: "test", Identity: id,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond}, nil, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := newElection("a"), newElection("b")
	ctxA, stopA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA, func(ctx context.Context) error { <-ctx.Done(); return nil }) }()
	testenv.Eventually(t, "a leads", time.Minute, func() (bool, string) { return a.Leading(), "" })

	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneB := make(chan error, 1)
	leadB := make(chan struct{})
	go func() {
		doneB <- b.Run(ctxB, func(ctx context.Context) error { close(leadB); <-ctx.Done(); return nil })
	}()
	time.Sleep(time.Second) // b campaigns against a held lease; it must not lead
	if b.Leading() {
		t.Fatal("both replicas lead")
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Errorf("a.Run after cancel = %v, want nil", err)
	}
	select {
	case <-leadB:
	case <-time.After(60 * time.Second):
		t.Fatal("b did not take over")
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Errorf("b.Run after cancel = %v, want nil", err)
	}
}
