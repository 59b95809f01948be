package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/internal/devcluster"
)

// Labels and taints of node-scale-up.
const (
	// labelNodeGroup is the label the node autoscaler's sim provider puts on a group's nodes
	// (autoscaler/nodes/template.LabelNodeGroup; not imported: it links the scheduler framework).
	labelNodeGroup = "tidal.dev/nodegroup"
	// labelBench marks what the harness created, with the run's namespace as value.
	labelBench = "tidal.dev/bench"
	// taintBackground keeps the scenario's pods off the background nodes: they only make the cluster big.
	taintBackground   = "bench.tidal.dev/background"
	envNodeAutoscaler = "TIDAL_NODE_AUTOSCALER_BIN"
	envVirtualNode    = "TIDAL_VIRTUAL_NODE_BIN"
)

// findBinary returns explicit, else $env, else bin/<name> under the module root — the first that exists — or an
// ErrUnavailable saying how to build it.
func findBinary(explicit, env, name, why string) (string, error) {
	if explicit != "" {
		if st, err := os.Stat(explicit); err != nil || st.IsDir() {
			return "", fmt.Errorf("%w: %s binary %s not found", ErrUnavailable, name, explicit)
		}
		return explicit, nil
	}
	candidates := []string{os.Getenv(env)}
	if root, err := devcluster.ModuleRoot(); err == nil {
		candidates = append(candidates, filepath.Join(root, "bin", name))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); c != "" && err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: %s, run as a process: go build -o bin/%s ./cmd/%s, or set $%s", ErrUnavailable, why, name, name, env)
}

// nodeScaleUp: at each cluster size (background nodes, tainted so nothing lands on them), a Deployment of pods
// pods that fit only on an empty NodeGroup (sim provider) is created; the node autoscaler adds nodes and the
// scheduler places the pods. Timestamps: before the Deployment create call; Node and Pod watch events.
type nodeScaleUp struct{ bin string }

func (nodeScaleUp) selfContained()     {}
func (nodeScaleUp) commandComparable() {}

func (r nodeScaleUp) measure(ctx context.Context, env *runEnv) (*result.Run, error) {
	p := env.params
	cfg := rest.CopyConfig(env.opts.Cluster.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	// With --compare-cmd, the second run's node autoscaler is the command (started by the harness with
	// KUBECONFIG and TIDAL_BENCH_NAMESPACE; it must manage the NodeGroups labelled tidal.dev/bench=<namespace>).
	_, command := env.autoscaler.(commandAutoscaler)
	if !command {
		stop, err := startNodeAutoscaler(ctx, r.bin, env)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	defer deleteLabelled(kube, env.namespace)

	run := &result.Run{Counters: map[string]float64{}}
	for _, size := range p.Nodes {
		if err := ensureBackgroundNodes(ctx, kube, env, size); err != nil {
			return nil, err
		}
		var firstNode, allRunning []time.Duration
		var perPod []time.Duration
		var added []float64
		for i := range p.Warmup + p.Repeats {
			env.progress.Set("node-scale-up at %d nodes: %d pods, iteration %d/%d", size, p.Pods, i+1, p.Warmup+p.Repeats)
			it, err := scaleUpOnce(ctx, kube, env, fmt.Sprintf("n%d-%d", size, i))
			if err != nil {
				return nil, fmt.Errorf("%d nodes, iteration %d: %w", size, i+1, err)
			}
			if i < p.Warmup {
				continue
			}
			firstNode, allRunning = append(firstNode, it.firstNode), append(allRunning, it.allRunning)
			perPod = append(perPod, it.perPod...)
			added = append(added, float64(it.nodesAdded))
		}
		sfx := fmt.Sprintf("@%dnodes", size)
		run.Metrics = append(run.Metrics,
			result.NewMetric("first-node"+sfx, "before the Deployment create call", "Node watch: first node of the group added", firstNode),
			result.NewMetric("all-pods-running"+sfx, "before the Deployment create call", "Pod watch: the last pod Running", allRunning),
			result.NewMetric("pod-pending-to-running"+sfx, "Pod watch: pod added (pending)", "Pod watch: that pod Running", perPod))
		run.Counters["nodesAddedMean"+sfx] = mean(added)
	}
	run.Autoscaler = "tidal-node-autoscaler"
	if command {
		run.Autoscaler = "command"
	}
	return run, nil
}

// startNodeAutoscaler runs the node autoscaler binary for this run's NodeGroups only (labelled
// tidal.dev/bench=<namespace>), with the scenario's scan interval and sim delay, and extra flags.
func startNodeAutoscaler(ctx context.Context, bin string, env *runEnv, extra ...string) (func(), error) {
	p := env.params
	args := []string{"--kubeconfig", env.opts.Cluster.Kubeconfig, "--namespace", env.namespace, "--metrics-addr", "",
		"--leader-elect=false", "--log-level", "warn", "--scale-down-enabled=false",
		"--nodegroup-selector", labelBench + "=" + env.namespace}
	if p.ScanInterval > 0 {
		args = append(args, "--scan-interval", p.ScanInterval.D().String())
	}
	// Always passed: 0s is a valid delay (a cloud that answers at once), not "the binary's default".
	args = append(args, "--sim-provisioning-delay", p.ProvisioningDelay.D().String())
	args = append(args, extra...)
	return startProcess(ctx, exec.Command(bin, args...), filepath.Join(env.opts.TmpDir, "node-autoscaler.log"))
}

// startProcess starts cmd in its own process group, output to logPath; stop sends SIGTERM to the group (SIGKILL
// after 15s) and waits. A process that exits within two seconds is reported with the end of its output.
func startProcess(ctx context.Context, cmd *exec.Cmd, logPath string) (func(), error) {
	bin := cmd.Path
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		_ = logFile.Close()
		out, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s exited at start (%v); its output, in %s, ends: %s", filepath.Base(bin), err, logPath, tail(out, 2000))
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
			_ = logFile.Close()
		})
	}, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// ensureBackgroundNodes grows the run's tainted kwok nodes to size.
func ensureBackgroundNodes(ctx context.Context, kube kubernetes.Interface, env *runEnv, size int) error {
	have, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: labelBench + "=" + env.namespace + "," + taintBackground + "=true"})
	if err != nil {
		return fmt.Errorf("list background nodes: %w", err)
	}
	from := len(have.Items)
	err = parallel(ctx, 16, max(size-from, 0), func(ctx context.Context, i int) error {
		if i%100 == 0 {
			env.progress.Set("node-scale-up: creating background nodes %d/%d", from+i, size)
		}
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%s-%05d", env.namespace[len(env.namespace)-5:], from+i),
				Labels: map[string]string{"type": "kwok", labelBench: env.namespace, taintBackground: "true"}},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: taintBackground, Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{
				Capacity:    nodeResources(),
				Allocatable: nodeResources(),
			},
		}
		if _, err := kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create background node %s: %w", n.Name, err)
		}
		return nil
	})
	return err
}

func nodeResources() corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
}

// scaleUpIteration is one node scale-up.
type scaleUpIteration struct {
	firstNode, allRunning time.Duration
	perPod                []time.Duration
	nodesAdded            int
}

// scaleUpOnce creates an empty NodeGroup and pods that only it can hold, times nodes and pods, then deletes both.
func scaleUpOnce(ctx context.Context, kube kubernetes.Interface, env *runEnv, suffix string) (*scaleUpIteration, error) {
	p := env.params
	ctx, cancel := context.WithTimeout(ctx, iterTimeout(p.Timeout.D()))
	defer cancel()
	group := fmt.Sprintf("bench-%s-%s", env.namespace[len(env.namespace)-5:], suffix)
	podsPerNode := 4 // 1 CPU each on 4-CPU nodes
	ng := &tidalv1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: group, Labels: map[string]string{labelBench: env.namespace}},
		Spec: tidalv1alpha1.NodeGroupSpec{
			MinSize: 0, MaxSize: int32((p.Pods+podsPerNode-1)/podsPerNode + 2),
			Template:    tidalv1alpha1.NodeTemplate{Capacity: nodeResources(), Labels: map[string]string{labelBench: env.namespace}},
			ProviderRef: tidalv1alpha1.ProviderRef{Name: tidalv1alpha1.ProviderSim},
		},
	}
	if _, err := env.tidal.TidalV1alpha1().NodeGroups().Create(ctx, ng, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create NodeGroup %s: %w", group, err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		_ = kube.AppsV1().Deployments(env.namespace).Delete(dctx, group, metav1.DeleteOptions{})
		_ = env.tidal.TidalV1alpha1().NodeGroups().Delete(dctx, group, metav1.DeleteOptions{})
		_ = kube.CoreV1().Nodes().DeleteCollection(dctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: labelNodeGroup + "=" + group})
	}()

	w := newScaleUpWatch(kube, env.namespace, group)
	if err := w.start(ctx); err != nil {
		return nil, err
	}
	defer w.stop()

	d := deployment(group)
	replicas := int32(p.Pods)
	d.Spec.Replicas = &replicas
	d.Spec.Template.Spec.NodeSelector = map[string]string{labelNodeGroup: group}
	d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("100Mi")}
	t0 := time.Now()
	if _, err := kube.AppsV1().Deployments(env.namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create Deployment %s: %w", group, err)
	}
	if err := w.waitRunning(ctx, p.Pods); err != nil {
		return nil, err
	}
	return w.iteration(t0), nil
}

// scaleUpWatch records, from Node and Pod watch events, when the group's nodes appear and when each pod is first
// seen and first Running.
type scaleUpWatch struct {
	kube      kubernetes.Interface
	namespace string
	group     string

	mu       sync.Mutex
	nodes    map[string]time.Time
	seen     map[string]time.Time
	running  map[string]time.Time
	changed  chan struct{}
	stopFunc func()
}

func newScaleUpWatch(kube kubernetes.Interface, namespace, group string) *scaleUpWatch {
	return &scaleUpWatch{kube: kube, namespace: namespace, group: group, nodes: map[string]time.Time{},
		seen: map[string]time.Time{}, running: map[string]time.Time{}, changed: make(chan struct{}, 1)}
}

func (w *scaleUpWatch) start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	nf := informers.NewSharedInformerFactoryWithOptions(w.kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = labelNodeGroup + "=" + w.group
	}))
	pf := informers.NewSharedInformerFactoryWithOptions(w.kube, 0, informers.WithNamespace(w.namespace), informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = "app=" + w.group
	}))
	note := func(m map[string]time.Time, name string) {
		now := time.Now()
		w.mu.Lock()
		if _, ok := m[name]; !ok {
			m[name] = now
		}
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	onNode := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			note(w.nodes, n.Name)
		}
	}
	onPod := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		note(w.seen, pod.Name)
		if pod.Status.Phase == corev1.PodRunning {
			note(w.running, pod.Name)
		}
	}
	if _, err := nf.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onNode}); err != nil {
		cancel()
		return err
	}
	if _, err := pf.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, n any) { onPod(n) }}); err != nil {
		cancel()
		return err
	}
	nf.Start(ctx.Done())
	pf.Start(ctx.Done())
	w.stopFunc = func() { cancel(); nf.Shutdown(); pf.Shutdown() }
	nf.WaitForCacheSync(ctx.Done())
	pf.WaitForCacheSync(ctx.Done())
	return nil
}

func (w *scaleUpWatch) stop() { w.stopFunc() }

func (w *scaleUpWatch) waitRunning(ctx context.Context, want int) error {
	for {
		w.mu.Lock()
		n, nodes := len(w.running), len(w.nodes)
		w.mu.Unlock()
		if n >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods Running, %d nodes added: %w", n, want, nodes, ctx.Err())
		case <-w.changed:
		}
	}
}

func (w *scaleUpWatch) iteration(t0 time.Time) *scaleUpIteration {
	w.mu.Lock()
	defer w.mu.Unlock()
	it := &scaleUpIteration{nodesAdded: len(w.nodes)}
	var first, last time.Time
	for _, at := range w.nodes {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	for name, at := range w.running {
		last = maxTime(last, at)
		if seen, ok := w.seen[name]; ok {
			it.perPod = append(it.perPod, at.Sub(seen))
		}
	}
	if !first.IsZero() {
		it.firstNode = first.Sub(t0)
	}
	it.allRunning = last.Sub(t0)
	return it
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// deleteLabelled removes the run's background nodes and NodeGroups.
func deleteLabelled(kube kubernetes.Interface, namespace string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := kube.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: labelBench + "=" + namespace})
	if err != nil && !errors.Is(err, context.Canceled) {
		return
	}
}
