package demo

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	nodesapp "github.com/tidalscale/tidal/autoscaler/nodes/app"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// The demo's node group: 4-CPU simulated nodes that the node autoscaler adds when worker pods (1 CPU each) do
// not fit, and removes once they are empty.
const (
	groupLabel = "tidal.dev/demo-pool"
	nodeCPU    = "4"
)

func groupName(ns string) string { return "demo-" + ns }

// startNodeAutoscaler creates the demo's NodeGroup and runs the node autoscaler in this process, limited to the
// demo's pods and group. The returned stop waits for it to finish.
func startNodeAutoscaler(ctx context.Context, o Options, tc tidalclient.Interface) (func(), error) {
	name := groupName(o.Namespace)
	ng := &tidalv1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{groupLabel: "true"}},
		Spec: tidalv1alpha1.NodeGroupSpec{
			MinSize: 0, MaxSize: 10,
			Template: tidalv1alpha1.NodeTemplate{
				Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(nodeCPU),
					corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Labels: map[string]string{groupLabel: name},
			},
			ProviderRef: tidalv1alpha1.ProviderRef{Name: "sim", Config: map[string]string{"provisioningDelay": "2s"}},
		},
	}
	if _, err := tc.TidalV1alpha1().NodeGroups().Create(ctx, ng, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create NodeGroup: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = nodesapp.Run(runCtx, nodesapp.Options{
			Config: o.Config, Logger: o.Logger.Named("nodes"), Namespace: o.Namespace,
			SimProvisioningDelay: 2 * time.Second,
			Autoscaler: nodes.Config{
				ScanInterval: time.Second, PodNamespace: o.Namespace, StatusNamespace: o.Namespace,
				NodeGroupSelector:      labels.SelectorFromSet(labels.Set{groupLabel: "true"}),
				ScaleDown:              scaledown.Options{UnneededTime: 3 * time.Second},
				ScaleDownDelayAfterAdd: time.Second,
			},
		})
	}()
	return func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		_ = tc.TidalV1alpha1().NodeGroups().Delete(cctx, name, metav1.DeleteOptions{})
	}, nil
}

// groupNodes counts the demo group's nodes.
func groupNodeSelector(ns string) string {
	return template.LabelNodeGroup + "=" + groupName(ns)
}
