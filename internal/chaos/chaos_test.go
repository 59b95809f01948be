package chaos

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/shard"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testpki"
)

var (
	runs   = flag.Int("chaos.runs", 1, "runs of each fault (make chaos: 5)")
	report = flag.String("chaos.report", "", "write the results table (markdown) to this file")
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

const (
	target     = 5  // items per replica
	before     = 23 // items before each fault: 5 replicas
	during     = 38 // items set during the fault: 8 replicas
	fallbackTo = 4
	deadline   = 90 * time.Second // to converge after a fault; a miss is a lost decision, not a slow one
)

// rig is one run's workload, source and operator binary.
type rig struct {
	t     *testing.T
	e     *testenv.Env
	redis *testenv.PrivateRedis
	w     *Workload
	opBin string
	// dev and devArgs are the rig's own control plane, for faults that kill it (nil: the shared dev cluster).
	dev     *devcluster.Process
	devArgs []string
}

// newRig builds the rig on the shared dev cluster, or on its own when the fault restarts the control plane.
func newRig(t *testing.T, ownCluster bool) *rig {
	if !ownCluster {
		return newRigOn(t, testenv.New(t))
	}
	dir := t.TempDir()
	r := &rig{t: t, devArgs: []string{"up", "--nodes=1", "--data-dir=" + filepath.Join(dir, "data"), "--exit-with-parent", "--log-level=warn"}}
	r.startControlPlane()
	c, err := devcluster.Connect(r.dev.Ready.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rr := newRigOn(t, testenv.NewOn(t, c))
	rr.dev, rr.devArgs = r.dev, r.devArgs
	return rr
}

// startControlPlane starts (or restarts, on the same data dir: same port, CA and etcd data) the rig's own tidal-dev.
func (r *rig) startControlPlane() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := devcluster.StartProcess(ctx, devcluster.TestBinary(ctx, r.t), r.devArgs...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = p.Stop(time.Minute) })
	r.dev = p
}

func newRigOn(t *testing.T, e *testenv.Env) *rig {
	r := &rig{t: t, e: e, redis: testenv.StartRedis(t), opBin: testenv.Binary(t, "TIDAL_OPERATOR_BIN", "tidal-operator")}
	rc, list := testenv.RedisList(t, r.redis.Addr)
	r.w = &Workload{Client: e.Cluster.Client, Namespace: e.NS, Name: "work", Redis: rc, List: list, Min: 0, Max: 20}
	r.w.SetTarget(target)
	e.Deployment("work", 0)
	so := testenv.RedisScaledObject("work", "work", r.redis.Addr, list)
	so.Spec.MaxReplicaCount = ptr.To(r.w.Max)
	so.Spec.Fallback = &tidalv1alpha1.Fallback{FailureThreshold: 3, Replicas: fallbackTo}
	// No stabilization and permissive policies: the right replica count is a function of the list alone.
	so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &tidalv1alpha1.HorizontalPodAutoscalerConfig{
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0),
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 1000, PeriodSeconds: 1}}},
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0),
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 1}}},
		}}}
	e.ScaledObject(so)
	return r
}

// operator starts one operator binary watching the rig's namespace, with its Lease there, the webhook and the
// metrics listener off, and short lease timings so a standby takes over within seconds.
func (r *rig) operator(kubeconfig string, leaderElect bool, extra ...string) *testenv.Proc {
	return testenv.Start(r.t, r.opBin, r.operatorArgs(kubeconfig, leaderElect, extra...)...)
}

func (r *rig) operatorArgs(kubeconfig string, leaderElect bool, extra ...string) []string {
	return append([]string{"--kubeconfig=" + kubeconfig, "--namespace=" + r.e.NS, "--watch-namespace=" + r.e.NS,
		"--webhook-addr=", "--metrics-addr=", "--leader-elect=" + strconv.FormatBool(leaderElect),
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"}, extra...)
}

// adapter starts a metrics adapter binary polling the rig's namespace and serving the sample stream on streamAddr
// with certificates of ca, and returns the operator flags that wire an operator to it.
func (r *rig) adapter(ca *testpki.CA, streamAddr string, extra ...string) (*testenv.Proc, []string) {
	bin := testenv.Binary(r.t, "TIDAL_METRICS_ADAPTER_BIN", "tidal-metrics-adapter")
	server, client := ca.Server(r.t, "tidal-metrics-adapter", "127.0.0.1"), ca.Client(r.t, "tidal-operator")
	securePort, err := freeAddr()
	if err != nil {
		r.t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(securePort)
	kc := r.e.Cluster.Kubeconfig
	p := testenv.Start(r.t, bin, append([]string{"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--namespace=" + r.e.NS, "--watch-namespace=" + r.e.NS, "--metrics-addr=", "--bind-address=127.0.0.1", "--secure-port=" + port,
		"--stream-addr=" + streamAddr, "--stream-tls-cert-file=" + server.CertFile, "--stream-tls-key-file=" + server.KeyFile,
		"--stream-client-ca-file=" + ca.CertFile}, extra...)...)
	return p, []string{"--metrics-adapter-address=" + streamAddr, "--metrics-adapter-ca=" + ca.CertFile,
		"--metrics-adapter-cert=" + client.CertFile, "--metrics-adapter-key=" + client.KeyFile, "--metrics-adapter-server-name=127.0.0.1"}
}

// steady loads the source with `before` items and waits for the right count.
func (r *rig) steady() {
	ctx := r.e.Ctx
	if err := r.w.SetItems(ctx, before); err != nil {
		r.t.Fatal(err)
	}
	if _, ok := r.w.Converge(ctx, before, 2*deadline); !ok {
		r.t.Fatalf("the workload never reached %d replicas before the fault", r.w.Right(before))
	}
}

// judged is what a fault is judged on: a Sampler of the deviation while it lasts, the right state to converge
// to once it ends ("" when reached, else what is wrong), and what an object left stuck shows ("" when none).
type judged struct {
	unit   string
	sample Sampler
	wrong  func(ctx context.Context) string
	stuck  func(ctx context.Context) string
}

// measure observes from inject's start until the system converges after it returns, and fails t on a lost
// decision, a wrong zero or a stuck object.
func measure(t *testing.T, ctx context.Context, fault string, j judged, inject func()) Result {
	obs := Observe(ctx, j.sample)
	inject()
	conv, ok := Converge(ctx, deadline, func(ctx context.Context) bool { return j.wrong(ctx) == "" })
	dev, zero, _ := obs.Stop()
	res := Result{Fault: fault, MaxDeviation: dev, Unit: j.unit, WrongZero: zero, Converge: conv}
	if !ok {
		res.Lost = 1
		t.Errorf("%s: decision lost: %s after the fault: %s", fault, deadline, j.wrong(ctx))
	}
	if zero > 0 {
		t.Errorf("%s: the workload was at 0 replicas in %d samples while the source held work", fault, zero)
	}
	var why string
	for i := 0; i < 100; i++ {
		if why = j.stuck(ctx); why == "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if why != "" {
		res.Stuck = 1
		t.Errorf("%s: stuck after the fault: %s", fault, why)
	}
	return res
}

// measure observes from inject's start until convergence on items after it returns.
func (r *rig) measure(fault string, items int64, inject func()) Result {
	return measure(r.t, r.e.Ctx, fault, judged{
		sample: r.w.Sample(),
		wrong: func(ctx context.Context) string {
			got, err := r.w.Replicas(ctx)
			if want := r.w.Right(items); err != nil || got != want {
				return fmt.Sprintf("%d replicas (err %v), want %d", got, err, want)
			}
			return ""
		},
		stuck: func(context.Context) string {
			if r.e.Condition("work", tidalv1alpha1.ConditionReady) != metav1.ConditionTrue {
				return "the ScaledObject is not Ready"
			}
			return ""
		},
	}, inject)
}

func (r *rig) setItems(n int64) {
	if err := r.w.SetItems(r.e.Ctx, n); err != nil {
		r.t.Fatal(err)
	}
}

// leaderPid is the pid in the holder identity (host_pid) of the Lease in the rig's namespace.
func (r *rig) leaderPid() (int, string) {
	leases, err := r.e.Cluster.Client.CoordinationV1().Leases(r.e.NS).List(r.e.Ctx, metav1.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, l := range leases.Items {
		if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
			id := *l.Spec.HolderIdentity
			pid, _ := strconv.Atoi(id[strings.LastIndex(id, "_")+1:])
			return pid, id
		}
	}
	return 0, ""
}

// fault is one fault: run builds its rig, injects it and measures.
type fault struct {
	name string
	run  func(t *testing.T) Result
}

// onRig runs a fault on the operator's rig; ownCluster: the fault kills the control plane, so the rig gets a dev
// cluster of its own.
func onRig(ownCluster bool, run func(r *rig) Result) func(t *testing.T) Result {
	return func(t *testing.T) Result { return run(newRig(t, ownCluster)) }
}

var faults = []fault{
	{"operator kill -9, restarted after 2 s", onRig(false, func(r *rig) Result {
		op := r.operator(r.e.Cluster.Kubeconfig, true)
		r.steady()
		return r.measure("operator kill -9", during, func() {
			op.Kill()
			r.setItems(during)
			time.Sleep(2 * time.Second)
			r.operator(r.e.Cluster.Kubeconfig, true)
		})
	})},
	{"leader change under load", onRig(false, func(r *rig) Result {
		ops := map[int]*testenv.Proc{}
		for i := 0; i < 2; i++ {
			p := r.operator(r.e.Cluster.Kubeconfig, true)
			ops[p.Pid()] = p
		}
		r.steady()
		pid, id := r.leaderPid()
		leader, ok := ops[pid]
		if !ok {
			r.t.Fatalf("lease holder %q is neither operator (%v)", id, ops)
		}
		res := r.measure("leader change under load", during, func() {
			leader.Kill()
			r.setItems(during)
		})
		if next, _ := r.leaderPid(); next == pid {
			r.t.Errorf("the lease still names the killed leader %d", pid)
		}
		return res
	})},
	{"event source down past the cooldown", onRig(false, func(r *rig) Result {
		r.operator(r.e.Cluster.Kubeconfig, true)
		r.steady()
		return r.measure("event source down 8 s (cooldown 2 s)", during, func() {
			r.redis.Stop()
			// Fallback must hold the workload (never 0) while the source is gone.
			testenv.Eventually(r.t, "fallback replicas", 30*time.Second, func() (bool, string) {
				got, err := r.w.Replicas(r.e.Ctx)
				return err == nil && got == fallbackTo, fmt.Sprintf("replicas=%d err=%v", got, err)
			})
			time.Sleep(8 * time.Second)
			r.redis.Start() // empty: the source comes back and is refilled
			r.setItems(during)
		})
	})},
	{"metrics adapter killed and restarted", onRig(false, func(r *rig) Result {
		ca := testpki.NewCA(r.t, "tidal-chaos")
		streamAddr, err := freeAddr()
		if err != nil {
			r.t.Fatal(err)
		}
		adapter, wire := r.adapter(ca, streamAddr)
		r.operator(r.e.Cluster.Kubeconfig, true, wire...)
		r.steady()
		return r.measure("metrics adapter kill -9, restarted after 3 s", during, func() {
			adapter.Kill()
			r.setItems(during)
			time.Sleep(3 * time.Second)
			r.adapter(ca, streamAddr)
		})
	})},
	{"sharded metrics adapters: the owner killed", onRig(false, func(r *rig) Result {
		// Two adapter replicas share the objects by their Leases; the operator streams from the one that does
		// not poll the workload's object, which reaches it through that replica's peer stream. Killing the
		// owner makes the survivor take the object over (within two lease periods) and poll it itself.
		ca := testpki.NewCA(r.t, "tidal-chaos")
		peer := ca.Client(r.t, "tidal-metrics-adapter-peer")
		names := []string{"adapter-a", "adapter-b"}
		owner := shard.Owner(names, r.e.NS+"/work")
		procs, addrs, wires := map[string]*testenv.Proc{}, map[string]string{}, map[string][]string{}
		start := func(name string) {
			procs[name], wires[name] = r.adapter(ca, addrs[name], "--sharding=leases", "--shard-identity="+name,
				"--shard-advertise-address="+addrs[name], "--stream-peer-server-name=127.0.0.1",
				"--stream-peer-tls-cert-file="+peer.CertFile, "--stream-peer-tls-key-file="+peer.KeyFile,
				"--shard-lease-duration=4s", "--shard-renew-deadline=3s", "--shard-retry-period=500ms")
		}
		for _, name := range names {
			addr, err := freeAddr()
			if err != nil {
				r.t.Fatal(err)
			}
			addrs[name] = addr
			start(name)
		}
		survivor := names[0]
		if survivor == owner {
			survivor = names[1]
		}
		r.operator(r.e.Cluster.Kubeconfig, true, wires[survivor]...)
		r.steady()
		return r.measure("sharded metrics adapter: owner kill -9, restarted after 3 s", during, func() {
			procs[owner].Kill()
			r.setItems(during)
			time.Sleep(3 * time.Second)
			start(owner)
		})
	})},
	{"trigger edited under load", onRig(false, func(r *rig) Result {
		r.operator(r.e.Cluster.Kubeconfig, true)
		r.steady()
		const items = 61 // at listLength 10: 7 replicas
		return r.measure("trigger edited under load", items, func() {
			r.setItems(items)
			so, err := r.e.Tidal.TidalV1alpha1().ScaledObjects(r.e.NS).Get(r.e.Ctx, "work", metav1.GetOptions{})
			if err != nil {
				r.t.Fatal(err)
			}
			so.Spec.Triggers[0].Metadata["listLength"] = "10"
			if _, err := r.e.Tidal.TidalV1alpha1().ScaledObjects(r.e.NS).Update(r.e.Ctx, so, metav1.UpdateOptions{}); err != nil {
				r.t.Fatal(err)
			}
			r.w.SetTarget(10)
		})
	})},
	{"API server restart", onRig(true, func(r *rig) Result {
		// The operator exits when it cannot renew its lease (as kube-controller-manager does: never two
		// writers); here it is restarted like a pod's container, by a supervisor.
		op := testenv.Supervise(r.t, r.opBin, r.operatorArgs(r.e.Cluster.Kubeconfig, true)...)
		r.steady()
		defer func() { r.t.Logf("operator restarts: %d", op.Restarts()) }()
		// The whole control plane (etcd, kube-apiserver, controller manager, scheduler, kwok) dies at once and
		// comes back 3 s later on the same data dir: same address and CA, every watch broken, etcd data kept.
		return r.measure("API server kill -9, back after 3 s", during, func() {
			if err := syscall.Kill(r.dev.Pid(), syscall.SIGKILL); err != nil {
				r.t.Fatal(err)
			}
			<-r.dev.Exited()
			r.setItems(during)
			time.Sleep(3 * time.Second)
			r.startControlPlane()
		})
	})},
	{"409/429 storm from the API server", onRig(false, func(r *rig) Result {
		proxy, err := NewStormProxy(r.e.Cluster.Config, freeAddr)
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { _ = proxy.Close() })
		kubeconfig := testenv.PlainKubeconfig(r.t, proxy.URL)
		r.operator(kubeconfig, true)
		r.steady()
		res := r.measure("409/429 storm 8 s", during, func() {
			proxy.Storm(true)
			r.setItems(during)
			time.Sleep(8 * time.Second)
			proxy.Storm(false)
		})
		r.t.Logf("injected: %s", proxy.Injected())
		return res
	})},
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// TestChaos runs every fault -chaos.runs times against the dev cluster and checks nothing is lost and nothing is
// wrong: no decision lost, no object stuck, never 0 replicas while the source holds work.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the operator binary against the dev cluster under faults")
	}
	var results []Result
	for _, f := range slices.Concat(faults, nodeFaults) {
		for i := 0; i < *runs; i++ {
			t.Run(fmt.Sprintf("%s/%d", f.name, i), func(t *testing.T) {
				res := f.run(t)
				t.Logf("%s: worst deviation %d %s, converged in %s, wrong zero %d, lost %d, stuck %d",
					res.Fault, res.MaxDeviation, cmp.Or(res.Unit, "replicas"), res.Converge.Round(10*time.Millisecond), res.WrongZero, res.Lost, res.Stuck)
				results = append(results, res)
			})
		}
	}
	if *report != "" && len(results) > 0 {
		load, _ := os.ReadFile("/proc/loadavg")
		if err := os.WriteFile(*report, []byte(Table(results, strings.Join(strings.Fields(string(load))[:3], " "))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRight pins the right-count formula the suite measures against.
func TestRight(t *testing.T) {
	w := &Workload{Min: 0, Max: 20}
	w.SetTarget(5)
	for n, want := range map[int64]int32{0: 0, 1: 1, 5: 1, 6: 2, 23: 5, 38: 8, 1000: 20} {
		if got := w.Right(n); got != want {
			t.Errorf("Right(%d) = %d, want %d", n, got, want)
		}
	}
	w.Min = 2
	if got := w.Right(0); got != 2 {
		t.Errorf("Right(0) with min 2 = %d", got)
	}
}
