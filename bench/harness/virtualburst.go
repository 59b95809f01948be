package harness

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/internal/devcluster"
)

// Virtual node identity (virtualnode/provider; not imported, the harness drives the binary).
const (
	virtualTaintKey   = "virtual-kubelet.io/provider"
	virtualTaintValue = "tidal"
	// taintReal keeps other pods off the scenario's real nodes.
	taintReal = "bench.tidal.dev/real"
)

// virtualBurst: one real node with room for four pods and a virtual node (tidal-virtual-node, sim backend,
// --backfill). A burst of pods pods overflows onto the virtual node; then real nodes for all of them are
// added and backfill moves the burst pods back. Timestamps: before the Deployment create call and before the
// real nodes are created; Pod watch events.
type virtualBurst struct{ bin string }

func (virtualBurst) selfContained() {}

func (r virtualBurst) measure(ctx context.Context, env *runEnv) (*result.Run, error) {
	p := env.params
	kube := env.opts.Cluster.Client
	vnName := "bench-vn-" + env.namespace[len(env.namespace)-5:]
	stop, err := startVirtualNode(ctx, r.bin, env, vnName)
	if err != nil {
		return nil, err
	}
	defer stop()
	defer deleteLabelled(kube, env.namespace)

	var toRunning, virtualPod, backfill []time.Duration
	var onVirtual []float64
	for i := range p.Warmup + p.Repeats {
		env.progress.Set("virtual-burst: %d pods, iteration %d/%d", p.Pods, i+1, p.Warmup+p.Repeats)
		it, err := virtualBurstOnce(ctx, kube, env, vnName, fmt.Sprint(i))
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %w", i+1, err)
		}
		if i < p.Warmup {
			continue
		}
		toRunning, backfill = append(toRunning, it.allRunning), append(backfill, it.backfilled)
		virtualPod = append(virtualPod, it.virtualPods...)
		onVirtual = append(onVirtual, float64(len(it.virtualPods)))
	}
	return &result.Run{
		Autoscaler: "tidal-virtual-node",
		Metrics: []*result.Metric{
			result.NewMetric("burst-all-running", "before the Deployment create call", "Pod watch: the last pod Running", toRunning),
			result.NewMetric("virtual-pod-pending-to-running", "Pod watch: pod added", "Pod watch: Running on the virtual node", virtualPod),
			result.NewMetric("backfill-complete", "before the real nodes were created", "Pod watch: every pod Running on a real node, none on the virtual node", backfill),
		},
		Counters: map[string]float64{"podsOnVirtualNodeMean": mean(onVirtual)},
	}, nil
}

// startVirtualNode runs tidal-virtual-node (sim backend, --backfill, the scenario's backfill interval) as node
// name and waits for the node to be Ready; stop ends the process and deletes the Node.
func startVirtualNode(ctx context.Context, bin string, env *runEnv, name string) (func(), error) {
	kube := env.opts.Cluster.Client
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--kubeconfig", env.opts.Cluster.Kubeconfig, "--node-name", name, "--port", fmt.Sprint(port),
		"--backend", "sim", "--kubelet-auth", "none", "--backfill", "--log-level", "warn", "--metrics-addr", "",
		"--process-dir", filepath.Join(env.opts.TmpDir, "virtual-node")}
	if env.params.BackfillInterval > 0 {
		args = append(args, "--backfill-interval", env.params.BackfillInterval.D().String())
	}
	stopProcess, err := startProcess(ctx, exec.Command(bin, args...), filepath.Join(env.opts.TmpDir, "virtual-node.log"))
	if err != nil {
		return nil, err
	}
	stop := func() {
		stopProcess()
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = kube.CoreV1().Nodes().Delete(dctx, name, metav1.DeleteOptions{})
	}
	if err := devcluster.WaitNodeSchedulable(ctx, kube, name); err != nil {
		stop()
		return nil, fmt.Errorf("virtual node: %w", err)
	}
	return stop, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type virtualIteration struct {
	allRunning, backfilled time.Duration
	virtualPods            []time.Duration
}

func virtualBurstOnce(ctx context.Context, kube kubernetes.Interface, env *runEnv, vnName, iter string) (*virtualIteration, error) {
	p := env.params
	ctx, cancel := context.WithTimeout(ctx, iterTimeout(p.Timeout.D()))
	defer cancel()
	name := "burst-" + iter
	realSel := map[string]string{labelBench: env.namespace, "bench.tidal.dev/iteration": iter}
	createReal := func(from, n int) error {
		return parallel(ctx, 8, n, func(ctx context.Context, i int) error {
			node := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%s-real-%s-%d", env.namespace[len(env.namespace)-5:], iter, from+i),
					Labels: map[string]string{"type": "kwok", labelBench: env.namespace, "bench.tidal.dev/iteration": iter}},
				Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: taintReal, Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
				Status: corev1.NodeStatus{Capacity: nodeResources(), Allocatable: nodeResources()},
			}
			if _, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create real node %s: %w", node.Name, err)
			}
			return devcluster.WaitNodeSchedulable(ctx, kube, node.Name)
		})
	}
	// The real capacity before the burst: one node, four pods.
	if err := createReal(0, 1); err != nil {
		return nil, err
	}
	w := &podWatch{kube: kube, namespace: env.namespace, selector: "app=" + name, virtual: vnName, pods: map[string]*podTimes{}, changed: make(chan struct{}, 1)}
	if err := w.start(ctx); err != nil {
		return nil, err
	}
	defer w.stop()
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		_ = kube.AppsV1().Deployments(env.namespace).Delete(dctx, name, metav1.DeleteOptions{})
	}()

	d := deployment(name)
	replicas := int32(p.Pods)
	d.Spec.Replicas = &replicas
	spec := &d.Spec.Template.Spec
	spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("100Mi")}
	spec.Tolerations = []corev1.Toleration{
		{Key: virtualTaintKey, Operator: corev1.TolerationOpEqual, Value: virtualTaintValue, Effect: corev1.TaintEffectNoSchedule},
		{Key: taintReal, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule},
	}
	spec.Affinity = realOrVirtual(realSel, vnName)
	t0 := time.Now()
	if _, err := kube.AppsV1().Deployments(env.namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create Deployment %s: %w", name, err)
	}
	all, err := w.waitFor(ctx, t0, "every pod Running", func(running, onVirtual int) bool { return running >= p.Pods })
	if err != nil {
		return nil, err
	}
	it := &virtualIteration{allRunning: all.Sub(t0), virtualPods: w.virtualPendingToRunning()}
	if len(it.virtualPods) == 0 {
		return nil, fmt.Errorf("no pod ran on the virtual node: the burst of %d pods fit on the real node", p.Pods)
	}
	// Real nodes for every pod: backfill moves the burst pods off the virtual node.
	t1 := time.Now()
	if err := createReal(1, (p.Pods+3)/4); err != nil {
		return nil, err
	}
	done, err := w.waitFor(ctx, t1, "every pod Running on a real node", func(running, onVirtual int) bool { return running-onVirtual >= p.Pods && onVirtual == 0 })
	if err != nil {
		return nil, err
	}
	it.backfilled = done.Sub(t1)
	return it, nil
}

// realOrVirtual is a node affinity for the scenario's real nodes (labelled realSel) or the virtual node vnName,
// real nodes preferred: the virtual node's large capacity would otherwise win the scheduler's scoring.
func realOrVirtual(realSel map[string]string, vnName string) *corev1.Affinity {
	realTerm := corev1.NodeSelectorTerm{}
	for k, v := range realSel {
		realTerm.MatchExpressions = append(realTerm.MatchExpressions, corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpIn, Values: []string{v}})
	}
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			realTerm,
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{vnName}}}},
		}},
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100, Preference: realTerm}},
	}}
}

// podTimes is one pod as the watch saw it.
type podTimes struct {
	added, running time.Time
	node           string
	gone           bool
}

// podWatch follows the pods of one selector: when each was added and first Running, and where.
type podWatch struct {
	kube                kubernetes.Interface
	namespace, selector string
	virtual             string

	mu       sync.Mutex
	pods     map[string]*podTimes
	history  []podCount // after every watch event
	changed  chan struct{}
	stopFunc func()
}

func (w *podWatch) start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	f := informers.NewSharedInformerFactoryWithOptions(w.kube, 0, informers.WithNamespace(w.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = w.selector }))
	update := func(obj any, gone bool) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			if t, ok2 := obj.(cache.DeletedFinalStateUnknown); ok2 {
				pod, ok = t.Obj.(*corev1.Pod)
			}
			if !ok {
				return
			}
		}
		now := time.Now()
		w.mu.Lock()
		pt := w.pods[pod.Name]
		if pt == nil {
			pt = &podTimes{added: now}
			w.pods[pod.Name] = pt
		}
		pt.node = pod.Spec.NodeName
		pt.gone = gone || pod.DeletionTimestamp != nil
		if pt.running.IsZero() && pod.Status.Phase == corev1.PodRunning {
			pt.running = now
		}
		w.history = append(w.history, w.countLocked(now))
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	if _, err := f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { update(o, false) },
		UpdateFunc: func(_, o any) { update(o, false) },
		DeleteFunc: func(o any) { update(o, true) },
	}); err != nil {
		cancel()
		return err
	}
	f.Start(ctx.Done())
	w.stopFunc = func() { cancel(); f.Shutdown() }
	f.WaitForCacheSync(ctx.Done())
	return nil
}

func (w *podWatch) stop() { w.stopFunc() }

// podCount is the pod set after one watch event.
type podCount struct {
	at                 time.Time
	running, onVirtual int
}

func (w *podWatch) countLocked(at time.Time) podCount {
	c := podCount{at: at}
	for _, pt := range w.pods {
		if !pt.gone && !pt.running.IsZero() {
			c.running++
			if pt.node == w.virtual {
				c.onVirtual++
			}
		}
	}
	return c
}

// waitFor waits until cond(running pods, running pods on the virtual node) holds after since and returns the
// arrival time of the watch event that first made it hold.
func (w *podWatch) waitFor(ctx context.Context, since time.Time, what string, cond func(running, onVirtual int) bool) (time.Time, error) {
	seen := 0
	for {
		w.mu.Lock()
		hist := w.history[seen:]
		seen = len(w.history)
		last := podCount{}
		if seen > 0 {
			last = w.history[seen-1]
		}
		w.mu.Unlock()
		for _, c := range hist {
			if !c.at.Before(since) && cond(c.running, c.onVirtual) {
				return c.at, nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for %s (%d Running, %d on the virtual node): %w", what, last.running, last.onVirtual, ctx.Err())
		case <-w.changed:
		}
	}
}

// virtualPendingToRunning is added → Running of every pod that ran on the virtual node.
func (w *podWatch) virtualPendingToRunning() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Duration
	for _, pt := range w.pods {
		if pt.node == w.virtual && !pt.running.IsZero() {
			out = append(out, pt.running.Sub(pt.added))
		}
	}
	return out
}
