package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/internal/devcluster"
)

// workerName is the Deployment (and ScaledObject) every scale scenario creates.
const workerName = "bench-worker"

// createNamespace makes a fresh namespace for one run and returns a func that deletes it.
func createNamespace(ctx context.Context, c *devcluster.Cluster, scenarioName string) (string, func(), error) {
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: fmt.Sprintf("tidal-bench-%.30s-", scenarioName),
		Labels:       map[string]string{"tidal.dev/bench": "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("create namespace for %s: %w", scenarioName, err)
	}
	name := ns.Name
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		policy := metav1.DeletePropagationBackground
		_ = c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
	}
	err = devcluster.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("namespace %s: default ServiceAccount: %w", name, err)
	}
	return name, cleanup, nil
}

// scaledWorkload describes the Deployment at zero and its ScaledObject.
type scaledWorkload struct {
	Name            string
	Mode            string
	Trigger         tidalv1alpha1.ScaleTriggers
	MaxReplicas     int32
	PollingInterval time.Duration
	Cooldown        time.Duration
	// ScaleDownStabilization, when set, goes into advanced.horizontalPodAutoscalerConfig.behavior.
	ScaleDownStabilization *time.Duration
	// ScaleUpAtOnce replaces the default scale-up rules (+4 pods or +100 % per 15s) with ones that allow any
	// step at once, so one decision takes the target from one replica to the queue's count.
	ScaleUpAtOnce bool
	// Placement is the ScaledObject's spec.placement.
	Placement *tidalv1alpha1.Placement
	// Pod, when set, shapes the Deployment's pod spec (requests, affinity).
	Pod func(*corev1.PodSpec)
}

func deployment(name string) *appsv1.Deployment {
	zero := int32(0)
	grace := int64(0)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{Name: "worker", Image: "tidal/demo-worker",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}},
				},
			},
		},
	}
}

// create makes the Deployment (at zero) and the ScaledObject in namespace.
func (w scaledWorkload) create(ctx context.Context, c *devcluster.Cluster, tc tidalclient.Interface, namespace string) error {
	d := deployment(w.Name)
	if w.Pod != nil {
		w.Pod(&d.Spec.Template.Spec)
	}
	if _, err := c.Client.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Deployment %s/%s: %w", namespace, w.Name, err)
	}
	polling := max(int32(w.PollingInterval/time.Second), 1)
	cooldown := int32(w.Cooldown / time.Second)
	zero, maxR := int32(0), w.MaxReplicas
	so := &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			Mode:            tidalv1alpha1.ScalingMode(w.Mode),
			ScaleTargetRef:  tidalv1alpha1.ScaleTarget{Name: w.Name},
			PollingInterval: &polling,
			CooldownPeriod:  &cooldown,
			MinReplicaCount: &zero,
			MaxReplicaCount: &maxR,
			Triggers:        []tidalv1alpha1.ScaleTriggers{w.Trigger},
			Placement:       w.Placement,
		},
	}
	var behavior autoscalingv2.HorizontalPodAutoscalerBehavior
	if w.ScaleDownStabilization != nil {
		secs := int32(*w.ScaleDownStabilization / time.Second)
		behavior.ScaleDown = &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &secs}
	}
	if w.ScaleUpAtOnce {
		zeroWindow := int32(0)
		behavior.ScaleUp = &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zeroWindow,
			Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 10000, PeriodSeconds: 1}}}
	}
	if behavior.ScaleDown != nil || behavior.ScaleUp != nil {
		so.Spec.Advanced = &tidalv1alpha1.AdvancedConfig{HorizontalPodAutoscalerConfig: &tidalv1alpha1.HorizontalPodAutoscalerConfig{Behavior: &behavior}}
	}
	if _, err := tc.TidalV1alpha1().ScaledObjects(namespace).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ScaledObject %s/%s: %w", namespace, w.Name, err)
	}
	return nil
}

// start creates the workload in the run's namespace, watches it, and waits for its ScaledObject to be Ready;
// the caller stops the observer.
func (w scaledWorkload) start(ctx context.Context, env *runEnv) (*observer, error) {
	if err := w.create(ctx, env.opts.Cluster, env.tidal, env.namespace); err != nil {
		return nil, err
	}
	obs, err := newObserver(ctx, env.opts.Cluster.Client, env.namespace, w.Name)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, env.tidal, env.namespace, w.Name, iterTimeout(env.params.Timeout.D())); err != nil {
		obs.stop()
		return nil, err
	}
	return obs, nil
}

// waitReady waits for the ScaledObject's Ready condition, so measurements start with the autoscaler in place.
func waitReady(ctx context.Context, tc tidalclient.Interface, namespace, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := devcluster.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		so, err := tc.TidalV1alpha1().ScaledObjects(namespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(so.Status.Conditions, tidalv1alpha1.ConditionReady), nil
	})
	if err != nil {
		return fmt.Errorf("ScaledObject %s/%s never became Ready: %w", namespace, name, err)
	}
	return nil
}

func randomSuffix() string { return fmt.Sprintf("%06x", rand.IntN(1<<24)) }
