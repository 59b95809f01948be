package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/scenario"
)

const envOperator = "TIDAL_OPERATOR_BIN"

// fleet runs ScaledObjects objects (each with its Deployment at zero, all on one Redis list, sampled every
// pollingInterval) under Replicas tidal-operator binaries — sharded on Leases when more than one, each polling
// in-process the objects it owns — for Duration. Every 2 s it reads each live replica's RSS (/proc/<pid>/status)
// and /metrics. At KillAfter (when set) it kills replica 0 with SIGKILL and times until the survivors own every
// object (tidal_shard_owned_objects). At the end each survivor's poller lag histogram
// (tidal_poller_scheduler_lag_seconds) tells how many polls started more than 1 s after their due time.
type fleet struct{ bin string }

func (fleet) selfContained() {}

// fleetReplica is one operator process of the fleet.
type fleetReplica struct {
	name, metrics string
	cmd           *exec.Cmd
	stop          func()
	dead          bool
	rss           []float64 // MiB, one per observation
}

func (r fleet) measure(ctx context.Context, env *runEnv) (*result.Run, error) {
	p := env.params
	src, err := newRedisSource(ctx, env.opts.RedisAddress)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	trig := src.Trigger(5)
	err = parallel(ctx, 8, p.ScaledObjects, func(ctx context.Context, i int) error {
		env.progress.Set("fleet: creating %d ScaledObjects", p.ScaledObjects)
		w := scaledWorkload{Name: fmt.Sprintf("so-%05d", i), Mode: scenario.ModeDirect, Trigger: trig, MaxReplicas: 1,
			PollingInterval: p.PollingInterval.D(), Cooldown: p.Cooldown.D()}
		return w.create(ctx, env.opts.Cluster, env.tidal, env.namespace)
	})
	if err != nil {
		return nil, err
	}

	replicas := make([]*fleetReplica, p.Replicas)
	defer func() {
		for _, rep := range replicas {
			if rep != nil && rep.stop != nil {
				rep.stop()
			}
		}
	}()
	for i := range replicas {
		rep, err := r.start(ctx, env, i)
		if err != nil {
			return nil, err
		}
		replicas[i] = rep
	}

	run := &result.Run{Autoscaler: "tidal-operator", Counters: map[string]float64{"replicas": float64(p.Replicas),
		"scaledObjects": float64(p.ScaledObjects)}}
	var rebalance []time.Duration
	var killedAt time.Time
	start := time.Now()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for time.Since(start) < p.Duration.D() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		elapsed := time.Since(start)
		env.progress.Set("fleet: %d objects, %d replicas, %s of %s", p.ScaledObjects, p.Replicas, elapsed.Round(time.Second), p.Duration.D())
		for _, rep := range replicas {
			if !rep.dead {
				if mib, err := rssMiB(rep.cmd.Process.Pid); err == nil {
					rep.rss = append(rep.rss, mib)
				}
			}
		}
		if p.KillAfter > 0 && killedAt.IsZero() && elapsed >= p.KillAfter.D() {
			if err := syscall.Kill(replicas[0].cmd.Process.Pid, syscall.SIGKILL); err != nil {
				return nil, fmt.Errorf("fleet: kill %s: %w", replicas[0].name, err)
			}
			replicas[0].dead, killedAt = true, time.Now()
		}
		if !killedAt.IsZero() && len(rebalance) == 0 {
			owned := 0.0
			for _, rep := range replicas[1:] {
				if fams, err := scrape(ctx, rep.metrics); err == nil {
					owned += gaugeWithLabel(fams["tidal_shard_owned_objects"], "kind", "ScaledObject")
				}
			}
			if int(owned) == p.ScaledObjects {
				rebalance = append(rebalance, time.Since(killedAt))
			}
		}
	}
	if !killedAt.IsZero() {
		if len(rebalance) == 0 {
			return nil, fmt.Errorf("fleet: the survivors did not own all %d objects %s after %s was killed",
				p.ScaledObjects, time.Since(killedAt).Round(time.Second), replicas[0].name)
		}
		run.Metrics = append(run.Metrics, result.NewMetric("rebalance", "SIGKILL of one replica",
			"the survivors' tidal_shard_owned_objects sum to every object (read every 2 s)", rebalance))
	}
	var polls, late float64
	for _, rep := range replicas {
		if len(rep.rss) > 0 {
			first, last, peak := rep.rss[0], rep.rss[len(rep.rss)-1], 0.0
			for _, v := range rep.rss {
				peak = max(peak, v)
			}
			run.Counters["rssFirstMiB/"+rep.name], run.Counters["rssLastMiB/"+rep.name] = first, last
			run.Counters["rssPeakMiB/"+rep.name] = peak
			run.Counters["rssGrowth/"+rep.name] = last / first
		}
		if rep.dead {
			continue
		}
		fams, err := scrape(ctx, rep.metrics)
		if err != nil {
			return nil, fmt.Errorf("fleet: %s: %w", rep.name, err)
		}
		n, onTime, err := within(fams["tidal_poller_scheduler_lag_seconds"], 1)
		if err != nil {
			return nil, fmt.Errorf("fleet: %s: %w", rep.name, err)
		}
		polls, late = polls+n, late+n-onTime
	}
	run.Counters["polls"], run.Counters["pollsLaterThan1s"] = polls, late
	if polls > 0 {
		run.Counters["pollsLaterThan1sRatio"] = late / polls
	}
	return run, nil
}

// start starts replica i: in-process polling, its /metrics on a loopback port, sharded on Leases (4 s) when the
// fleet has more than one replica.
func (r fleet) start(ctx context.Context, env *runEnv, i int) (*fleetReplica, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	rep := &fleetReplica{name: fmt.Sprintf("fleet-%d", i), metrics: "http://" + addr + "/metrics"}
	args := []string{"--kubeconfig=" + env.opts.Cluster.Kubeconfig, "--namespace=" + env.namespace,
		"--watch-namespace=" + env.namespace, "--webhook-addr=", "--metrics-addr=" + addr, "--log-level=warn",
		"--capacity-requests=false"}
	if env.params.Replicas > 1 {
		args = append(args, "--sharding=leases", "--shard-identity="+rep.name, "--leader-elect-lease-duration=4s",
			"--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms")
	} else {
		args = append(args, "--leader-elect=false")
	}
	rep.cmd = exec.Command(r.bin, args...)
	if rep.stop, err = startProcess(ctx, rep.cmd, filepath.Join(env.opts.TmpDir, rep.name+".log")); err != nil {
		return nil, err
	}
	return rep, nil
}

// rssMiB is the resident set of process pid, in MiB.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// scrape reads a Prometheus text endpoint's metric families.
func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// gaugeWithLabel is the value of mf's gauge whose label name is value; 0 when there is none.
func gaugeWithLabel(mf *dto.MetricFamily, name, value string) float64 {
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name && l.GetValue() == value {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// within reads histogram mf: its sample count and how many observations were at most bound (a bucket's upper
// bound).
func within(mf *dto.MetricFamily, bound float64) (count, atMost float64, err error) {
	if len(mf.GetMetric()) != 1 {
		return 0, 0, fmt.Errorf("histogram %s: want one series, got %d", mf.GetName(), len(mf.GetMetric()))
	}
	h := mf.GetMetric()[0].GetHistogram()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == bound {
			return float64(h.GetSampleCount()), float64(b.GetCumulativeCount()), nil
		}
	}
	return 0, 0, fmt.Errorf("histogram %s: no bucket with upper bound %v", mf.GetName(), bound)
}
