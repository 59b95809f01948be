package devcluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestHPAScalesOnMetricsFromAggregatedAPI runs the real HPA controller of kube-controller-manager against a
// metrics.k8s.io served from this test process through the aggregation layer (ExternalName Service to
// localhost), as the Tidal metrics adapter will for simulated pods. metrics.k8s.io is cluster-wide, so the test
// starts a cluster of its own instead of using the shared one.
func TestHPAScalesOnMetricsFromAggregatedAPI(t *testing.T) {
	t.Parallel()
	bin := testBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, err := StartProcess(ctx, bin, "up", "--nodes", "2", "--hpa-sync-period", "1s", "--exit-with-parent", "--log-level", "warn")
	if err != nil {
		t.Fatalf("start tidal-dev: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(time.Minute); err != nil {
			t.Errorf("stop tidal-dev: %v", err)
		}
	})
	c, err := Connect(p.Ready.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ns := c.Namespace(t)

	// Every pod uses 200m CPU: 200% of its 100m request.
	metrics := &fakeMetricsAPI{client: c.Client, usage: "200m"}
	srv := httptest.NewUnstartedServer(metrics)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	c.Exclusive(t, ExclusiveMetricsAPIs)
	c.RegisterHostAPIService(t, HostAPIService{Group: "metrics.k8s.io", Version: "v1beta1", Port: port, Namespace: "kube-system"})

	dep := deployment("busy", 2)
	dep.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("100m")
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "busy"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "busy"},
			MinReplicas:    new(int32(1)),
			MaxReplicas:    4,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(int32(50))},
				},
			}},
		},
	}
	if _, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create HPA: %v", err)
	}

	err = WaitFor(ctx, 500*time.Millisecond, func() (bool, error) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "busy", metav1.GetOptions{})
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 4, err
	})
	if err != nil {
		got, _ := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "busy", metav1.GetOptions{})
		t.Fatalf("HPA did not scale the deployment to 4: %v; HPA status: %+v", err, got.Status)
	}
	got, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "busy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.CurrentMetrics) == 0 || got.Status.CurrentMetrics[0].Resource == nil ||
		got.Status.CurrentMetrics[0].Resource.Current.AverageUtilization == nil ||
		*got.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != 200 {
		t.Errorf("HPA current metrics = %+v, want 200%% CPU utilization", got.Status.CurrentMetrics)
	}
}

// fakeMetricsAPI serves metrics.k8s.io/v1beta1 PodMetrics with the same CPU usage for every pod, listing the
// pods from the cluster so names and containers match.
type fakeMetricsAPI struct {
	client kubernetes.Interface
	usage  string
}

func (f *fakeMetricsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const base = "/apis/metrics.k8s.io/v1beta1"
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == base:
		_ = json.NewEncoder(w).Encode(metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "metrics.k8s.io/v1beta1",
			APIResources: []metav1.APIResource{{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: []string{"get", "list"}}},
		})
	case strings.HasPrefix(r.URL.Path, base+"/namespaces/") && strings.HasSuffix(r.URL.Path, "/pods"):
		ns := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, base+"/namespaces/"), "/pods")
		pods, err := f.client.CoreV1().Pods(ns).List(r.Context(), metav1.ListOptions{LabelSelector: r.URL.Query().Get("labelSelector")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		now := time.Now()
		items := make([]map[string]any, 0, len(pods.Items))
		for _, p := range pods.Items {
			containers := make([]map[string]any, 0, len(p.Spec.Containers))
			for _, ctr := range p.Spec.Containers {
				containers = append(containers, map[string]any{"name": ctr.Name, "usage": map[string]string{"cpu": f.usage, "memory": "16Mi"}})
			}
			items = append(items, map[string]any{
				"metadata":   map[string]any{"name": p.Name, "namespace": p.Namespace, "labels": p.Labels},
				"timestamp":  now.UTC().Format(time.RFC3339),
				"window":     "1s",
				"containers": containers,
			})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": map[string]any{}, "items": items,
		})
	default:
		http.NotFound(w, r)
	}
}
