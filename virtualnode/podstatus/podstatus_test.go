package podstatus

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running(ready bool) corev1.ContainerStatus {
	return corev1.ContainerStatus{Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func terminated(code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func waiting() corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
}

func crashLooping() corev1.ContainerStatus {
	return corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
	}
}

func TestBuildPhaseAndReady(t *testing.T) {
	cases := []struct {
		name       string
		policy     corev1.RestartPolicy
		containers []corev1.ContainerStatus
		failed     bool
		wantPhase  corev1.PodPhase
		wantReady  bool
	}{
		{name: "no containers yet", policy: corev1.RestartPolicyAlways, wantPhase: corev1.PodPending},
		{name: "creating", policy: corev1.RestartPolicyAlways, containers: []corev1.ContainerStatus{waiting()}, wantPhase: corev1.PodPending},
		{name: "one of two started", policy: corev1.RestartPolicyAlways, containers: []corev1.ContainerStatus{running(true), waiting()}, wantPhase: corev1.PodPending},
		{name: "running and ready", policy: corev1.RestartPolicyAlways, containers: []corev1.ContainerStatus{running(true)}, wantPhase: corev1.PodRunning, wantReady: true},
		{name: "running, one not ready", policy: corev1.RestartPolicyAlways, containers: []corev1.ContainerStatus{running(true), running(false)}, wantPhase: corev1.PodRunning},
		{name: "crash loop under Always is Running", policy: corev1.RestartPolicyAlways, containers: []corev1.ContainerStatus{crashLooping()}, wantPhase: corev1.PodRunning},
		{name: "all exited 0 under Never", policy: corev1.RestartPolicyNever, containers: []corev1.ContainerStatus{terminated(0), terminated(0)}, wantPhase: corev1.PodSucceeded},
		{name: "one failed under Never", policy: corev1.RestartPolicyNever, containers: []corev1.ContainerStatus{terminated(0), terminated(2)}, wantPhase: corev1.PodFailed},
		{name: "failed under OnFailure restarts", policy: corev1.RestartPolicyOnFailure, containers: []corev1.ContainerStatus{terminated(2)}, wantPhase: corev1.PodRunning},
		{name: "succeeded under OnFailure", policy: corev1.RestartPolicyOnFailure, containers: []corev1.ContainerStatus{terminated(0)}, wantPhase: corev1.PodSucceeded},
		{name: "pod-level failure", policy: corev1.RestartPolicyAlways, containers: []corev1.ContainerStatus{running(true)}, failed: true, wantPhase: corev1.PodFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: tc.policy}}
			st := Build(Input{Pod: pod, Containers: tc.containers, Failed: tc.failed, Now: metav1.Now()})
			if st.Phase != tc.wantPhase {
				t.Errorf("phase = %s, want %s", st.Phase, tc.wantPhase)
			}
			ready := false
			for _, c := range st.Conditions {
				if c.Type == corev1.PodReady {
					ready = c.Status == corev1.ConditionTrue
				}
			}
			if ready != tc.wantReady {
				t.Errorf("Ready = %v, want %v", ready, tc.wantReady)
			}
		})
	}
}

func TestBuildKeepsTransitionTimeOfUnchangedConditions(t *testing.T) {
	old := metav1.NewTime(metav1.Now().Add(-3600e9))
	pod := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: old}}}}
	st := Build(Input{Pod: pod, Containers: []corev1.ContainerStatus{running(true)}, Now: metav1.Now()})
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.Equal(&old) {
			t.Errorf("Ready transition time = %v, want the unchanged %v", c.LastTransitionTime, old)
		}
	}
}

func TestTerminatedMarksRunningContainersKilled(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}}
	prev := &corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
		{Name: "a", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, Ready: true},
		{Name: "b", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
	}}
	st := Terminated(pod, prev, "Killed", metav1.Now())
	if st.Phase != corev1.PodFailed {
		t.Errorf("phase = %s, want Failed (a was killed)", st.Phase)
	}
	a := st.ContainerStatuses[0]
	if a.State.Terminated == nil || a.State.Terminated.ExitCode != 137 || a.State.Terminated.Reason != "Killed" || a.Ready {
		t.Errorf("container a = %+v, want terminated 137 Killed, not ready", a)
	}
	if prev.ContainerStatuses[0].State.Running == nil {
		t.Error("Terminated modified its input")
	}
}
