//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	externalmetricsv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	"k8s.io/utils/ptr"
)

// scaleHPAMode: a ScaledObject in mode hpa on a Redis list. The operator creates an HPA on an External metric;
// the kube-apiserver serves that metric through the aggregated external.metrics.k8s.io from the adapter
// container, and it is the list's length; the dev cluster's own HPA controller scales the workers up when the
// list fills, and the workers drain it.
func (e *env) scaleHPAMode(ctx context.Context) {
	t := e.t
	const name, hpaName = "hpa-worker", "tidal-hpa-hpa-worker"
	list := fmt.Sprintf("tidal-e2e-hpa-%d", time.Now().UnixNano())
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rdb.Close()
	t.Cleanup(func() { rdb.Del(context.Background(), list) })

	// One item every 5 s per worker: the list stays long enough for the HPA (15 s sync) to see it and act.
	e.createWorker(ctx, name, list, 1, "5s")
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tidal.dev/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": name, "namespace": demoNS},
		"spec": map[string]any{
			"mode":            "hpa",
			"scaleTargetRef":  map[string]any{"name": name},
			"pollingInterval": int64(1),
			"minReplicaCount": int64(1), "maxReplicaCount": int64(4),
			"triggers": []any{map[string]any{"type": "redis",
				"metadata": map[string]any{"address": redisAddr, "listName": list, "listLength": "5"}}},
		},
	}}
	if _, err := e.dyn.Resource(scaledObjects).Namespace(demoNS).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ScaledObject: %v", err)
	}
	e.waitReadyCondition(ctx, name)

	var hpa *autoscalingv2.HorizontalPodAutoscaler
	e.waitFor(ctx, "the operator's HPA on one External metric", func() bool {
		var err error
		hpa, err = e.dc.Client.AutoscalingV2().HorizontalPodAutoscalers(demoNS).Get(ctx, hpaName, metav1.GetOptions{})
		return err == nil && len(hpa.Spec.Metrics) == 1 && hpa.Spec.Metrics[0].Type == autoscalingv2.ExternalMetricSourceType
	}, func() string { return fmt.Sprintf("HPA %+v", hpa) })
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != name {
		t.Fatalf("HPA scale target %+v, want Deployment %s", ref, name)
	}
	if min, max := hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas; min == nil || *min != 1 || max != 4 {
		t.Fatalf("HPA replicas min %v max %d, want 1 and 4", min, max)
	}
	metric := hpa.Spec.Metrics[0].External.Metric

	const items = 24 // ceil(24/5) = 5 replicas, capped at 4
	for i := range items {
		if err := rdb.RPush(ctx, list, fmt.Sprintf("item-%d", i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	pushed := time.Now()
	// Through the kube-apiserver: aggregator, APIService, Service route, the adapter's auth and poller cache.
	var got, length int64
	e.waitFor(ctx, "external.metrics.k8s.io serves the list length", func() bool {
		got = e.externalMetric(ctx, metric)
		n, err := rdb.LLen(ctx, list).Result()
		length = n
		// The adapter polls every second and a worker takes an item every 5 s: the cache is the length now or
		// one item behind.
		return err == nil && length > 0 && (got == length || got == length+1)
	}, func() string { return fmt.Sprintf("metric %s = %d, list length %d", metric.Name, got, length) })
	t.Logf("GET external.metrics.k8s.io .../%s = %d (list length %d)", metric.Name, got, length)

	e.waitFor(ctx, "the HPA controller scales the workers up", func() bool { return e.replicas(ctx, name) >= 3 },
		func() string { return fmt.Sprintf("replicas %d", e.replicas(ctx, name)) })
	t.Logf("HPA scaled to %d %.1fs after the push", e.replicas(ctx, name), time.Since(pushed).Seconds())
	e.waitFor(ctx, "the workers drain the list", func() bool {
		n, err := rdb.LLen(ctx, list).Result()
		return err == nil && n == 0
	})
	t.Logf("list drained %.1fs after the push", time.Since(pushed).Seconds())

	if err := e.dyn.Resource(scaledObjects).Namespace(demoNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(ctx, "ScaledObject and its HPA deleted", func() bool {
		_, soErr := e.dyn.Resource(scaledObjects).Namespace(demoNS).Get(ctx, name, metav1.GetOptions{})
		_, hpaErr := e.dc.Client.AutoscalingV2().HorizontalPodAutoscalers(demoNS).Get(ctx, hpaName, metav1.GetOptions{})
		return apierrors.IsNotFound(soErr) && apierrors.IsNotFound(hpaErr)
	})
	if err := e.dc.Client.AppsV1().Deployments(demoNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// externalMetric is the sum of the values GET /apis/external.metrics.k8s.io/v1beta1/namespaces/demoNS/<name>
// returns for the HPA's metric identifier (its selector included), or -1 on an error.
func (e *env) externalMetric(ctx context.Context, id autoscalingv2.MetricIdentifier) int64 {
	req := e.dc.Client.Discovery().RESTClient().Get().AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces", demoNS, id.Name)
	if id.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(id.Selector)
		if err != nil {
			e.t.Fatalf("HPA metric selector: %v", err)
		}
		req = req.Param("labelSelector", sel.String())
	}
	raw, err := req.DoRaw(ctx)
	if err != nil {
		e.t.Logf("GET external metric %s: %v", id.Name, err)
		return -1
	}
	var list externalmetricsv1beta1.ExternalMetricValueList
	if err := json.Unmarshal(raw, &list); err != nil {
		e.t.Fatalf("external metric %s: %v: %s", id.Name, err, raw)
	}
	var sum int64
	for _, v := range list.Items {
		sum += v.Value.Value()
	}
	return sum
}

// scaleOnCPU: a plain autoscaling/v2 HPA on CPU utilization (no ScaledObject) of demo workers burning a CPU each
// as containers on the container node. metrics.k8s.io is the adapter's, which reads the container node's
// kubelet /metrics/resource (real cgroup usage); the HPA controller scales the burners up, and back down once
// the load is switched off (BURN_CPU=false rolls idle pods).
func (e *env) scaleOnCPU(ctx context.Context) {
	t := e.t
	const name = "cpu-burner"
	// One burner gets a small share of a core on a busy 2-core machine: 20m requested keeps it far above the
	// 50% target, an idle worker far below.
	e.createWorker(ctx, name, fmt.Sprintf("tidal-e2e-idle-%d", time.Now().UnixNano()), 1, "100ms")
	setBurn := func(on bool) {
		patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"worker","env":[{"name":"BURN_CPU","value":"%t"}],`+
			`"resources":{"requests":{"cpu":"20m"}}}]}}}}`, on)
		if _, err := e.dc.Client.AppsV1().Deployments(demoNS).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("set BURN_CPU=%t: %v", on, err)
		}
	}
	setBurn(true)

	var last string
	e.waitFor(ctx, "measured PodMetrics of a burner", func() bool {
		raw, err := e.dc.Client.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces", demoNS, "pods").
			Param("labelSelector", "app="+name).DoRaw(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		last = string(raw)
		var list metricsv1beta1.PodMetricsList
		if err := json.Unmarshal(raw, &list); err != nil {
			return false
		}
		for _, pm := range list.Items {
			// Simulated usage would be half the request, 10m; a burning container measures far more.
			if len(pm.Containers) == 1 && pm.Containers[0].Usage.Cpu().MilliValue() >= 50 {
				return true
			}
		}
		return false
	}, func() string { return last })
	t.Logf("metrics.k8s.io: %s", last)

	zero := int32(0)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: demoNS},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    3,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{
					Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50),
				}},
			}},
			// The default 5-minute downscale stabilization would outlast the test.
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zero},
			},
		},
	}
	if _, err := e.dc.Client.AutoscalingV2().HorizontalPodAutoscalers(demoNS).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		h, err := e.dc.Client.AutoscalingV2().HorizontalPodAutoscalers(demoNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		b, _ := json.Marshal(h.Status)
		return string(b)
	}
	start := time.Now()
	e.waitFor(ctx, "the HPA scales the burners up to 3", func() bool { return e.replicas(ctx, name) == 3 }, status)
	t.Logf("scaled up to 3 in %.1fs: %s", time.Since(start).Seconds(), status())

	setBurn(false)
	stopped := time.Now()
	e.waitFor(ctx, "the HPA scales back down to 1 once the load stops", func() bool { return e.replicas(ctx, name) == 1 }, status)
	t.Logf("scaled down to 1 %.1fs after the load stopped: %s", time.Since(stopped).Seconds(), status())

	if err := e.dc.Client.AutoscalingV2().HorizontalPodAutoscalers(demoNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.dc.Client.AppsV1().Deployments(demoNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}
