package beanstalkd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"server": "beanstalkd.default:11300", "tube": "emails", "value": "5"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Check: func(t *testing.T, m Metadata) {
			if m.Value != 5 || m.ActivationValue != 0 || m.IncludeDelayed || m.Timeout != 30*time.Second {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: base("activationValue", "2", "includeDelayed", "true", "timeout", "5", "tube", "jobs.high-(1)"), Check: func(t *testing.T, m Metadata) {
			if m.ActivationValue != 2 || !m.IncludeDelayed || m.Timeout != 5*time.Second || m.Tube != "jobs.high-(1)" {
				t.Errorf("fields wrong: %+v", m)
			}
		}},
		{Name: "timeout as duration", MD: base("timeout", "1500ms"), Check: func(t *testing.T, m Metadata) {
			if m.Timeout != 1500*time.Millisecond {
				t.Errorf("timeout %v", m.Timeout)
			}
		}},
		{Name: "missing server", MD: base("server", scalertest.Delete), WantErr: "server"},
		{Name: "server without port", MD: base("server", "beanstalkd"), WantErr: "server"},
		{Name: "server with bad port", MD: base("server", "beanstalkd:99999"), WantErr: "server"},
		{Name: "missing tube", MD: base("tube", scalertest.Delete), WantErr: "tube"},
		{Name: "tube with a space", MD: base("tube", "my tube"), WantErr: "tube"},
		{Name: "tube starting with a hyphen", MD: base("tube", "-x"), WantErr: "tube"},
		{Name: "missing value", MD: base("value", scalertest.Delete), WantErr: "value"},
		{Name: "non-numeric value", MD: base("value", "five"), WantErr: "value"},
		{Name: "zero value", MD: base("value", "0"), WantErr: "value"},
		{Name: "non-numeric activationValue", MD: base("activationValue", "x"), WantErr: "activationValue"},
		{Name: "bad includeDelayed", MD: base("includeDelayed", "si"), WantErr: "includeDelayed"},
		{Name: "bad timeout", MD: base("timeout", "soon"), WantErr: "timeout"},
		{Name: "zero timeout", MD: base("timeout", "0"), WantErr: "timeout"},
	})
}

// startBeanstalkd runs Debian's beanstalkd on a free loopback port until the test ends and returns its address.
// It skips outside CI when beanstalkd is not installed (scalers/beanstalkd/CI_SETUP.sh installs it).
func startBeanstalkd(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("beanstalkd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("beanstalkd not installed (scalers/beanstalkd/CI_SETUP.sh): %v", err)
		}
		tb.Skipf("beanstalkd not installed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() { cancel(); <-exited })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return addr
		}
		select {
		case <-exited:
			tb.Fatalf("beanstalkd exited before listening on %s", addr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("beanstalkd not listening on %s after 30s", addr)
		}
	}
}

var tubeSeq atomic.Int64

func uniqueTube() string { return fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, tubeSeq.Add(1)) }

func newScaler(tb testing.TB, md map[string]string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, &scalers.TriggerConfig{Type: TriggerType, Name: "emails", Metadata: md})
}

func TestSampleAgainstBeanstalkd(t *testing.T) {
	t.Parallel()
	addr := startBeanstalkd(t)
	tube := uniqueTube()
	s := newScaler(t, map[string]string{"server": addr, "tube": tube, "value": "5", "activationValue": "2"})
	if name := s.MetricSpecs()[0].External.Metric.Name; name != "s0-beanstalkd-"+tube {
		t.Fatalf("metric name %q", name)
	}
	// Before anything is put the tube does not exist: 0, not an error.
	if v, active := scalertest.Sample(t, s, s.metricName); v != 0 || active {
		t.Fatalf("absent tube: (%v, %v), want (0, false)", v, active)
	}
	producer, err := beanstalk.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	pt := beanstalk.NewTube(producer, tube)
	put := func(n int, delay time.Duration) {
		for i := 0; i < n; i++ {
			if _, err := pt.Put([]byte("job"), 1, delay, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(2, 0)
	if v, active := scalertest.Sample(t, s, ""); v != 2 || active {
		t.Fatalf("below activation: (%v, %v), want (2, false)", v, active)
	}
	put(6, 0)
	put(3, time.Hour)
	// Reserve two (still counted) and bury one (not counted).
	worker, err := beanstalk.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	ts := beanstalk.NewTubeSet(worker, tube)
	var ids []uint64
	for i := 0; i < 3; i++ {
		id, _, err := ts.Reserve(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := worker.Bury(ids[2], 1); err != nil {
		t.Fatal(err)
	}
	if v, active := scalertest.Sample(t, s, ""); v != 7 || !active {
		t.Fatalf("above target: (%v, %v), want 5 ready + 2 reserved = (7, true)", v, active)
	}
	withDelayed := newScaler(t, map[string]string{"server": addr, "tube": tube, "value": "5", "includeDelayed": "true"})
	if v, _ := scalertest.Sample(t, withDelayed, ""); v != 10 {
		t.Fatalf("includeDelayed: %v, want 7 + 3 delayed = 10", v)
	}
}

func TestServerDownAndBack(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := newScaler(t, map[string]string{"server": addr, "tube": "x", "value": "1", "timeout": "2"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := s.Sample(ctx); err == nil || !strings.Contains(err.Error(), `beanstalkd trigger "emails"`) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("server down: %v, want a connection error naming the trigger", err)
	}
	// A server that accepts and then hangs up mid-command: an error, and the next Sample dials again.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	s2 := newScaler(t, map[string]string{"server": hang.Addr().String(), "tube": "x", "value": "1", "timeout": "2"})
	for i := 0; i < 2; i++ {
		if _, _, err := s2.Sample(ctx); err == nil {
			t.Fatalf("sample %d against a hanging-up server: no error", i)
		}
	}
}

// BenchmarkSample measures one Sample (a stats-tube round trip) against a local beanstalkd.
func BenchmarkSample(b *testing.B) {
	addr := startBeanstalkd(b)
	tube := uniqueTube()
	c, err := beanstalk.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := beanstalk.NewTube(c, tube).Put([]byte("x"), 1, 0, time.Minute); err != nil {
		b.Fatal(err)
	}
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"server": addr, "tube": tube, "value": "5"}))
}
