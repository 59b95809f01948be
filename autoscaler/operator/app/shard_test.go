package app_test

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/chaos"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
)

// counterCRD is the cheapest scale target: a custom resource with a /scale subresource and no pods behind it.
const counterCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: counters.shardtest.tidal.dev
spec:
  group: shardtest.tidal.dev
  names: {kind: Counter, plural: counters, singular: counter, listKind: CounterList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {replicas: {type: integer, format: int32}}}
          status: {type: object, properties: {replicas: {type: integer, format: int32}}}
`

var counterGVR = schema.GroupVersionResource{Group: "shardtest.tidal.dev", Version: "v1", Resource: "counters"}

// Shard timings of the test's operators: a replica that cannot renew stops claiming after 3 s; the others drop
// it 4 s after they last saw it renew.
const (
	shardLease = 4 * time.Second
	shardRenew = 3 * time.Second
	shardRetry = 500 * time.Millisecond
)

// shardAudit attributes every /scale write to the operator that sent it (each operator talks to the API server
// through its own proxy) and counts, from a watch, the spec changes of every target (its generations): the
// writes that landed. Both are kept per phase of the test.
type shardAudit struct {
	mu     sync.Mutex
	phase  int
	puts   map[int]map[string][]int   // phase → object → the operators of its PUT /scale requests, in order
	gens   map[int]map[string]int     // phase → object → spec changes seen
	values map[int]map[string][]int64 // phase → object → spec.replicas after each change
	lastAt map[int]time.Time          // operator → its last PUT /scale
}

func newShardAudit() *shardAudit {
	return &shardAudit{puts: map[int]map[string][]int{}, gens: map[int]map[string]int{}, values: map[int]map[string][]int64{}, lastAt: map[int]time.Time{}}
}

func (a *shardAudit) next() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.phase++
	return a.phase
}

func (a *shardAudit) put(op int, r *http.Request) {
	if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/scale") || !strings.Contains(r.URL.Path, "/counters/") {
		return
	}
	parts := strings.Split(r.URL.Path, "/")
	name := parts[len(parts)-2]
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.puts[a.phase] == nil {
		a.puts[a.phase] = map[string][]int{}
	}
	a.puts[a.phase][name] = append(a.puts[a.phase][name], op)
	a.lastAt[op] = time.Now()
}

func (a *shardAudit) spec(name string, replicas int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gens[a.phase] == nil {
		a.gens[a.phase] = map[string]int{}
		a.values[a.phase] = map[string][]int64{}
	}
	a.gens[a.phase][name]++
	a.values[a.phase][name] = append(a.values[a.phase][name], replicas)
}

// check fails t for every object whose /scale writes in phase interleave two operators (A, B, A: two writers at
// once) and for every target that did not change exactly once. In a steady phase (no membership change) every
// object must also have one writer; in a hand-over phase an object may pass from its old owner to its new one
// (A then B: the old owner's request was refused or landed before the new owner's). It returns how many
// objects each operator wrote.
func (a *shardAudit) check(t *testing.T, phase, n int, handover bool) map[int]int {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	writers, handedOver := map[int]int{}, 0
	for name, seq := range a.puts[phase] {
		runs := slices.Compact(slices.Clone(seq))
		seen := map[int]bool{}
		for _, op := range runs {
			if seen[op] {
				t.Errorf("phase %d: %s's /scale was written by two operators at once: writers in order %v", phase, name, seq)
				break
			}
			seen[op] = true
			writers[op]++
		}
		if len(runs) > 1 {
			handedOver++
			if !handover {
				t.Errorf("phase %d: %s's /scale was written by operators %v with no membership change", phase, name, seq)
			}
		}
	}
	for name, changes := range a.gens[phase] {
		if changes > 1 {
			t.Errorf("phase %d: %s's target changed %d times (%v), written by operators %v; want once",
				phase, name, changes, a.values[phase][name], a.puts[phase][name])
		}
	}
	if len(a.gens[phase]) != n {
		t.Errorf("phase %d: %d of %d targets changed", phase, len(a.gens[phase]), n)
	}
	if handover {
		t.Logf("phase %d: %d objects written by their old then their new owner", phase, handedOver)
	}
	return writers
}

func (a *shardAudit) last(op int) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastAt[op]
}

// TestShardingOperators: three operator processes with --sharding=leases share 300 ScaledObjects, each object
// written by exactly one of them. Killing one (SIGKILL) hands its objects to the others within two lease periods
// with no object written by two operators; adding one moves objects to it without dropping any; a member whose
// Lease renewals are cut (it can still write /scale) stops writing.
func TestShardingOperators(t *testing.T) {
	const n = 300
	e := setup(t)
	counters := counterResource(e)
	redis := testenv.StartRedis(t)
	rc, list := testenv.RedisList(t, redis.Addr)
	// setItems replaces the list in one transaction: a poll never sees it empty or half filled.
	setItems := func(k int) {
		t.Helper()
		items := make([]any, k)
		for i := range items {
			items[i] = i
		}
		if _, err := rc.TxPipelined(e.Ctx, func(p goredis.Pipeliner) error {
			p.Del(e.Ctx, list)
			p.RPush(e.Ctx, list, items...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	setItems(2)

	// 300 Counters at 2 replicas and their ScaledObjects: one item per replica, no stabilization, so the right
	// count is the list's length and every change of it is one /scale write per object.
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%03d", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if err := createShardedObject(e, counters, names[i], redis.Addr, list); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	audit := newShardAudit()
	mirror := startCounterMirror(t, e, counters, audit)
	defer mirror()

	bin := testenv.Binary(t, "TIDAL_OPERATOR_BIN", "tidal-operator")
	type operator struct {
		proc    *testenv.Proc
		proxy   *chaos.StormProxy
		metrics string
	}
	ops := map[int]*operator{}
	start := func(i int) {
		proxy, err := chaos.NewStormProxy(e.Cluster.Config, func() (string, error) { return testenv.FreeAddr(t), nil })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = proxy.Close() })
		proxy.Observe(func(r *http.Request) { audit.put(i, r) })
		addr := testenv.FreeAddr(t)
		p := testenv.Start(t, bin, "--kubeconfig="+testenv.PlainKubeconfig(t, proxy.URL), "--namespace="+e.NS, "--watch-namespace="+e.NS,
			"--webhook-addr=", "--metrics-addr="+addr, "--sharding=leases", "--shard-identity=op-"+strconv.Itoa(i), "--leader-elect=false",
			"--leader-elect-lease-duration="+shardLease.String(), "--leader-elect-renew-deadline="+shardRenew.String(),
			"--leader-elect-retry-period="+shardRetry.String())
		ops[i] = &operator{proc: p, proxy: proxy, metrics: addr}
	}
	owned := func(live ...int) (map[int]int, int) {
		got, sum := map[int]int{}, 0
		for _, i := range live {
			v := scrapeGauge(ops[i].metrics, `tidal_shard_owned_objects{kind="ScaledObject"}`)
			got[i] = v
			sum += max(v, 0)
		}
		return got, sum
	}
	waitOwned := func(what string, timeout time.Duration, live ...int) time.Duration {
		t.Helper()
		begin := time.Now()
		e.Eventually(what, timeout, func() (bool, string) {
			got, sum := owned(live...)
			for _, v := range got {
				if v <= 0 {
					return false, fmt.Sprint(got)
				}
			}
			return sum == n, fmt.Sprintf("owned %v, sum %d", got, sum)
		})
		return time.Since(begin)
	}
	// A phase changes the list to items (begin) and waits until every target follows (end); the audit then
	// checks that no object had two writers and each target changed exactly once. Phases begin at the moment
	// membership changes, so the writes race the hand-over.
	type phaseRun struct {
		n, items int
		name     string
		handover bool
	}
	begin := func(name string, items int, handover bool) phaseRun {
		t.Helper()
		p := phaseRun{n: audit.next(), items: items, name: name, handover: handover}
		setItems(items)
		return p
	}
	end := func(p phaseRun, timeout time.Duration) map[int]int {
		t.Helper()
		e.Eventually(fmt.Sprintf("phase %d (%s): every target at %d", p.n, p.name, p.items), timeout, func() (bool, string) {
			l, err := counters.List(e.Ctx, metav1.ListOptions{})
			if err != nil {
				return false, err.Error()
			}
			off := 0
			for _, c := range l.Items {
				if r, _, _ := unstructured.NestedInt64(c.Object, "spec", "replicas"); r != int64(p.items) {
					off++
				}
			}
			return off == 0 && len(l.Items) == n, fmt.Sprintf("%d of %d targets not at %d", off, len(l.Items), p.items)
		})
		time.Sleep(time.Second) // writes still in flight land in this phase
		writers := audit.check(t, p.n, n, p.handover)
		t.Logf("phase %d (%s): objects written by each operator: %v", p.n, p.name, writers)
		return writers
	}

	for i := range 3 {
		start(i)
	}
	waitOwned("three operators own all 300 objects", 120*time.Second, 0, 1, 2)
	w := end(begin("three members", 4, false), 120*time.Second)
	if len(w) != 3 {
		t.Errorf("writers %v; want all three operators writing their share", w)
	}

	// Kill op-2 as the load changes: op-0 and op-1 take its objects over within two lease periods (plus one
	// round to notice), and write them.
	ops[2].proc.Kill()
	p := begin("kill", 2, true)
	took := waitOwned("op-2's objects taken over", 60*time.Second, 0, 1)
	t.Logf("takeover after SIGKILL: %s (lease %s)", took.Round(10*time.Millisecond), shardLease)
	if took > 2*shardLease+2*shardRetry {
		t.Errorf("takeover took %s; want within two lease periods (%s)", took, 2*shardLease)
	}
	if w = end(p, 120*time.Second); w[2] != 0 {
		t.Errorf("the killed operator wrote %d objects", w[2])
	}

	// Add op-3 as the load changes: objects move to it while they are being written, none is dropped or
	// written twice; then it writes its share.
	start(3)
	p = begin("join", 4, true)
	waitOwned("op-3 owns its share", 60*time.Second, 0, 1, 3)
	end(p, 120*time.Second)
	if w = end(begin("after join", 2, false), 120*time.Second); w[3] == 0 {
		t.Errorf("writers %v; the new operator wrote nothing", w)
	}

	// Partition op-0 from its Lease as the load changes: it can still reach /scale, so it may write until its
	// renew deadline, but not after; then op-1 and op-3 own and write everything.
	ops[0].proxy.Cut(func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/leases") })
	cutAt := time.Now()
	p = begin("partition", 4, true)
	waitOwned("op-0's objects taken over", 60*time.Second, 1, 3)
	end(p, 120*time.Second)
	if w = end(begin("after partition", 2, false), 120*time.Second); w[0] != 0 {
		t.Errorf("the partitioned operator wrote %d objects", w[0])
	}
	if last := audit.last(0); last.After(cutAt.Add(shardRenew + time.Second)) {
		t.Errorf("the partitioned operator wrote /scale %s after the cut; want nothing after its renew deadline (%s)",
			last.Sub(cutAt).Round(time.Millisecond), shardRenew)
	}
}

// counterResource installs the Counter CRD and returns its client in the test's namespace once it is served.
func counterResource(e *env) dynamic.ResourceInterface {
	e.T.Helper()
	if _, err := devcluster.ApplyYAML(e.Ctx, e.Cluster.Config, "", []byte(counterCRD)); err != nil {
		e.T.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(e.Cluster.Config)
	if err != nil {
		e.T.Fatal(err)
	}
	counters := dyn.Resource(counterGVR).Namespace(e.NS)
	e.Eventually("the Counter CRD served", 30*time.Second, func() (bool, string) {
		_, err := counters.List(e.Ctx, metav1.ListOptions{})
		return err == nil, fmt.Sprint(err)
	})
	return counters
}

// createShardedObject creates a Counter at 2 replicas and its ScaledObject.
func createShardedObject(e *env, counters dynamic.ResourceInterface, name, addr, list string) error {
	c := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "shardtest.tidal.dev/v1", "kind": "Counter",
		"metadata": map[string]any{"name": name}, "spec": map[string]any{"replicas": int64(2)},
	}}
	if _, err := counters.Create(e.Ctx, c, metav1.CreateOptions{}); err != nil {
		return err
	}
	so := testenv.RedisScaledObject(name, name, addr, list)
	so.Spec.ScaleTargetRef = tidalv1alpha1.ScaleTarget{APIVersion: "shardtest.tidal.dev/v1", Kind: "Counter", Name: name}
	so.Spec.Triggers[0].Metadata["listLength"] = "1"
	so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &tidalv1alpha1.HorizontalPodAutoscalerConfig{
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0),
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 1000, PeriodSeconds: 1}}},
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0),
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 1}}},
		}}}
	_, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Create(e.Ctx, so, metav1.CreateOptions{})
	return err
}

// startCounterMirror watches the Counters: every spec change (a new generation) is a write that landed and is
// counted in the audit, and status.replicas is set to spec.replicas as a workload controller would.
func startCounterMirror(t *testing.T, e *env, counters dynamic.ResourceInterface, audit *shardAudit) (stop func()) {
	l, err := counters.List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gens := map[string]int64{}
	for _, c := range l.Items {
		gens[c.GetName()] = c.GetGeneration()
	}
	wi, err := counters.Watch(e.Ctx, metav1.ListOptions{ResourceVersion: l.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for ev := range wi.ResultChan() {
			if ev.Type != watch.Modified && ev.Type != watch.Added {
				continue
			}
			c, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			if g := c.GetGeneration(); g != gens[c.GetName()] {
				if gens[c.GetName()] != 0 {
					r, _, _ := unstructured.NestedInt64(c.Object, "spec", "replicas")
					audit.spec(c.GetName(), r)
				}
				gens[c.GetName()] = g
			}
			spec, _, _ := unstructured.NestedInt64(c.Object, "spec", "replicas")
			status, found, _ := unstructured.NestedInt64(c.Object, "status", "replicas")
			if !found || status != spec {
				c = c.DeepCopy()
				_ = unstructured.SetNestedField(c.Object, spec, "status", "replicas")
				wg.Go(func() { _, _ = counters.UpdateStatus(e.Ctx, c, metav1.UpdateOptions{}) })
			}
		}
	})
	return func() { wi.Stop(); <-done; wg.Wait() }
}

// scrapeGauge reads one sample (the whole "name{labels}") from a /metrics endpoint; -1 when absent or unreachable.
func scrapeGauge(addr, series string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int(f)
		}
	}
	return -1
}

// TestShardingInProcess runs two sharded operators in this (race-detecting) process: every object is scaled, by
// one of them, and each reports the members and its share on /metrics.
func TestShardingInProcess(t *testing.T) {
	const n = 20
	e := setup(t)
	counters := counterResource(e)
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	testenv.Push(t, rc, list, 2)
	for i := range n {
		if err := createShardedObject(e, counters, fmt.Sprintf("c%02d", i), testenv.RedisAddr, list); err != nil {
			t.Fatal(err)
		}
	}
	shard := func(id string) *app.ShardOptions {
		return &app.ShardOptions{Identity: id, LeaseDuration: shardLease, RenewDeadline: shardRenew, RetryPeriod: shardRetry}
	}
	a := e.startOperator(app.Options{ServeAddr: "127.0.0.1:0", Shard: shard("a")})
	b := e.startOperator(app.Options{ServeAddr: "127.0.0.1:0", Shard: shard("b")})
	e.Eventually("both operators own a share of every object", 60*time.Second, func() (bool, string) {
		oa := scrapeGauge(a.Addr(), `tidal_shard_owned_objects{kind="ScaledObject"}`)
		ob := scrapeGauge(b.Addr(), `tidal_shard_owned_objects{kind="ScaledObject"}`)
		ma, mb := scrapeGauge(a.Addr(), "tidal_shard_members"), scrapeGauge(b.Addr(), "tidal_shard_members")
		return oa > 0 && ob > 0 && oa+ob == n && ma == 2 && mb == 2, fmt.Sprintf("owned %d+%d, members %d/%d", oa, ob, ma, mb)
	})
	testenv.Push(t, rc, list, 1)
	e.Eventually("every target at 3", 60*time.Second, func() (bool, string) {
		l, err := counters.List(e.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		off := 0
		for _, c := range l.Items {
			if r, _, _ := unstructured.NestedInt64(c.Object, "spec", "replicas"); r != 3 {
				off++
			}
		}
		return off == 0, fmt.Sprintf("%d of %d not at 3", off, len(l.Items))
	})
}
