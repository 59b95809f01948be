package tidal_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
)

// pollingInterval of the test's ScaledObject, in seconds.
const pollingInterval = 2

// TestOnePollerPerTriggerWithTheAdapter runs the tidal-metrics-adapter and tidal-operator binaries with the
// arguments and certificates the chart renders by default, and proves with Redis INFO commandstats that only
// the adapter polls the trigger: LLEN calls per polling interval are ~1 (not 2), every one of them is a sample
// the adapter counted, the operator counts none of its own, only one process watches the list's keyspace
// channel, and the operator still scales the target from the adapter's stream. A control run without the
// operator's --metrics-adapter-* flags (what the chart rendered before) shows the same measurement sees two
// pollers.
//
// Differences from a pod, forced by running on the host: container paths map to temp dirs holding the rendered
// Secrets; ports are free loopback ports; the operator dials 127.0.0.1 with --metrics-adapter-server-name set to
// the rendered Service name (no cluster DNS); both get --kubeconfig (and the adapter the delegated-auth
// kubeconfigs); both watch only the test's namespace (--watch-namespace), and the operator's webhook is off, so
// neither touches other tests' objects in the shared cluster.
func TestOnePollerPerTriggerWithTheAdapter(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the operator and adapter binaries against the dev cluster")
	}
	opBin, adBin := testenv.Binary(t, "TIDAL_OPERATOR_BIN", "tidal-operator"), testenv.Binary(t, "TIDAL_METRICS_ADAPTER_BIN", "tidal-metrics-adapter")
	t.Run("chart wiring", func(t *testing.T) {
		m := measurePolling(t, opBin, adBin, true)
		if m.llen == 0 {
			t.Fatal("no LLEN calls: nobody polls the trigger")
		}
		// One poller: ~1 LLEN per interval. go-redis retries a command whose reply timed out, so on a loaded
		// machine one sample can run LLEN twice; two pollers make it 2 per interval before any retry.
		if perInterval := float64(m.llen) / m.intervals; perInterval >= 2 {
			t.Errorf("%.2f LLEN calls per polling interval, want ~1: more than one process polls", perInterval)
		}
		if perInterval := m.adapterSamples / m.intervals; perInterval > 1.5 || float64(m.llen) < m.adapterSamples-2 {
			t.Errorf("the adapter took %.0f samples (%.2f per interval) for %d LLEN calls, want one per interval", m.adapterSamples, perInterval, m.llen)
		}
		if m.operatorSamples != 0 {
			t.Errorf("the operator took %.0f samples itself; with the adapter on it must only read the stream", m.operatorSamples)
		}
		if m.subscribers != 1 {
			t.Errorf("%d connections watch the list's keyspace channel, want 1 (the adapter's)", m.subscribers)
		}
	})
	t.Run("control: operator not wired to the adapter", func(t *testing.T) {
		m := measurePolling(t, opBin, adBin, false)
		if m.operatorSamples == 0 || m.adapterSamples == 0 {
			t.Fatalf("operator %.0f and adapter %.0f samples: both should poll without the wiring", m.operatorSamples, m.adapterSamples)
		}
		if perInterval := float64(m.llen) / m.intervals; perInterval < 1.5 {
			t.Errorf("%.2f LLEN calls per polling interval with two pollers; the measurement cannot tell one from two", perInterval)
		}
		if m.subscribers != 2 {
			t.Errorf("%d connections watch the list's keyspace channel, want 2 (one per process)", m.subscribers)
		}
	})
}

// polling is what one measurement window saw.
type polling struct {
	llen                            int     // LLEN calls in the window (INFO commandstats)
	intervals                       float64 // the window in polling intervals
	adapterSamples, operatorSamples float64 // tidal_poller_samples_total{type="redis"} increase in the window
	subscribers                     int64   // connections subscribed to the list's keyspace channel
}

// measurePolling starts the adapter and the operator from the rendered chart (wired: with the operator's
// --metrics-adapter-* flags), scales a worker on a Redis list and measures ten polling intervals.
func measurePolling(t *testing.T, opBin, adBin string, wired bool) polling {
	dc := devcluster.Get(t)
	devcluster.InstallCRDs(t, dc)
	ns := dc.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rdb, redisAddr := privateRedis(t)

	objs, err := renderIn(t, loadChart(t), ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := index(objs)
	adapterDir, operatorDir := writeSecret(t, r, "tidal-metrics-adapter-tls"), writeSecret(t, r, "tidal-operator-stream-tls")
	ad, op := r.container(t, "tidal-metrics-adapter"), r.container(t, "tidal-operator")
	mounts := map[string]string{ad.mounts["tls"]: adapterDir, op.mounts["metrics-adapter-client"]: operatorDir}
	streamPort, adMetrics, opMetrics, securePort := freePort(t), freePort(t), freePort(t), freePort(t)

	adArgs := localArgs(t, ad.args, mounts, map[string]string{
		"stream-addr":  fmt.Sprintf("127.0.0.1:%d", streamPort),
		"metrics-addr": fmt.Sprintf("127.0.0.1:%d", adMetrics),
		"secure-port":  strconv.Itoa(securePort),
	}, "--bind-address=127.0.0.1", "--kubeconfig="+dc.Kubeconfig, "--watch-namespace="+ns,
		"--authentication-kubeconfig="+dc.Kubeconfig, "--authorization-kubeconfig="+dc.Kubeconfig)
	renderedAddr, _ := op.flag("metrics-adapter-address")
	serverName, _, _ := strings.Cut(renderedAddr, ":")
	opSet := map[string]string{
		"metrics-adapter-address": fmt.Sprintf("127.0.0.1:%d", streamPort),
		"metrics-addr":            fmt.Sprintf("127.0.0.1:%d", opMetrics),
		"webhook-addr":            "", "webhook-hosts": "-", "webhook-service": "-",
	}
	opExtra := []string{"--metrics-adapter-server-name=" + serverName, "--kubeconfig=" + dc.Kubeconfig, "--watch-namespace=" + ns}
	if !wired {
		for _, f := range []string{"metrics-adapter-address", "metrics-adapter-ca", "metrics-adapter-cert", "metrics-adapter-key"} {
			opSet[f] = "-"
		}
		opExtra = opExtra[1:]
	}
	testenv.Start(t, adBin, adArgs...)
	testenv.Start(t, opBin, localArgs(t, op.args, mounts, opSet, opExtra...)...)

	list := fmt.Sprintf("onepoller-%d", rand.IntN(1_000_000))
	manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
spec:
  replicas: 0
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec: {containers: [{name: w, image: tidal-demo-worker}]}
---
apiVersion: tidal.dev/v1alpha1
kind: ScaledObject
metadata: {name: worker}
spec:
  scaleTargetRef: {name: worker}
  pollingInterval: %d
  cooldownPeriod: 300
  minReplicaCount: 0
  maxReplicaCount: 5
  triggers:
    - type: redis
      metadata: {address: %q, listName: %q, listLength: "5"}
`, pollingInterval, redisAddr, list)
	if _, err := devcluster.ApplyYAML(ctx, dc.Config, ns, []byte(manifest)); err != nil {
		t.Fatal(err)
	}
	if err := rdb.RPush(ctx, list, "1", "2", "3", "4", "5", "6", "7", "8", "9", "10").Err(); err != nil {
		t.Fatal(err)
	}
	// 10 items at 5 per replica: the operator scales the worker to 2 (wired: fed only by the stream).
	err = devcluster.WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		d, err := dc.Client.AppsV1().Deployments(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 2, nil
	})
	if err != nil {
		t.Fatalf("the worker never scaled to 2 from the adapter's samples: %v", err)
	}

	// Measure over 10 polling intervals.
	adapterBefore, operatorBefore := samples(ctx, t, adMetrics), samples(ctx, t, opMetrics)
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(10 * pollingInterval * time.Second) // a measurement window, not a wait for a condition
	m := polling{llen: commandCalls(ctx, t, rdb, "llen")}
	m.intervals = time.Since(start).Seconds() / pollingInterval
	m.adapterSamples = samples(ctx, t, adMetrics) - adapterBefore
	m.operatorSamples = samples(ctx, t, opMetrics) - operatorBefore
	subs, err := rdb.PubSubNumSub(ctx, "__keyspace@0__:"+list).Result()
	if err != nil {
		t.Fatal(err)
	}
	m.subscribers = subs["__keyspace@0__:"+list]
	t.Logf("wired=%t: in %.1f polling intervals %d LLEN calls (%.2f per interval); samples: adapter %.0f, operator %.0f; %d keyspace subscribers",
		wired, m.intervals, m.llen, float64(m.llen)/m.intervals, m.adapterSamples, m.operatorSamples, m.subscribers)
	return m
}

// privateRedis starts a redis-server of this test's own, so INFO commandstats counts only this test's calls.
func privateRedis(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (.ci/run installs it)")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, port, _ := net.SplitHostPort(addr)
	// The server already publishes keyspace events: Tidal never changes server settings unasked, and subscribes only
	// when the server emits what the watch needs, so this is the configuration under which each process subscribes.
	testenv.Start(t, bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--notify-keyspace-events", "KEA")
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := devcluster.WaitFor(ctx, 50*time.Millisecond, func() (bool, error) { return rdb.Ping(ctx).Err() == nil, nil }); err != nil {
		t.Fatalf("redis-server on %s: %v", addr, err)
	}
	return rdb, addr
}

// commandCalls is the calls= count of one command in INFO commandstats.
func commandCalls(ctx context.Context, t *testing.T, rdb *goredis.Client, cmd string) int {
	t.Helper()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		if err != nil {
			t.Fatalf("commandstats line %q: %v", sc.Text(), err)
		}
		return n
	}
	return 0
}

// samples is tidal_poller_samples_total{type="redis"} on a process's /metrics; 0 when it has no poller.
func samples(ctx context.Context, t *testing.T, port int) float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("/metrics on %d: %v", port, err)
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "tidal_poller_samples_total{") || !strings.Contains(line, `type="redis"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += v
	}
	return total
}

// localArgs turns a container's rendered args into host args: mount paths become local directories, flags in
// set take the given value ("-" drops the flag), and extra is appended.
func localArgs(t *testing.T, args []string, mounts, set map[string]string, extra ...string) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, a := range args {
		name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if v, ok := set[name]; ok {
			seen[name] = true
			if v != "-" {
				out = append(out, "--"+name+"="+v)
			}
			continue
		}
		for from, to := range mounts {
			if strings.HasPrefix(val, from+"/") {
				val = to + strings.TrimPrefix(val, from)
			}
		}
		out = append(out, "--"+name+"="+val)
	}
	for name, v := range set {
		if !seen[name] && v != "-" {
			t.Fatalf("the rendered args %v have no --%s to replace", args, name)
		}
	}
	return append(out, extra...)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
