package core

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestClassifyPods restates upstream's TestGroupPods.
func TestClassifyPods(t *testing.T) {
	at := func(d time.Duration) *time.Time { v := testNow.Add(d); return &v }
	ready := func(s corev1.ConditionStatus, d time.Duration) *PodReadiness {
		return &PodReadiness{Status: s, LastTransitionTime: testNow.Add(d)}
	}
	at2 := func(ts time.Duration, window time.Duration) *SampleTime {
		return &SampleTime{Timestamp: testNow.Add(ts), Window: window}
	}
	present := PodSample{Value: 1, Present: true}
	cases := []struct {
		name   string
		pod    PodInfo
		sample PodSample
		time   *SampleTime
		cpu    bool
		want   podClass
	}{
		{name: "count in a ready pod - memory", pod: PodInfo{Phase: corev1.PodSucceeded}, sample: present, time: at2(0, time.Minute), want: podReady},
		{name: "unready a pod without ready condition - CPU", cpu: true, pod: PodInfo{Phase: corev1.PodSucceeded, StartTime: at(0)},
			sample: PodSample{Value: 1, Present: true}, want: podUnready},
		{name: "count in a ready pod with fresh metrics during initialization period - CPU", cpu: true,
			pod:    PodInfo{Phase: corev1.PodSucceeded, StartTime: at(-time.Minute), Ready: ready(T, -30*time.Second)},
			sample: present, time: at2(0, 30*time.Second), want: podReady},
		{name: "unready a ready pod without fresh metrics during initialization period - CPU", cpu: true,
			pod:    PodInfo{Phase: corev1.PodSucceeded, StartTime: at(-time.Minute), Ready: ready(T, -30*time.Second)},
			sample: present, time: at2(0, 60*time.Second), want: podUnready},
		{name: "unready an unready pod during initialization period - CPU", cpu: true,
			pod:    PodInfo{Phase: corev1.PodSucceeded, StartTime: at(-10 * time.Minute), Ready: ready(F, -9*time.Minute-54*time.Second)},
			sample: PodSample{Value: 1, Present: true}, want: podUnready},
		{name: "count in a ready pod without fresh metrics after initialization period - CPU", cpu: true,
			pod:    PodInfo{Phase: corev1.PodSucceeded, StartTime: at(-3 * time.Minute), Ready: ready(T, -3*time.Minute)},
			sample: present, time: at2(-2*time.Minute, time.Minute), want: podReady},
		{name: "count in an unready pod that was ready after initialization period - CPU", cpu: true,
			pod:    PodInfo{Phase: corev1.PodSucceeded, StartTime: at(-10 * time.Minute), Ready: ready(F, -9*time.Minute)},
			sample: PodSample{Value: 1, Present: true}, want: podReady},
		{name: "unready pod that has never been ready after initialization period - CPU", cpu: true,
			pod:    PodInfo{Phase: corev1.PodSucceeded, StartTime: at(-10 * time.Minute), Ready: ready(F, -9*time.Minute-50*time.Second)},
			sample: PodSample{Value: 1, Present: true}, want: podReady},
		{name: "a missing pod", cpu: true, pod: PodInfo{Phase: corev1.PodSucceeded, StartTime: at(-3 * time.Minute)}, want: podMissing},
		{name: "pending pods are unreadied", cpu: true, pod: PodInfo{Phase: corev1.PodPending}, want: podUnready},
		{name: "ignore pods with deletion timestamps", cpu: true, pod: PodInfo{Phase: corev1.PodPending, Deleting: true},
			sample: PodSample{Value: 1, Present: true}, want: podIgnored},
		{name: "ignore pods in a failed state", cpu: true, pod: PodInfo{Phase: corev1.PodFailed}, sample: PodSample{Value: 1, Present: true}, want: podIgnored},
		{name: "ready CPU pod in its initialization period without a sample time counts as unready", cpu: true,
			pod:    PodInfo{Phase: corev1.PodRunning, StartTime: at(-time.Minute), Ready: ready(T, -50*time.Second)},
			sample: present, want: podUnready},
		{name: "non-CPU metrics ignore readiness", pod: PodInfo{Phase: corev1.PodRunning, Ready: ready(F, 0)},
			sample: PodSample{Value: 1, Present: true}, want: podReady},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := podGrouping{cpu: tc.cpu, now: testNow, cpuInitializationPeriod: 2 * time.Minute, initialReadinessDelay: 10 * time.Second}
			if got := g.classify(&tc.pod, &tc.sample, tc.time); got != tc.want {
				t.Fatalf("classify = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestPodRequest restates upstream's TestCalculateRequests (with PodLevelResources enabled, its v1.37 default).
func TestPodRequest(t *testing.T) {
	cpu := func(m int64) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(m, resource.DecimalSI)}
	}
	always := corev1.ContainerRestartPolicyAlways
	twoContainers := []corev1.Container{{Name: "container1", Resources: corev1.ResourceRequirements{Requests: cpu(100)}},
		{Name: "container2", Resources: corev1.ResourceRequirements{Requests: cpu(50)}}}
	cases := []struct {
		name      string
		spec      corev1.PodSpec
		container string
		want      int64
		wantErr   string
	}{
		{name: "sum container requests", spec: corev1.PodSpec{Containers: twoContainers}, want: 150},
		{name: "pod-level requests override container requests", spec: corev1.PodSpec{Containers: twoContainers,
			Resources: &corev1.ResourceRequirements{Requests: cpu(800)}}, want: 800},
		{name: "missing container request", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "container1"},
			{Name: "container2", Resources: corev1.ResourceRequirements{Requests: cpu(50)}}}}, wantErr: "missing request for cpu in container container1"},
		{name: "pod-level requests cover a missing container request", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "container1"},
			{Name: "container2", Resources: corev1.ResourceRequirements{Requests: cpu(50)}}}, Resources: &corev1.ResourceRequirements{Requests: cpu(800)}}, want: 800},
		{name: "named container only", spec: corev1.PodSpec{Containers: twoContainers}, container: "container1", want: 100},
		{name: "named container ignores pod-level requests", spec: corev1.PodSpec{Containers: twoContainers,
			Resources: &corev1.ResourceRequirements{Requests: cpu(800)}}, container: "container1", want: 100},
		{name: "restartable init containers count", spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "container1", Resources: corev1.ResourceRequirements{Requests: cpu(100)}}},
			InitContainers: []corev1.Container{{Name: "init-container1", Resources: corev1.ResourceRequirements{Requests: cpu(20)}},
				{Name: "restartable-container1", RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: cpu(50)}}}}, want: 150},
		{name: "non-existent container", spec: corev1.PodSpec{Containers: twoContainers}, container: "nope", wantErr: "container nope not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkPodRequest(t, tc.spec, tc.container, corev1.ResourceCPU, tc.want, tc.wantErr)
		})
	}
}

// TestPodRequestPodLevelFallback: with pod-level requests set, the answer is component-helpers' PodRequests, as
// upstream's calculatePodLevelRequests: resources requested only at container level come from the containers'
// aggregate (sidecars summed, the largest init container as a floor), overhead is added.
func TestPodRequestPodLevelFallback(t *testing.T) {
	q := resource.MustParse
	always := corev1.ContainerRestartPolicyAlways
	req := func(kv ...string) corev1.ResourceRequirements {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = q(kv[i+1])
		}
		return corev1.ResourceRequirements{Requests: l}
	}
	podCPU := func(v string) *corev1.ResourceRequirements { r := req("cpu", v); return &r }
	cases := []struct {
		name     string
		spec     corev1.PodSpec
		resource corev1.ResourceName
		want     int64
		wantErr  string
	}{
		{name: "pod-level cpu only: memory from the containers", resource: corev1.ResourceMemory, spec: corev1.PodSpec{
			Resources:  podCPU("2"),
			Containers: []corev1.Container{{Name: "a", Resources: req("memory", "100Mi")}, {Name: "b", Resources: req("memory", "28Mi")}}},
			want: 128 * 1024 * 1024 * 1000},
		{name: "pod-level cpu only: cpu from the pod", resource: corev1.ResourceCPU, spec: corev1.PodSpec{
			Resources:  podCPU("2"),
			Containers: []corev1.Container{{Name: "a", Resources: req("cpu", "100m", "memory", "100Mi")}}},
			want: 2000},
		{name: "sidecar counted with the containers", resource: corev1.ResourceMemory, spec: corev1.PodSpec{
			Resources:      podCPU("1"),
			Containers:     []corev1.Container{{Name: "a", Resources: req("memory", "100Mi")}},
			InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: &always, Resources: req("memory", "50Mi")}}},
			want: 150 * 1024 * 1024 * 1000},
		{name: "a large init container is the floor", resource: corev1.ResourceMemory, spec: corev1.PodSpec{
			Resources:      podCPU("1"),
			Containers:     []corev1.Container{{Name: "a", Resources: req("memory", "100Mi")}},
			InitContainers: []corev1.Container{{Name: "migrate", Resources: req("memory", "1Gi")}}},
			want: 1024 * 1024 * 1024 * 1000},
		{name: "overhead added to the pod-level request", resource: corev1.ResourceCPU, spec: corev1.PodSpec{
			Resources:  podCPU("1"),
			Overhead:   corev1.ResourceList{corev1.ResourceCPU: q("250m")},
			Containers: []corev1.Container{{Name: "a"}}},
			want: 1250},
		{name: "requested nowhere", resource: corev1.ResourceMemory, spec: corev1.PodSpec{
			Resources:  podCPU("1"),
			Containers: []corev1.Container{{Name: "a", Resources: req("cpu", "1")}}},
			wantErr: "missing pod-level request for memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkPodRequest(t, tc.spec, "", tc.resource, tc.want, tc.wantErr)
		})
	}
}

// checkPodRequest checks PodRequest of a pod with spec: want, or an error containing wantErr when it is set.
func checkPodRequest(t *testing.T, spec corev1.PodSpec, container string, res corev1.ResourceName, want int64, wantErr string) {
	t.Helper()
	got, err := PodRequest(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: spec}, container, res)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want %q", err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("PodRequest = %d, %v; want %d", got, err, want)
	}
}

func TestPodFromObject(t *testing.T) {
	start := metav1.NewTime(testNow.Add(-time.Minute))
	deleted := metav1.NewTime(testNow)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", DeletionTimestamp: &deleted},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: T},
			{Type: corev1.PodReady, Status: F, LastTransitionTime: start},
		}},
	}
	got := PodFromObject(pod)
	if got.Name != "p" || !got.Deleting || got.Phase != corev1.PodRunning || got.StartTime == nil || !got.StartTime.Equal(start.Time) ||
		got.Ready == nil || got.Ready.Status != F || !got.Ready.LastTransitionTime.Equal(start.Time) {
		t.Fatalf("PodFromObject = %+v", got)
	}
	if bare := PodFromObject(&corev1.Pod{}); bare.StartTime != nil || bare.Ready != nil {
		t.Fatalf("pod without status: %+v", bare)
	}
}
