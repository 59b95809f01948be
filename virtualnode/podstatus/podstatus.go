// Package podstatus derives a pod's phase and conditions from its container statuses, the way the kubelet does,
// so every virtual-node backend reports pods alike.
package podstatus

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Input is what a backend knows about a pod.
type Input struct {
	Pod        *corev1.Pod
	Containers []corev1.ContainerStatus // one per spec container, in spec order
	HostIP     string
	PodIP      string
	StartTime  metav1.Time
	// Reason and Message are set for a pod-level problem (for example a failed start).
	Reason, Message string
	// Failed forces phase Failed (a pod-level failure).
	Failed bool
	// Now stamps condition transitions.
	Now metav1.Time
}

// Build returns the pod status for in. Conditions keep their last transition time when their status is unchanged
// from the pod's current status.
func Build(in Input) *corev1.PodStatus {
	st := &corev1.PodStatus{
		Phase:             phase(in),
		HostIP:            in.HostIP,
		PodIP:             in.PodIP,
		Reason:            in.Reason,
		Message:           in.Message,
		ContainerStatuses: in.Containers,
		QOSClass:          in.Pod.Status.QOSClass,
	}
	if !in.StartTime.IsZero() {
		t := in.StartTime
		st.StartTime = &t
	}
	if in.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: in.HostIP}}
	}
	if in.PodIP != "" {
		st.PodIPs = []corev1.PodIP{{IP: in.PodIP}}
	}
	ready := st.Phase == corev1.PodRunning && len(in.Containers) > 0
	for _, c := range in.Containers {
		ready = ready && c.Ready
	}
	scheduled := corev1.ConditionTrue
	initialized := corev1.ConditionTrue
	readyStatus := boolCondition(ready)
	st.Conditions = []corev1.PodCondition{
		condition(in, corev1.PodScheduled, scheduled),
		condition(in, corev1.PodInitialized, initialized),
		condition(in, corev1.ContainersReady, readyStatus),
		condition(in, corev1.PodReady, readyStatus),
	}
	return st
}

func boolCondition(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func condition(in Input, t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
	c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: in.Now}
	for _, old := range in.Pod.Status.Conditions {
		if old.Type == t && old.Status == s && !old.LastTransitionTime.IsZero() {
			c.LastTransitionTime = old.LastTransitionTime
		}
	}
	return c
}

// phase follows the kubelet's getPhase: Pending until every container started once, Running while any runs or
// will be restarted, Succeeded/Failed once all terminated for good.
func phase(in Input) corev1.PodPhase {
	if in.Failed {
		return corev1.PodFailed
	}
	if len(in.Containers) == 0 {
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded, everStarted int
	for _, c := range in.Containers {
		switch {
		case c.State.Running != nil:
			running++
			everStarted++
		case c.State.Terminated != nil:
			stopped++
			everStarted++
			if c.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case c.State.Waiting != nil:
			if c.LastTerminationState.Terminated != nil {
				everStarted++
				stopped++
			} else {
				waiting++
			}
		}
	}
	policy := in.Pod.Spec.RestartPolicy
	switch {
	case waiting > 0 && everStarted < len(in.Containers):
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped == len(in.Containers):
		if policy == corev1.RestartPolicyAlways {
			return corev1.PodRunning // restarting
		}
		if succeeded == len(in.Containers) {
			return corev1.PodSucceeded
		}
		if policy == corev1.RestartPolicyOnFailure {
			return corev1.PodRunning // the failed ones restart
		}
		return corev1.PodFailed
	default:
		return corev1.PodPending
	}
}

// Terminal reports whether phase is Succeeded or Failed.
func Terminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// Terminated returns status with every container that is not terminated marked terminated with reason, for a pod
// the backend stopped.
func Terminated(pod *corev1.Pod, prev *corev1.PodStatus, reason string, now metav1.Time) *corev1.PodStatus {
	st := prev.DeepCopy()
	if st == nil {
		st = &corev1.PodStatus{}
	}
	for i := range st.ContainerStatuses {
		c := &st.ContainerStatuses[i]
		if c.State.Terminated != nil {
			continue
		}
		var started metav1.Time
		if c.State.Running != nil {
			started = c.State.Running.StartedAt
		}
		c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: reason, StartedAt: started, FinishedAt: now,
		}}
		c.Ready = false
		started2 := false
		c.Started = &started2
	}
	if len(st.ContainerStatuses) == 0 {
		for _, c := range pod.Spec.Containers {
			st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: reason, FinishedAt: now}},
			})
		}
	}
	allZero := true
	for _, c := range st.ContainerStatuses {
		allZero = allZero && c.State.Terminated.ExitCode == 0
	}
	if allZero {
		st.Phase = corev1.PodSucceeded
	} else {
		st.Phase = corev1.PodFailed
	}
	for i := range st.Conditions {
		if st.Conditions[i].Type == corev1.PodReady || st.Conditions[i].Type == corev1.ContainersReady {
			if st.Conditions[i].Status != corev1.ConditionFalse {
				st.Conditions[i].Status = corev1.ConditionFalse
				st.Conditions[i].LastTransitionTime = now
			}
		}
	}
	return st
}
