package prometheus

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

const prometheusBinary = "/usr/bin/prometheus"

// realPrometheus is a Prometheus server started for one test, scraping one target every second.
type realPrometheus struct {
	URL string
}

// startPrometheus runs the real Prometheus binary with a temporary config and storage dir, scraping target, and
// waits until it is ready. It skips the test only when the binary is absent (CI installs it: CI_SETUP.sh).
func startPrometheus(t testing.TB, target string) realPrometheus {
	t.Helper()
	bin := prometheusBinary
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath("prometheus")
		if lerr != nil {
			t.Skipf("prometheus binary not found at %s or in PATH (install it: scalers/prometheus/CI_SETUP.sh)", prometheusBinary)
		}
		bin = p
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tidal-test
    scrape_interval: 1s
    static_configs:
      - targets: ['%s']
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		_ = logFile.Close()
	})
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return realPrometheus{URL: url}
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("prometheus exited before becoming ready; log:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("prometheus not ready after 60s; log:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// gaugeTarget is an httptest server exposing one gauge in the Prometheus text format.
type gaugeTarget struct {
	srv   *httptest.Server
	gauge prometheus.Gauge
}

func newGaugeTarget(t testing.TB, name string) gaugeTarget {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "queue depth for the Tidal prometheus scaler test"})
	reg.MustRegister(g)
	srv := scalertest.Serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return gaugeTarget{srv: srv, gauge: g}
}

func TestRealPrometheus(t *testing.T) {
	t.Parallel()
	const metric = "tidal_test_queue_depth"
	target := newGaugeTarget(t, metric)
	target.gauge.Set(42)
	prom := startPrometheus(t, strings.TrimPrefix(target.srv.URL, "http://"))

	s := newScaler(t, map[string]string{
		"serverAddress": prom.URL, "query": fmt.Sprintf(`sum(%s{job="tidal-test"})`, metric),
		"threshold": "10", "activationThreshold": "5",
	}, nil)
	waitValue(t, s, 42, true)
	target.gauge.Set(3)
	waitValue(t, s, 3, false)

	t.Run("empty result with ignoreNullValues=false is an error", func(t *testing.T) {
		strict := newScaler(t, map[string]string{
			"serverAddress": prom.URL, "query": "tidal_metric_that_does_not_exist", "threshold": "1", "ignoreNullValues": "false",
		}, nil)
		if _, _, err := sampleErr(strict); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("Sample error = %v, want an empty-result error", err)
		}
	})
	t.Run("invalid PromQL is reported", func(t *testing.T) {
		bad := newScaler(t, map[string]string{"serverAddress": prom.URL, "query": "sum(", "threshold": "1"}, nil)
		if _, _, err := sampleErr(bad); err == nil || !strings.Contains(err.Error(), "bad_data") {
			t.Fatalf("Sample error = %v, want a bad_data error from Prometheus", err)
		}
	})
}

// waitValue polls until the query returns want: Prometheus scrapes every second.
func waitValue(t testing.TB, s *Scaler, want float64, wantActive bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var (
		v      float64
		active bool
		err    error
	)
	for time.Now().Before(deadline) {
		v, active, err = sampleErr(s)
		if err == nil && v == want && active == wantActive {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("Sample = (%v, %v, %v), want (%v, %v) within 60s", v, active, err, want, wantActive)
}

func BenchmarkSampleRealPrometheus(b *testing.B) {
	target := newGaugeTarget(b, "tidal_bench_gauge")
	target.gauge.Set(7)
	prom := startPrometheus(b, strings.TrimPrefix(target.srv.URL, "http://"))
	s := newScaler(b, map[string]string{"serverAddress": prom.URL, "query": "sum(tidal_bench_gauge)", "threshold": "1"}, nil)
	waitValue(b, s, 7, true)
	scalertest.BenchmarkSample(b, s)
}
