package app_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledjob"
	scaffold "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testenv/inproc"
)

// Any workload with /scale works: here a StatefulSet.
func TestStatefulSetTarget(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	labels := map[string]string{"app": "db"}
	zero := int32(0)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &zero, ServiceName: "db", PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "tidal/db"}}}},
		},
	}
	if _, err := e.Cluster.Client.AppsV1().StatefulSets(e.NS).Create(e.Ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	so := testenv.RedisScaledObject("db", "db", "127.0.0.1:6379", list)
	so.Spec.ScaleTargetRef.Kind = "StatefulSet"
	e.ScaledObject(so)
	testenv.Push(t, rc, list, 12) // ceil(12/5) = 3
	e.Eventually("StatefulSet at 3 replicas", 60*time.Second, func() (bool, string) {
		s, err := e.Cluster.Client.AppsV1().StatefulSets(e.NS).GetScale(e.Ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return s.Spec.Replicas == 3, fmt.Sprint(s.Spec.Replicas)
	})
	got, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.ScaleTargetKind != "apps/v1.StatefulSet" {
		t.Fatalf("status.scaleTargetKind = %q", got.Status.ScaleTargetKind)
	}
}

// A ScaledJob runs one Job per batch of events, and keeps the finished history within its limit.
func TestScaledJobRunsOneJobPerBatch(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	one := int32(1)
	sj := testenv.RedisScaledJob("batch", testenv.RedisAddr, list, 2)
	// Redis pushes every change, so the long interval makes the sample rounds exactly: one for the burst, one
	// for the drain.
	sj.Spec.PollingInterval = ptr.To[int32](300)
	sj.Spec.SuccessfulJobsHistoryLimit = &one
	e.ScaledJob(sj)
	testenv.Push(t, rc, list, 6) // 3 batches of 2
	jobs := func() []batchv1.Job {
		l, err := e.Cluster.Client.BatchV1().Jobs(e.NS).List(e.Ctx, metav1.ListOptions{LabelSelector: scaledjob.LabelScaledJobName + "=batch"})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	seen := map[string]bool{}
	e.Eventually("3 jobs", 60*time.Second, func() (bool, string) {
		for _, j := range jobs() {
			seen[j.Name] = true
		}
		return len(seen) >= 3, fmt.Sprint(len(seen))
	})
	if len(seen) != 3 {
		t.Fatalf("%d jobs for 3 batches", len(seen))
	}
	// The workers took the batches.
	if err := rc.Del(e.Ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the drain's sample round must not create jobs
	for _, j := range jobs() {
		if !seen[j.Name] {
			t.Fatalf("job %s was created after the list was emptied", j.Name)
		}
	}
	e.Eventually("history trimmed to 1 completed job", 120*time.Second, func() (bool, string) {
		var complete []string
		all := jobs()
		for _, j := range all {
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue && j.DeletionTimestamp == nil {
					complete = append(complete, j.Name)
				}
			}
		}
		sort.Strings(complete)
		return len(all) == 1 && len(complete) == 1, fmt.Sprintf("%d jobs, complete %v", len(all), complete)
	})
}

// Two replicas with leader election: only the leader scales; when it goes, the other takes over.
func TestLeaderElectionFailover(t *testing.T) {
	e := setup(t)
	rc, list := testenv.RedisList(t, "127.0.0.1:6379")
	lease := "tidal-operator-" + e.NS
	leOpts := func(id string) app.Options {
		return app.Options{Election: &scaffold.ElectionOptions{Name: lease, Identity: id,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond}}
	}
	a, stopA := inproc.RunOperator(t, e.Ctx, e.options(leOpts("replica-a")))
	e.Eventually("replica-a leads", 30*time.Second, func() (bool, string) { return a.Leading(), "" })
	b := e.startOperator(leOpts("replica-b"))

	e.Deployment("le", 0)
	e.ScaledObject(testenv.RedisScaledObject("le", "le", "127.0.0.1:6379", list))
	testenv.Push(t, rc, list, 3)
	e.WaitReplicas("le", 1, 30*time.Second)
	if b.Leading() {
		t.Fatal("both replicas lead")
	}

	stopA() // the leader goes away (releases the lease on cancel)
	e.Eventually("replica-b takes over", 30*time.Second, func() (bool, string) { return b.Leading(), "" })
	testenv.Push(t, rc, list, 10) // 13 items → 3 replicas
	e.WaitReplicas("le", 3, 60*time.Second)
	l, err := e.Cluster.Client.CoordinationV1().Leases(e.NS).Get(e.Ctx, lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if holder := leaseHolder(l); holder != "replica-b" {
		t.Fatalf("lease held by %q, want replica-b", holder)
	}
}

func leaseHolder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// A paused ScaledJob (KEDA's annotation) creates no Jobs and says so in its Paused condition; once the
// annotation goes, the events that arrived meanwhile get their Jobs.
func TestScaledJobPaused(t *testing.T) {
	e := setup(t)
	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	sj := testenv.RedisScaledJob("held", testenv.RedisAddr, list, 2)
	sj.Annotations = map[string]string{tidalv1alpha1.KEDAPausedAnnotation: "true"}
	api := e.Tidal.TidalV1alpha1().ScaledJobs(e.NS)
	e.ScaledJob(sj)
	testenv.Push(t, rc, list, 4) // 2 batches of 2
	// The status shows the sample of 4 and Paused=True: the reconcile that saw the sample has run.
	e.Eventually("paused ScaledJob saw the queue", 60*time.Second, func() (bool, string) {
		got, err := api.Get(e.Ctx, "held", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(got.Status.Conditions, tidalv1alpha1.ConditionPaused)
		seen := len(got.Status.Triggers) == 1 && got.Status.Triggers[0].Value == "4"
		return seen && c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("triggers %+v, Paused %+v", got.Status.Triggers, c)
	})
	jobs := func() int {
		l, err := e.Cluster.Client.BatchV1().Jobs(e.NS).List(e.Ctx, metav1.ListOptions{LabelSelector: scaledjob.LabelScaledJobName + "=held"})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	if n := jobs(); n != 0 {
		t.Fatalf("paused ScaledJob created %d jobs", n)
	}
	patch := []byte(`{"metadata":{"annotations":{"` + tidalv1alpha1.KEDAPausedAnnotation + `":null}}}`)
	if _, err := api.Patch(e.Ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Eventually("2 jobs after the pause", 60*time.Second, func() (bool, string) {
		n := jobs()
		return n == 2, fmt.Sprint(n)
	})
	e.Eventually("Paused=False", 30*time.Second, func() (bool, string) {
		got, err := api.Get(e.Ctx, "held", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(got.Status.Conditions, tidalv1alpha1.ConditionPaused)
		return c != nil && c.Status == metav1.ConditionFalse, fmt.Sprintf("%+v", c)
	})
}

// scalingStrategy.pendingPodConditions decides which Jobs count as pending. The Jobs' pods are bound to a node
// nothing runs: scheduled (PodScheduled=True), never ready, never finished. With accurate scaling, a ScaledJob
// whose pendingPodConditions is [PodScheduled] sees no pending Job and keeps adding the queue's Jobs each round;
// one without (a Job is pending until it has a ready pod) stops at the first round's Jobs.
func TestScaledJobPendingPodConditions(t *testing.T) {
	e := setup(t)
	node := "idle-" + e.NS
	nodes := e.Cluster.Client.CoreV1().Nodes()
	if _, err := nodes.Create(e.Ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node,
		Labels: map[string]string{"kubernetes.io/hostname": node}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nodes.Delete(context.Background(), node, metav1.DeleteOptions{}) })
	// A patch, not an update: the node lifecycle controller writes the new node too.
	capacity := `{"pods":"110","cpu":"8","memory":"32Gi"}`
	patch := []byte(`{"status":{"capacity":` + capacity + `,"allocatable":` + capacity + `}}`)
	if _, err := nodes.Patch(e.Ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}

	e.startOperator(app.Options{})
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	create := func(name string, conditions []string) {
		sj := testenv.RedisScaledJob(name, testenv.RedisAddr, list, 1)
		sj.Spec.ScalingStrategy = &tidalv1alpha1.ScalingStrategy{Strategy: tidalv1alpha1.ScalingStrategyAccurate, PendingPodConditions: conditions}
		pod := &sj.Spec.JobTargetRef.Template.Spec
		pod.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
		pod.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		e.ScaledJob(sj)
	}
	create("scheduled", []string{string(corev1.PodScheduled)})
	create("ready", nil)
	jobs := func(name string) int {
		l, err := e.Cluster.Client.BatchV1().Jobs(e.NS).List(e.Ctx, metav1.ListOptions{LabelSelector: scaledjob.LabelScaledJobName + "=" + name})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	testenv.Push(t, rc, list, 2)
	e.Eventually("first round: 2 jobs each", 60*time.Second, func() (bool, string) {
		return jobs("scheduled") >= 2 && jobs("ready") == 2, fmt.Sprintf("scheduled %d, ready %d", jobs("scheduled"), jobs("ready"))
	})
	e.Eventually("scheduled pods: no pending job, more jobs", 90*time.Second, func() (bool, string) {
		n := jobs("scheduled")
		return n >= 4, fmt.Sprint(n)
	})
	// Same queue, same rounds: the Jobs without a ready pod are pending, so none were added.
	if n := jobs("ready"); n != 2 {
		t.Fatalf("ScaledJob without pendingPodConditions has %d jobs, want 2 (its jobs are pending)", n)
	}
}
