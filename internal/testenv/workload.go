package testenv

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podTemplate is a small worker pod placed on the dev cluster's kwok nodes (simulated, so it never runs an image).
func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "worker", Image: "tidal/demo-worker",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
				}},
			}},
			NodeSelector: map[string]string{"type": "kwok"},
			Tolerations:  []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		},
	}
}

// NewDeployment is a Deployment of worker pods on kwok nodes, labelled app=name.
func NewDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels),
		},
	}
}

// NewStatefulSet is a StatefulSet of worker pods on kwok nodes, labelled app=name.
func NewStatefulSet(name string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels),
		},
	}
}

// Deployment creates NewDeployment(name, replicas), changed by mutate, in the test's namespace.
func (e *Env) Deployment(name string, replicas int32, mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	e.T.Helper()
	d := NewDeployment(name, replicas)
	for _, m := range mutate {
		m(d)
	}
	out, err := e.Cluster.Client.AppsV1().Deployments(e.NS).Create(e.Ctx, d, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// StatefulSet creates NewStatefulSet(name, replicas) in the test's namespace.
func (e *Env) StatefulSet(name string, replicas int32) *appsv1.StatefulSet {
	e.T.Helper()
	out, err := e.Cluster.Client.AppsV1().StatefulSets(e.NS).Create(e.Ctx, NewStatefulSet(name, replicas), metav1.CreateOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// Replicas reads the Deployment's /scale subresource.
func (e *Env) Replicas(name string) int32 {
	e.T.Helper()
	s, err := e.Cluster.Client.AppsV1().Deployments(e.NS).GetScale(e.Ctx, name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return s.Spec.Replicas
}
