package harness

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/scenario"
)

// metricEventToRunning is the scenario's headline metric, the one its ratios are taken on.
const metricEventToRunning = "event-to-running"

// eventNodeCPU is the CPU of one node of the scenario's NodeGroup: 20 one-CPU pods need 3 nodes.
const eventNodeCPU = 8

// eventToRunning: a Redis burst (one RPUSH of pods items, listLength 1 per replica) on a ScaledObject whose pods
// (1 CPU each) fit only on the nodes of an empty NodeGroup (sim provider, provisioningDelay) — or, with
// placement, on a virtual node. tidal-node-autoscaler runs as a process; the operator runs in this process, once
// per demand variant (off: no CapacityRequest; on: the CapacityRequest before /scale; auto: that with
// spec.placement auto, tidal-virtual-node with backfill beside it). Each iteration gets a fresh NodeGroup whose
// measured provision time is seeded with the delay (as earlier scale-ups would have measured it). Timestamps:
// before the RPUSH call; Deployment and Pod watch events.
type eventToRunning struct{ nodeAutoscaler, virtualNode string }

// demandVariant is Tidal direct with the variant's demand signal; the runner reads the variant from it.
type demandVariant struct {
	tidalDirect
	variant string
}

func (v demandVariant) Name() string { return "tidal-" + v.variant }

func (eventToRunning) contestants(p scenario.Params, o Options) []Autoscaler {
	var list []Autoscaler
	for _, v := range p.Variants {
		list = append(list, demandVariant{tidalDirect: tidalDirect{log: o.Logger, noCapacityRequests: v == scenario.VariantOff}, variant: v})
	}
	return list
}

func (r eventToRunning) measure(ctx context.Context, env *runEnv) (*result.Run, error) {
	p := env.params
	v, ok := env.autoscaler.(demandVariant)
	if !ok {
		return nil, fmt.Errorf("event-to-running measures its demand variants, not %s", env.autoscaler.Name())
	}
	src, err := newRedisSource(ctx, env.opts.RedisAddress)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if err := src.requirePush(ctx); err != nil {
		return nil, err
	}
	stopNodes, err := startNodeAutoscaler(ctx, r.nodeAutoscaler, env, "--scale-up-for-burst-pods")
	if err != nil {
		return nil, err
	}
	defer stopNodes()
	defer deleteLabelled(env.opts.Cluster.Client, env.namespace)
	vnName := "bench-vn-" + env.namespace[len(env.namespace)-5:]
	var placement *tidalv1alpha1.Placement
	running := "" // the virtual node, when this variant runs one
	if v.variant == scenario.VariantAuto {
		running = vnName
		stopVN, err := startVirtualNode(ctx, r.virtualNode, env, vnName)
		if err != nil {
			return nil, err
		}
		defer stopVN()
		target := int32(p.MaxPendingSeconds)
		placement = &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementAuto, MaxPendingSeconds: &target}
	}
	polling := p.PollingInterval.D()
	if polling <= 0 {
		polling = time.Second
	}
	w := scaledWorkload{Name: workerName, Mode: scenario.ModeDirect, Trigger: src.Trigger(1), MaxReplicas: int32(p.Pods),
		PollingInterval: polling, ScaleUpAtOnce: true, Placement: placement, Pod: func(spec *corev1.PodSpec) {
			spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("100Mi")}
			spec.Affinity = realOrVirtual(map[string]string{labelBench: env.namespace}, vnName)
		}}
	obs, err := w.start(ctx, env)
	if err != nil {
		return nil, err
	}
	defer obs.stop()

	var toReplicas, toRunning, toBackfilled []time.Duration
	var onVirtual []float64
	var timeline []result.Point
	total := p.Warmup + p.Repeats
	for i := range total {
		env.progress.Set("event-to-running %s: %d pods, iteration %d/%d  p50 so far %s", v.variant, p.Pods, i+1, total, median(toRunning))
		it, err := eventOnce(ctx, env, obs, src, running, i)
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %w", i+1, err)
		}
		if i < p.Warmup {
			continue
		}
		toReplicas, toRunning, timeline = append(toReplicas, it.replicas), append(toRunning, it.running), it.timeline
		if v.variant == scenario.VariantAuto {
			toBackfilled, onVirtual = append(toBackfilled, it.backfilled), append(onVirtual, float64(it.onVirtual))
		}
	}
	from := src.Name() + " (before the call)"
	run := &result.Run{
		Metrics: []*result.Metric{
			result.NewMetric("event-to-replicas", from, fmt.Sprintf("Deployment watch: spec.replicas ≥ %d", p.Pods), toReplicas),
			result.NewMetric(metricEventToRunning, from, fmt.Sprintf("Pod watch: %d pods Running", p.Pods), toRunning),
		},
		Counters: map[string]float64{},
		Timeline: timeline,
	}
	if v.variant == scenario.VariantAuto {
		run.Metrics = append(run.Metrics, result.NewMetric("event-to-backfilled", from,
			fmt.Sprintf("Pod watch: %d pods Running on real nodes, none on the virtual node", p.Pods), toBackfilled))
		run.Counters["podsOnVirtualNodeMean"] = mean(onVirtual)
	}
	return run, nil
}

// eventIteration is one burst.
type eventIteration struct {
	replicas, running, backfilled time.Duration
	onVirtual                     int
	timeline                      []result.Point
}

// eventOnce creates the iteration's empty NodeGroup, pushes the burst, times replicas, Running pods and (with
// vnName, the virtual node) backfill, then empties the queue, waits for zero and deletes the group and its nodes.
func eventOnce(ctx context.Context, env *runEnv, obs *observer, src *redisSource, vnName string, iter int) (*eventIteration, error) {
	p := env.params
	ctx, cancel := context.WithTimeout(ctx, iterTimeout(p.Timeout.D()))
	defer cancel()
	if _, err := obs.waitFor(ctx, "zero replicas before pushing", func(s state) bool { return s.Replicas == 0 && s.Running == 0 }); err != nil {
		return nil, err
	}
	group, err := createEventGroup(ctx, env, iter)
	if err != nil {
		return nil, err
	}
	kube := env.opts.Cluster.Client
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		_ = env.tidal.TidalV1alpha1().NodeGroups().Delete(dctx, group, metav1.DeleteOptions{})
		_ = kube.CoreV1().Nodes().DeleteCollection(dctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: labelNodeGroup + "=" + group})
	}()
	w := &podWatch{kube: kube, namespace: env.namespace, selector: "app=" + workerName, virtual: vnName, pods: map[string]*podTimes{}, changed: make(chan struct{}, 1)}
	if err := w.start(ctx); err != nil {
		return nil, err
	}
	defer w.stop()

	smp := startSampler(ctx, obs, src, 250*time.Millisecond)
	t0 := time.Now()
	if _, err := src.Push(ctx, p.Pods); err != nil {
		smp.timeline()
		return nil, err
	}
	it := &eventIteration{}
	err = func() error {
		rep, err := obs.waitFor(ctx, fmt.Sprintf("%d replicas after the push", p.Pods), func(s state) bool { return s.Replicas >= int32(p.Pods) })
		if err != nil {
			return err
		}
		all, err := w.waitFor(ctx, t0, fmt.Sprintf("%d pods Running", p.Pods), func(running, _ int) bool { return running >= p.Pods })
		if err != nil {
			return err
		}
		it.replicas, it.running = rep.At.Sub(t0), all.Sub(t0)
		if vnName == "" {
			return nil
		}
		it.onVirtual = len(w.virtualPendingToRunning())
		done, err := w.waitFor(ctx, t0, "every pod Running on a real node", func(running, onVirtual int) bool {
			return running-onVirtual >= p.Pods && onVirtual == 0
		})
		it.backfilled = done.Sub(t0)
		return err
	}()
	it.timeline = smp.timeline()
	if err != nil {
		return nil, err
	}
	if err := src.Drain(ctx); err != nil {
		return nil, err
	}
	if _, err := obs.waitFor(ctx, "zero replicas after the queue emptied", func(s state) bool { return s.Replicas == 0 && s.Running == 0 }); err != nil {
		return nil, err
	}
	return it, nil
}

// createEventGroup makes the iteration's empty NodeGroup of eventNodeCPU-CPU nodes carrying the run's label (the
// pods' node affinity), with its provision time seeded at the sim delay.
func createEventGroup(ctx context.Context, env *runEnv, iter int) (string, error) {
	p := env.params
	name := fmt.Sprintf("bench-%s-e%d", env.namespace[len(env.namespace)-5:], iter)
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(fmt.Sprint(eventNodeCPU)),
		corev1.ResourceMemory: resource.MustParse("32Gi"), corev1.ResourcePods: resource.MustParse("110")}
	ng := &tidalv1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{labelBench: env.namespace}},
		Spec: tidalv1alpha1.NodeGroupSpec{
			MinSize: 0, MaxSize: int32((p.Pods+eventNodeCPU-1)/eventNodeCPU + 1),
			Template:    tidalv1alpha1.NodeTemplate{Capacity: capacity, Labels: map[string]string{labelBench: env.namespace}},
			ProviderRef: tidalv1alpha1.ProviderRef{Name: tidalv1alpha1.ProviderSim},
		},
	}
	groups := env.tidal.TidalV1alpha1().NodeGroups()
	if _, err := groups.Create(ctx, ng, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create NodeGroup %s: %w", name, err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := groups.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		got.Status.ProvisionTime = &tidalv1alpha1.ProvisionTimeEstimate{Estimate: metav1.Duration{Duration: p.ProvisioningDelay.D()}, Samples: 1}
		_, err = groups.UpdateStatus(ctx, got, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("NodeGroup %s: seed status.provisionTime: %w", name, err)
	}
	return name, nil
}

// speedups states, for metric, the first run's p50 and max over every later run's: how many times faster each
// variant is than the baseline (the Comparisons hold the inverse, other over baseline).
func speedups(res *result.Result, metric string) []string {
	if len(res.Runs) < 2 {
		return nil
	}
	base := res.Runs[0].Metric(metric)
	if base == nil || base.Count == 0 {
		return nil
	}
	var notes []string
	for _, r := range res.Runs[1:] {
		m := r.Metric(metric)
		if m == nil || m.Count == 0 || m.P50 == 0 || m.Max == 0 {
			continue
		}
		notes = append(notes, fmt.Sprintf("%s: %s/%s = %.2f (p50), %.2f (max)", metric, res.Runs[0].Autoscaler, r.Autoscaler, base.P50/m.P50, base.Max/m.Max))
	}
	return notes
}
