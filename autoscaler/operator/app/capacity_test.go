package app_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/internal/testenv"
)

// TestCapacityRequestBeforeScale: a direct-mode scale-up writes the target's CapacityRequest (replicas, selector,
// the pod's scheduling shape, owner) before it writes /scale. The order is read from resource versions, which
// the dev cluster's single etcd issues from one revision counter.
func TestCapacityRequestBeforeScale(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	e.Deployment("worker", 0)
	so := testenv.RedisScaledObject("worker", "worker", "127.0.0.1:6379", list)
	so.Spec.Placement = &tidalv1alpha1.Placement{Policy: tidalv1alpha1.PlacementAuto, MaxPendingSeconds: ptr.To[int32](5)}
	e.ScaledObject(so)
	e.Eventually("Ready condition", 60*time.Second, func() (bool, string) {
		s := e.Condition("worker", tidalv1alpha1.ConditionReady)
		return s == metav1.ConditionTrue, string(s)
	})
	deployments, err := e.Cluster.Client.AppsV1().Deployments(e.NS).Watch(e.Ctx, metav1.ListOptions{FieldSelector: "metadata.name=worker"})
	if err != nil {
		t.Fatal(err)
	}
	defer deployments.Stop()
	requests, err := e.Tidal.TidalV1alpha1().CapacityRequests(e.NS).Watch(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer requests.Stop()

	testenv.Push(t, rc, list, 12) // 5 per replica: 3
	e.WaitReplicas("worker", 3, 60*time.Second)
	var scaledAt int64 // resource version of the first write of spec.replicas > 0
	for scaledAt == 0 {
		select {
		case ev := <-deployments.ResultChan():
			if d, ok := ev.Object.(*appsv1.Deployment); ok && ev.Type == watch.Modified && d.Spec.Replicas != nil && *d.Spec.Replicas > 0 {
				scaledAt, _ = strconv.ParseInt(d.ResourceVersion, 10, 64)
			}
		case <-time.After(time.Minute):
			t.Fatal("no Deployment update seen")
		}
	}
	name := capacity.Name("ScaledObject", "worker")
	cr, err := e.Tidal.TidalV1alpha1().CapacityRequests(e.NS).Get(e.Ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("capacity request %s: %v", name, err)
	}
	var created int64 // resource version of the request's creation
	for created == 0 {
		select {
		case ev := <-requests.ResultChan():
			if r, ok := ev.Object.(*tidalv1alpha1.CapacityRequest); ok && ev.Type == watch.Added && r.Name == name {
				created, _ = strconv.ParseInt(r.ResourceVersion, 10, 64)
			}
		case <-time.After(time.Minute):
			t.Fatal("no capacity request created")
		}
	}
	if created == 0 || created >= scaledAt {
		t.Fatalf("capacity request created at revision %d, /scale written at %d: want the request first", created, scaledAt)
	}
	if cr.Spec.Selector.MatchLabels["app"] != "worker" || cr.Spec.Pod.Requests.Cpu().String() != "100m" ||
		cr.Spec.Pod.NodeSelector["type"] != "kwok" || len(cr.Spec.Pod.Tolerations) != 1 {
		t.Errorf("spec does not describe the workload: %+v", cr.Spec)
	}
	if cr.Spec.Replicas < 1 || !cr.Spec.ExpiresAt.After(time.Now()) {
		t.Errorf("replicas %d expiresAt %s", cr.Spec.Replicas, cr.Spec.ExpiresAt)
	}
	if len(cr.OwnerReferences) != 1 || cr.OwnerReferences[0].Kind != "ScaledObject" || cr.OwnerReferences[0].Name != "worker" {
		t.Errorf("owner references %+v", cr.OwnerReferences)
	}
	if p := cr.Spec.Placement; p == nil || p.Policy != tidalv1alpha1.PlacementAuto || p.MaxPendingSeconds == nil || *p.MaxPendingSeconds != 5 {
		t.Errorf("spec.placement %+v, want the ScaledObject's (auto, 5s)", p)
	}
	// The chain on the ScaledObject's status: sample ≤ decision ≤ capacity request ≤ /scale.
	e.Eventually("status.lastScaleUp", 30*time.Second, func() (bool, string) {
		got, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		tr := got.Status.LastScaleUp
		if tr == nil || tr.CapacityRequest != name || tr.CapacityRequestTime == nil || tr.ScaleTime == nil || tr.ToReplicas <= tr.FromReplicas {
			return false, fmt.Sprintf("%+v", tr)
		}
		if tr.DecisionTime.Before(&tr.SampleTime) || tr.CapacityRequestTime.Before(&tr.DecisionTime) || tr.ScaleTime.Before(tr.CapacityRequestTime) {
			return false, fmt.Sprintf("out of order: %+v", tr)
		}
		return true, ""
	})
	e.Eventually("request updated to 3 replicas", 30*time.Second, func() (bool, string) {
		cr, err := e.Tidal.TidalV1alpha1().CapacityRequests(e.NS).Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return cr.Spec.Replicas == 3, strconv.Itoa(int(cr.Spec.Replicas))
	})
}

// TestCapacityRequestsOff: with NoCapacityRequests the same scale-up writes no request.
func TestCapacityRequestsOff(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{NoCapacityRequests: true})
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	e.Deployment("worker", 0)
	e.ScaledObject(testenv.RedisScaledObject("worker", "worker", "127.0.0.1:6379", list))
	testenv.Push(t, rc, list, 12)
	e.WaitReplicas("worker", 3, 60*time.Second)
	list2, err := e.Tidal.TidalV1alpha1().CapacityRequests(e.NS).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list2.Items) != 0 {
		t.Fatalf("%d capacity requests written with the demand signal off", len(list2.Items))
	}
}

// TestCapacityRequestForForeignHPA: an HPA the operator does not own whose desiredReplicas rises above
// currentReplicas gets a request owned by it. The dev cluster runs no HPA controller, so the test writes the
// HPA's status as that controller would.
func TestCapacityRequestForForeignHPA(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	e.Deployment("web", 1)
	one, ten := int32(1), int32(10)
	hpa, err := e.Cluster.Client.AutoscalingV2().HorizontalPodAutoscalers(e.NS).Create(e.Ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    &one, MaxReplicas: ten,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &ten}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hpa.Status = autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 1, DesiredReplicas: 4}
	if _, err := e.Cluster.Client.AutoscalingV2().HorizontalPodAutoscalers(e.NS).UpdateStatus(e.Ctx, hpa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	name := capacity.Name("HorizontalPodAutoscaler", "web")
	e.Eventually("capacity request for the HPA", 60*time.Second, func() (bool, string) {
		cr, err := e.Tidal.TidalV1alpha1().CapacityRequests(e.NS).Get(e.Ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "not found"
		}
		if err != nil {
			return false, err.Error()
		}
		ok := cr.Spec.Replicas == 4 && cr.Spec.Selector.MatchLabels["app"] == "web" &&
			len(cr.OwnerReferences) == 1 && cr.OwnerReferences[0].Kind == "HorizontalPodAutoscaler" && cr.OwnerReferences[0].UID == hpa.UID
		return ok, strconv.Itoa(int(cr.Spec.Replicas))
	})
}

// TestCapacityRequestForScaledJob: Jobs created for a queue are announced first, with the ScaledJob's pod label
// as selector, and the Jobs' pods carry that label.
func TestCapacityRequestForScaledJob(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	sj := scaledJobFor(e, "batch", list)
	testenv.Push(t, rc, list, 2)
	name := capacity.Name("ScaledJob", sj.Name)
	e.Eventually("capacity request for the ScaledJob", 60*time.Second, func() (bool, string) {
		cr, err := e.Tidal.TidalV1alpha1().CapacityRequests(e.NS).Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return cr.Spec.Replicas >= 1 && cr.Spec.Selector.MatchLabels["scaledjob.tidal.dev/name"] == sj.Name &&
			cr.OwnerReferences[0].Kind == "ScaledJob", strconv.Itoa(int(cr.Spec.Replicas))
	})
	// The request is written before the Jobs: they follow it.
	var jobs *batchv1.JobList
	e.Eventually("Jobs created after the capacity request", 60*time.Second, func() (bool, string) {
		var err error
		jobs, err = e.Cluster.Client.BatchV1().Jobs(e.NS).List(e.Ctx, metav1.ListOptions{LabelSelector: "scaledjob.tidal.dev/name=" + sj.Name})
		if err != nil {
			return false, err.Error()
		}
		return len(jobs.Items) > 0, "no Jobs"
	})
	for _, j := range jobs.Items {
		if j.Spec.Template.Labels["scaledjob.tidal.dev/name"] != sj.Name {
			t.Errorf("job %s: pod labels %v lack the ScaledJob's name", j.Name, j.Spec.Template.Labels)
		}
	}
}

// scaledJobFor creates a ScaledJob named name creating a Job per item of list, changed by mutate.
func scaledJobFor(e *env, name, list string, mutate ...func(*tidalv1alpha1.ScaledJob)) *tidalv1alpha1.ScaledJob {
	e.T.Helper()
	sj := testenv.RedisScaledJob(name, testenv.RedisAddr, list, 1)
	sj.Spec.PollingInterval, sj.Spec.MaxReplicaCount = nil, nil
	sj.Spec.JobTargetRef.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
	for _, m := range mutate {
		m(sj)
	}
	return e.ScaledJob(sj)
}
