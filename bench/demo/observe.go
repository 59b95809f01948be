package demo

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// observe waits for the operator to settle at zero, pushes the burst, works the queue as the Running pods
// would, and records the timeline until the workload is back at zero.
func observe(ctx context.Context, kube kubernetes.Interface, rc *goredis.Client, o Options, list string) (*Result, error) {
	res := &Result{FirstReplica: -1, FirstRunning: -1, Drained: -1, BackToZero: -1}
	fmt.Fprintf(o.Out, "pushing %d items to Redis list %s (target %d per replica, max %d replicas)\n", o.Items, list, o.ListLength, o.MaxReplicas)
	fmt.Fprintf(o.Out, "%7s %7s %8s %8s %6s %10s\n", "t", "queue", "desired", "running", "nodes", "processed")

	start := time.Now()
	items := make([]any, o.Items)
	for i := range items {
		items[i] = fmt.Sprintf("job-%d", i)
	}
	if err := rc.RPush(ctx, list, items...).Err(); err != nil {
		return nil, fmt.Errorf("push work: %w", err)
	}

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastPrint := time.Time{}
	var credit float64
	lastWork := time.Now()
	for {
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("demo did not finish: %w (last: %+v)", ctx.Err(), last(res))
		case <-tick.C:
		}
		now := time.Since(start)
		s, err := snapshot(ctx, kube, rc, o, list)
		if err != nil {
			return res, err
		}
		if o.Containers != nil {
			// The worker containers pop the items; an item popped is counted as processed.
			res.Processed = max(res.Processed, int64(o.Items)-s.Queue)
		} else {
			// Each Running pod works ItemsPerPodSecond items per second.
			credit += float64(s.Running*o.ItemsPerPodSecond) * time.Since(lastWork).Seconds()
			lastWork = time.Now()
			for ; credit >= 1 && s.Queue > 0; credit-- {
				if err := rc.LPop(ctx, list).Err(); err != nil && err != goredis.Nil {
					return res, fmt.Errorf("work the queue: %w", err)
				}
				s.Queue--
				res.Processed++
			}
			if s.Queue == 0 {
				credit = 0
			}
		}
		s.At, s.Finished = now, res.Processed
		res.Timeline = append(res.Timeline, s)
		res.PeakReplicas = max(res.PeakReplicas, s.Desired)
		res.PeakNodes = max(res.PeakNodes, s.Nodes)
		if res.FirstReplica < 0 && s.Desired > 0 {
			res.FirstReplica = now
		}
		if res.FirstRunning < 0 && s.Running > 0 {
			res.FirstRunning = now
		}
		if res.Drained < 0 && s.Queue == 0 && res.Processed > 0 {
			res.Drained = now
		}
		if time.Since(lastPrint) >= time.Second {
			fmt.Fprintf(o.Out, "%6.1fs %7d %8d %8d %6d %10d\n", now.Seconds(), s.Queue, s.Desired, s.Running, s.Nodes, res.Processed)
			lastPrint = time.Now()
		}
		if res.BackToZero < 0 && res.Drained >= 0 && s.Desired == 0 && s.Running == 0 {
			res.BackToZero = now
		}
		// Done when the workload is back at zero and, with the node autoscaler, its nodes are gone too.
		if res.BackToZero >= 0 && (!o.NodeAutoscaler || s.Nodes == 0) {
			fmt.Fprintf(o.Out, "%6.1fs %7d %8d %8d %6d %10d\n", now.Seconds(), s.Queue, s.Desired, s.Running, s.Nodes, res.Processed)
			return res, nil
		}
	}
}

func last(r *Result) Sample {
	if len(r.Timeline) == 0 {
		return Sample{}
	}
	return r.Timeline[len(r.Timeline)-1]
}

func snapshot(ctx context.Context, kube kubernetes.Interface, rc *goredis.Client, o Options, list string) (Sample, error) {
	var s Sample
	ns := o.Namespace
	n, err := rc.LLen(ctx, list).Result()
	if err != nil {
		return s, fmt.Errorf("queue length: %w", err)
	}
	s.Queue = n
	scale, err := kube.AppsV1().Deployments(ns).GetScale(ctx, workerName, metav1.GetOptions{})
	if err != nil {
		return s, fmt.Errorf("read scale: %w", err)
	}
	s.Desired = scale.Spec.Replicas
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + workerName})
	if err != nil {
		return s, fmt.Errorf("list pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			s.Running++
		}
	}
	nodeSel := metav1.ListOptions{}
	if o.NodeAutoscaler {
		nodeSel.LabelSelector = groupNodeSelector(ns)
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, nodeSel)
	if err != nil {
		return s, fmt.Errorf("list nodes: %w", err)
	}
	s.Nodes = len(nodes.Items)
	return s, nil
}
