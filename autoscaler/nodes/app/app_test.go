package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes"
	"github.com/tidalscale/tidal/autoscaler/nodes/app"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
	scaffold "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/internal/devcluster"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

// TestRunWithLeaderElectionServesMetrics runs the whole process wiring: it takes the lease, scales a group up
// for a pending deployment, and /metrics reports the scale-up.
func TestRunWithLeaderElectionServesMetrics(t *testing.T) {
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	ns := c.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tidal, err := tidalclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	group := "app-" + ns
	if len(group) > 63 {
		group = group[:63]
	}
	group = strings.TrimRight(group, "-")
	_, err = tidal.TidalV1alpha1().NodeGroups().Create(ctx, &v1alpha1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: group, Labels: map[string]string{"tidal.dev/test-run": ns}},
		Spec: v1alpha1.NodeGroupSpec{MaxSize: 3, ProviderRef: v1alpha1.ProviderRef{Name: v1alpha1.ProviderSim},
			Template: v1alpha1.NodeTemplate{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx := context.Background()
		_ = tidal.TidalV1alpha1().NodeGroups().Delete(cctx, group, metav1.DeleteOptions{})
		_ = c.Client.CoreV1().Nodes().DeleteCollection(cctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: template.LabelNodeGroup + "=" + group})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Config: c.Config, Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), Namespace: ns, ServeAddr: addr,
			Election: &scaffold.ElectionOptions{Identity: "test-" + ns}, SimProvisioningDelay: 500 * time.Millisecond,
			Autoscaler: nodes.Config{
				ScanInterval: time.Second, PodNamespace: ns, ScaleDownDisabled: true,
				NodeGroupSelector: labels.SelectorFromSet(labels.Set{"tidal.dev/test-run": ns}),
			},
		})
	}()
	replicas := int32(3)
	_, err = c.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: corev1.PodSpec{
				NodeSelector: map[string]string{template.LabelNodeGroup: group},
				Containers: []corev1.Container{{Name: "c", Image: "x", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}}}},
			}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll := func(what string, cond func() (bool, error)) {
		t.Helper()
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer pcancel()
		var last error
		if err := wait.PollUntilContextCancel(pctx, 250*time.Millisecond, true, func(context.Context) (bool, error) {
			ok, err := cond()
			last = err
			return ok, nil
		}); err != nil {
			t.Fatalf("waiting for %s: %v (last: %v)", what, err, last)
		}
	}
	poll("lease held", func() (bool, error) {
		l, err := c.Client.CoordinationV1().Leases(ns).Get(ctx, app.LeaseName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == "test-"+ns, nil
	})
	poll("3 pods scheduled on 3 new nodes", func() (bool, error) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				n++
			}
		}
		return n == 3, nil
	})
	poll("/metrics with the scale-up", func() (bool, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		want := fmt.Sprintf(`tidal_node_autoscaler_scaled_up_nodes_total{node_group=%q} 3`, group)
		if !strings.Contains(string(body), want) {
			return false, fmt.Errorf("no %q in /metrics", want)
		}
		return strings.Contains(string(body), "tidal_node_autoscaler_function_duration_seconds_bucket"), nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancel")
	}
}
