// Package chaos is Tidal's fault-injection harness: it runs the real operator binary against the dev cluster with
// a workload under load, injects one fault at a time (kill -9, leader change, source down past the cooldown,
// trigger edited under load, 409/429 storms from the API server) and records what a user would see: the largest
// deviation from the right replica count while the fault lasts, the time to converge once it ends, whether a
// decision was lost (the right count never reached) and whether the object is left stuck (not Ready).
//
// The right replica count is the HPA formula on what the source holds at that moment: ceil(items / target)
// clamped to [min, max]; the workload's ScaledObject scales in both directions without stabilization so that the
// right count is a function of the list length alone. Node faults (nodes.go) kill the node autoscaler mid-scale-up
// and mid-drain (NodePool: the right state is the exact packing, every pod Running, nothing tainted, cordoned or
// in flight; the deviation is the nodes provisioned twice) and a virtual node with pods running (VirtualNode: the
// node Ready, every pod Ready, no orphan between the API server and the backend). The chaos test (chaos_test.go)
// runs each fault once in `make test` and N times with `make chaos`, which writes the table in
// bench/results/chaos.md.
package chaos

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Result is what one run of one fault showed.
type Result struct {
	Fault string
	// MaxDeviation is the largest |replicas - right| sampled from the fault's start until convergence, or what
	// Unit names for faults that measure something else.
	MaxDeviation int32
	// Unit of MaxDeviation; empty means replicas.
	Unit string
	// WrongZero counts samples at 0 replicas while the source held work: the one error that drops a workload.
	WrongZero int
	// Converge is the time from the fault's end until the replicas equal the right count (and stay for Settle).
	Converge time.Duration
	// Lost is 1 when the right count was not reached before the deadline: a decision was lost.
	Lost int
	// Stuck is 1 when the ScaledObject was not Ready at the end.
	Stuck int
}

// Settle is how long the replica count must stay right to count as converged.
const Settle = 2 * time.Second

// Workload is the scaled Deployment and its source: a Redis list, target items per replica, and the bounds.
type Workload struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	Redis     *goredis.Client
	List      string
	Min, Max  int32
	// target is the items per replica (the trigger's listLength); SetTarget changes it when a fault edits the
	// trigger while the observer runs.
	target atomic.Int64
}

// SetTarget records the trigger's items per replica.
func (w *Workload) SetTarget(n int64) { w.target.Store(n) }

// Right is the replica count the operator should reach for n items.
func (w *Workload) Right(n int64) int32 {
	if n <= 0 {
		return w.Min
	}
	r := int32(math.Min(math.Ceil(float64(n)/float64(w.target.Load())), float64(w.Max)))
	return max(r, w.Min, 1)
}

// Replicas reads the Deployment's /scale.
func (w *Workload) Replicas(ctx context.Context) (int32, error) {
	s, err := w.Client.AppsV1().Deployments(w.Namespace).GetScale(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	return s.Spec.Replicas, nil
}

// SetItems makes the list hold exactly n items.
func (w *Workload) SetItems(ctx context.Context, n int64) error {
	pipe := w.Redis.TxPipeline()
	pipe.Del(ctx, w.List)
	if n > 0 {
		items := make([]any, n)
		for i := range items {
			items[i] = "item"
		}
		pipe.RPush(ctx, w.List, items...)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Sampler reads the system once while a fault runs: how far it is from the right state (dev), whether the
// workload sits at zero while it has work (wrongZero), and ok false when nothing could be read (the sample is
// skipped). A Sampler is called from one goroutine only, so it may keep state between calls.
type Sampler func(ctx context.Context) (dev int32, wrongZero, ok bool)

// Observer samples the system every 100 ms while a fault runs.
type Observer struct {
	sample    Sampler
	cancel    context.CancelFunc
	done      chan struct{}
	mu        sync.Mutex
	maxDev    int32
	wrongZero int
	samples   int
}

// Observe starts sampling with s until Stop.
func Observe(ctx context.Context, s Sampler) *Observer {
	ctx, cancel := context.WithCancel(ctx)
	o := &Observer{sample: s, cancel: cancel, done: make(chan struct{})}
	go o.run(ctx)
	return o
}

// Sample returns a Sampler of the list and the replicas: |replicas - right|, and 0 replicas while the list holds
// items is a wrong zero. The source may be down during a fault: then the last known length stands.
func (w *Workload) Sample() Sampler {
	items := int64(-1) // the last list length read; -1 until the source could be read
	return func(ctx context.Context) (int32, bool, bool) {
		r, err := w.Replicas(ctx)
		// A short deadline: while the source is down the sample uses the last length read, on time.
		lctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		if n, err := w.Redis.LLen(lctx, w.List).Result(); err == nil {
			items = n
		}
		cancel()
		if err != nil || items < 0 {
			return 0, false, false
		}
		dev := r - w.Right(items)
		if dev < 0 {
			dev = -dev
		}
		return dev, r == 0 && items > 0, true
	}
}

func (o *Observer) run(ctx context.Context) {
	defer close(o.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dev, zero, ok := o.sample(ctx)
		if !ok {
			continue
		}
		o.mu.Lock()
		o.samples++
		o.maxDev = max(o.maxDev, dev)
		if zero {
			o.wrongZero++
		}
		o.mu.Unlock()
	}
}

// Stop ends sampling and returns the largest deviation and the wrong-zero samples.
func (o *Observer) Stop() (maxDev int32, wrongZero, samples int) {
	o.cancel()
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.maxDev, o.wrongZero, o.samples
}

// Converge waits until right holds and keeps holding for Settle, returning the time taken, or false at the
// deadline.
func Converge(ctx context.Context, deadline time.Duration, right func(ctx context.Context) bool) (time.Duration, bool) {
	start := time.Now()
	var since time.Time
	for time.Since(start) < deadline {
		ok := right(ctx)
		switch {
		case ok && since.IsZero():
			since = time.Now()
		case ok && time.Since(since) >= Settle:
			return since.Sub(start), true
		case !ok:
			since = time.Time{}
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Since(start), false
}

// Converge waits until the replicas equal Right(items) and stay so for Settle, returning the time taken, or
// false at the deadline.
func (w *Workload) Converge(ctx context.Context, items int64, deadline time.Duration) (time.Duration, bool) {
	want := w.Right(items)
	return Converge(ctx, deadline, func(ctx context.Context) bool {
		r, err := w.Replicas(ctx)
		return err == nil && r == want
	})
}

// StormProxy is a reverse proxy in front of the API server that, while Storm is on, answers a share of the
// writes with 409 Conflict and a share of all requests with 429 Too Many Requests (Retry-After 1), as an API
// server under contention does. It serves plain HTTP on loopback and authenticates to the API server itself.
// Observe audits every request passing through it; Cut makes some requests fail as a network partition would.
type StormProxy struct {
	URL     string
	srv     *http.Server
	storm   atomic.Bool
	n       atomic.Int64
	counts  sync.Map // status → *atomic.Int64
	observe atomic.Pointer[func(*http.Request)]
	cut     atomic.Pointer[func(*http.Request) bool]
}

// NewStormProxy starts a proxy to the API server of cfg on a free loopback port.
func NewStormProxy(cfg *rest.Config, listen func() (string, error)) (*StormProxy, error) {
	target, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	addr, err := listen()
	if err != nil {
		return nil, err
	}
	p := &StormProxy{URL: "http://" + addr}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = tr
	rp.FlushInterval = -1 // watches stream
	p.srv = &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut := p.cut.Load(); cut != nil && (*cut)(r) {
			// The connection is dropped without an answer, as when the network between the client and the API
			// server is cut.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			writeStatus(w, http.StatusServiceUnavailable, "ServiceUnavailable", "partitioned")
			return
		}
		if obs := p.observe.Load(); obs != nil {
			(*obs)(r)
		}
		if p.storm.Load() && r.URL.Query().Get("watch") != "true" {
			i := p.n.Add(1)
			write := r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost
			switch {
			case write && i%3 == 0:
				p.count(http.StatusConflict)
				writeStatus(w, http.StatusConflict, "Conflict", "the object has been modified; please apply your changes to the latest version and try again")
				return
			case i%4 == 0:
				p.count(http.StatusTooManyRequests)
				w.Header().Set("Retry-After", "1")
				writeStatus(w, http.StatusTooManyRequests, "TooManyRequests", "too many requests, please try again later")
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.ListenAndServe() }()
	return p, nil
}

func (p *StormProxy) count(status int) {
	v, _ := p.counts.LoadOrStore(status, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Injected reports how many responses of each status the storm injected.
func (p *StormProxy) Injected() string {
	var parts []string
	p.counts.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%d×%d", v.(*atomic.Int64).Load(), k))
		return true
	})
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// Storm turns the injection on or off.
func (p *StormProxy) Storm(on bool) { p.storm.Store(on) }

// Observe calls fn with every request the proxy forwards (not those it cuts), before forwarding it; fn must be
// safe for concurrent use. nil stops observing.
func (p *StormProxy) Observe(fn func(*http.Request)) {
	if fn == nil {
		p.observe.Store(nil)
		return
	}
	p.observe.Store(&fn)
}

// Cut drops the connection of every request match selects (say, only the Lease renewals of one replica), as a
// partition between the proxy's client and the API server would; nil heals it.
func (p *StormProxy) Cut(match func(*http.Request) bool) {
	if match == nil {
		p.cut.Store(nil)
		return
	}
	p.cut.Store(&match)
}

// Close stops the proxy.
func (p *StormProxy) Close() error { return p.srv.Close() }

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
}

// Table renders results as the README's chaos table: per fault, runs, the worst deviation, the median and worst
// time to converge, and the totals of wrong zeros, lost decisions and stuck objects.
func Table(results []Result, load string) string {
	byFault := map[string][]Result{}
	var order []string
	for _, r := range results {
		if _, ok := byFault[r.Fault]; !ok {
			order = append(order, r.Fault)
		}
		byFault[r.Fault] = append(byFault[r.Fault], r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s (load average %s).\n\n", time.Now().UTC().Format("2006-01-02"), load)
	b.WriteString("| fault | runs | worst deviation | converge p50 / max | wrong zero | decisions lost | objects stuck |\n|---|---|---|---|---|---|---|\n")
	for _, f := range order {
		rs := byFault[f]
		var dev int32
		var conv []time.Duration
		var zero, lost, stuck int
		for _, r := range rs {
			dev = max(dev, r.MaxDeviation)
			conv = append(conv, r.Converge)
			zero += r.WrongZero
			lost += r.Lost
			stuck += r.Stuck
		}
		sort.Slice(conv, func(i, j int) bool { return conv[i] < conv[j] })
		unit := rs[0].Unit
		if unit == "" {
			unit = "replicas"
		}
		fmt.Fprintf(&b, "| %s | %d | %d %s | %s / %s | %d | %d | %d |\n", f, len(rs), dev, unit,
			conv[len(conv)/2].Round(100*time.Millisecond), conv[len(conv)-1].Round(100*time.Millisecond), zero, lost, stuck)
	}
	return b.String()
}
