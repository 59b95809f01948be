// Package demo is `make demo`: the KEDA card's story on one machine. A Redis list is the work queue; a
// Deployment of tidal-demo-worker sits at zero replicas; Tidal's operator (all-in-one, in this process) scales
// it from zero when work arrives, follows the queue with the HPA math, and scales it back to zero after the
// cooldown. A live timeline is printed and a plot is written.
//
// Workers: on the dev cluster's simulated (kwok) nodes a pod runs no program, so the demo itself does each
// Running pod's work: every pod pops Options.ItemsPerPodSecond items per second from the list. The scaling
// path — Redis push notification → scaler → core decision → /scale → scheduler → pod Running — is all real.
// With Options.Containers the workers are real containers of the demo worker image on the dev cluster's
// container node (tidal-dev up --container-node) and pop the items themselves.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/scalers/registry"
)

// Options shape one demo run.
type Options struct {
	Config    *rest.Config
	Namespace string
	// RedisAddress is the work queue's server (default 127.0.0.1:6379).
	RedisAddress string
	// Items is the size of the burst; ListLength the items per replica target; MaxReplicas the ceiling.
	Items       int
	ListLength  int
	MaxReplicas int32
	// ItemsPerPodSecond is how fast one Running pod works the queue.
	ItemsPerPodSecond int
	// Cooldown before scaling back to zero.
	Cooldown time.Duration
	// Timeout bounds the whole run.
	Timeout time.Duration
	// NodeAutoscaler runs Tidal's node autoscaler too: workers then ask for a whole CPU and only fit on a demo
	// NodeGroup of 4-CPU simulated nodes, which grows for them and shrinks back to zero afterwards.
	NodeAutoscaler bool
	// Containers, when set, runs the workers as real containers (NodeAutoscaler must then be off: the one
	// container node runs them all).
	Containers *Containers
	// Out receives the live timeline (nil: discard).
	Out    io.Writer
	Logger *zap.Logger
}

// Containers places the workers on the dev cluster's container node.
type Containers struct {
	// Image is the demo worker image, already imported into the container node's containerd (never pulled).
	Image string
}

// ShortOptions is the demo's quick form (used by the test suite).
func ShortOptions() Options {
	return Options{Items: 60, ListLength: 10, MaxReplicas: 10, ItemsPerPodSecond: 10, Cooldown: 3 * time.Second, Timeout: 3 * time.Minute, NodeAutoscaler: true}
}

// FullOptions is `make demo`.
func FullOptions() Options {
	return Options{Items: 600, ListLength: 20, MaxReplicas: 20, ItemsPerPodSecond: 8, Cooldown: 10 * time.Second, Timeout: 5 * time.Minute, NodeAutoscaler: true}
}

// Sample is one row of the timeline.
type Sample struct {
	At      time.Duration `json:"at"`
	Queue   int64         `json:"queue"`
	Desired int32         `json:"desired"`
	Running int           `json:"running"`
	// Nodes counts the demo NodeGroup's nodes (all nodes without the node autoscaler).
	Nodes    int   `json:"nodes"`
	Finished int64 `json:"finished"`
}

// Result is what a run measured.
type Result struct {
	Timeline []Sample `json:"timeline"`
	// FirstReplica is the time from the first item pushed to replicas ≥ 1; FirstRunning to a Running pod.
	FirstReplica time.Duration `json:"firstReplica"`
	FirstRunning time.Duration `json:"firstRunning"`
	PeakReplicas int32         `json:"peakReplicas"`
	PeakNodes    int           `json:"peakNodes"`
	// Drained is when the queue became empty; BackToZero when replicas returned to 0.
	Drained    time.Duration `json:"drained"`
	BackToZero time.Duration `json:"backToZero"`
	Processed  int64         `json:"processed"`
}

const workerName = "demo-worker"

// Run plays the demo once and returns what happened. It cleans up the Deployment, ScaledObject and list.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Config == nil || o.Namespace == "" {
		return nil, errors.New("demo: Config and Namespace are required")
	}
	if o.Items <= 0 || o.ListLength <= 0 || o.MaxReplicas <= 0 || o.ItemsPerPodSecond <= 0 {
		return nil, fmt.Errorf("demo: Items, ListLength, MaxReplicas and ItemsPerPodSecond must be positive")
	}
	if o.Containers != nil && (o.Containers.Image == "" || o.NodeAutoscaler) {
		return nil, errors.New("demo: Containers needs an Image and NodeAutoscaler off (the container node runs every worker)")
	}
	if o.RedisAddress == "" {
		o.RedisAddress = "127.0.0.1:6379"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	kube, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return nil, err
	}
	tc, err := tidalclient.NewForConfig(o.Config)
	if err != nil {
		return nil, err
	}
	rc := goredis.NewClient(&goredis.Options{Addr: o.RedisAddress})
	defer rc.Close()
	if err := rc.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("demo: Redis at %s: %w", o.RedisAddress, err)
	}
	list := fmt.Sprintf("tidal-demo-%d", rand.Int64())
	defer rc.Del(context.Background(), list)

	source, err := poller.Start(ctx, poller.Options{Registry: registry.New(), Logger: o.Logger.Named("poller")})
	if err != nil {
		return nil, err
	}
	op, err := app.New(app.Options{Config: o.Config, Source: source, Logger: o.Logger, Namespace: o.Namespace, WatchNamespace: o.Namespace})
	if err != nil {
		return nil, err
	}
	opCtx, stopOp := context.WithCancel(ctx)
	opDone := make(chan struct{})
	go func() { defer close(opDone); _ = op.Run(opCtx) }()
	defer func() { stopOp(); <-opDone }()

	if o.NodeAutoscaler {
		stopNodes, err := startNodeAutoscaler(ctx, o, tc)
		if err != nil {
			return nil, err
		}
		defer stopNodes()
	}
	if err := createWorkload(ctx, kube, tc, o, list); err != nil {
		return nil, err
	}
	defer cleanup(kube, tc, o.Namespace)

	if err := waitReady(ctx, tc, o.Namespace); err != nil {
		return nil, err
	}
	return observe(ctx, kube, rc, o, list)
}

func createWorkload(ctx context.Context, kube kubernetes.Interface, tc tidalclient.Interface, o Options, list string) error {
	zero := int32(0)
	labels := map[string]string{"app": workerName}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: workerName, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       workerPod(o, list),
			},
		},
	}
	if _, err := kube.AppsV1().Deployments(o.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Deployment: %w", err)
	}
	so := &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: workerName},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  tidalv1alpha1.ScaleTarget{Name: workerName},
			PollingInterval: ptr.To[int32](1),
			CooldownPeriod:  ptr.To(int32(o.Cooldown / time.Second)),
			MinReplicaCount: ptr.To[int32](0),
			MaxReplicaCount: ptr.To(o.MaxReplicas),
			Triggers: []tidalv1alpha1.ScaleTriggers{{
				Type: "redis", Name: "queue",
				Metadata: map[string]string{"address": o.RedisAddress, "listName": list, "listLength": fmt.Sprint(o.ListLength)},
			}},
		},
	}
	if _, err := tc.TidalV1alpha1().ScaledObjects(o.Namespace).Create(ctx, so, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ScaledObject: %w", err)
	}
	return nil
}

// workerPod is the worker's pod spec: on a simulated node (one CPU each with the node autoscaler, which only
// fits them on the demo NodeGroup), or as a real container of the demo worker image on the container node,
// working one item in 1/ItemsPerPodSecond seconds.
func workerPod(o Options, list string) corev1.PodSpec {
	env := []corev1.EnvVar{{Name: "REDIS_ADDRESS", Value: o.RedisAddress}, {Name: "LIST_NAME", Value: list}}
	requests := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("128Mi")}
	spec := corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](0)}
	worker := corev1.Container{Name: "worker", Image: "tidal/demo-worker", Env: env}
	switch {
	case o.Containers != nil:
		devcluster.OnContainerNode(&spec)
		worker.Image, worker.ImagePullPolicy = o.Containers.Image, corev1.PullNever
		worker.Env = append(worker.Env, corev1.EnvVar{Name: "WORK_DURATION", Value: (time.Second / time.Duration(o.ItemsPerPodSecond)).String()})
		// The worker finishes the item in hand on SIGTERM.
		spec.TerminationGracePeriodSeconds = ptr.To[int64](10)
	case o.NodeAutoscaler:
		requests[corev1.ResourceCPU] = resource.MustParse("1")
		spec.NodeSelector = map[string]string{groupLabel: groupName(o.Namespace)}
	}
	worker.Resources.Requests = requests
	spec.Containers = []corev1.Container{worker}
	return spec
}

// waitReady waits until the operator reports the ScaledObject Ready, so the burst measures event → scale and
// not the operator's start-up.
func waitReady(ctx context.Context, tc tidalclient.Interface, ns string) error {
	for {
		so, err := tc.TidalV1alpha1().ScaledObjects(ns).Get(ctx, workerName, metav1.GetOptions{})
		if err == nil && meta.IsStatusConditionTrue(so.Status.Conditions, tidalv1alpha1.ConditionReady) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ScaledObject %s never became Ready: %w", workerName, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func cleanup(kube kubernetes.Interface, tc tidalclient.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = tc.TidalV1alpha1().ScaledObjects(ns).Delete(ctx, workerName, metav1.DeleteOptions{})
	if err := kube.AppsV1().Deployments(ns).Delete(ctx, workerName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return
	}
}
