package app_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	operatorapp "github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledobject"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testenv/inproc"
	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/metricsadapter/external"
	"github.com/tidalscale/tidal/metricsadapter/podmetrics"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }

func TestSelectorLabelMatchesOperator(t *testing.T) {
	if external.LabelScaledObjectName != scaledobject.LabelScaledObjectName {
		t.Fatalf("adapter serves selector %q, operator's HPA asks with %q", external.LabelScaledObjectName, scaledobject.LabelScaledObjectName)
	}
}

// A metric read from a real Redis list is served through the embedded apiserver's aggregation layer.
func TestExternalMetricThroughAggregator(t *testing.T) {
	e := setup(t)
	a, _, _ := e.registeredAdapter()
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	e.Deployment("ext", 1)
	e.ScaledObject(redisSO("ext", "ext", list, tidalv1alpha1.ScalingModeDirect))
	testenv.Push(t, rc, list, 7)

	key := samples.Key{Kind: samples.KindScaledObject, Namespace: e.NS, Name: "ext"}
	var metric string
	e.Eventually("adapter holds the ScaledObject", 60*time.Second, func() (bool, string) {
		specs := a.Poller().MetricSpecs(key)
		if len(specs) != 1 || specs[0].External == nil {
			return false, fmt.Sprintf("specs=%v", specs)
		}
		metric = specs[0].External.Metric.Name
		return true, ""
	})
	if !strings.HasPrefix(metric, "s0-redis-") {
		t.Fatalf("metric name %q, want s0-redis-<list>", metric)
	}
	path := "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + e.NS + "/" + metric
	var got v1beta1.ExternalMetricValueList
	e.Eventually("metric value 7 through the aggregator", 60*time.Second, func() (bool, string) {
		raw, err := e.Cluster.Client.Discovery().RESTClient().Get().AbsPath(path).
			Param("labelSelector", external.LabelScaledObjectName+"=ext").DoRaw(e.Ctx)
		if err != nil {
			return false, fmt.Sprintf("%v %s", err, raw)
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			return false, err.Error()
		}
		return len(got.Items) == 1 && got.Items[0].Value.Value() == 7, string(raw)
	})
	if got.Items[0].MetricName != metric || got.Items[0].MetricLabels[external.LabelScaledObjectName] != "ext" {
		t.Fatalf("item = %+v", got.Items[0])
	}

	// An object the adapter does not know is a 404, not a value.
	_, err := e.Cluster.Client.Discovery().RESTClient().Get().AbsPath(path).
		Param("labelSelector", external.LabelScaledObjectName+"=nope").DoRaw(e.Ctx)
	if err == nil || !strings.Contains(err.Error(), "not found") && !strings.Contains(err.Error(), "could not find") {
		t.Fatalf("unknown ScaledObject: err = %v, want not found", err)
	}

	// The list of all metrics names it.
	raw, err := e.Cluster.Client.Discovery().RESTClient().Get().AbsPath("/apis/external.metrics.k8s.io/v1beta1").DoRaw(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	var resources metav1.APIResourceList
	if err := json.Unmarshal(raw, &resources); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range resources.APIResources {
		found = found || r.Name == metric
	}
	if !found {
		t.Fatalf("metric %s missing from the resource list %s", metric, raw)
	}
}

// Requests that do not come through the aggregator with a front-proxy identity or a client certificate are
// refused by delegated authentication and authorization; health endpoints stay open.
func TestUnauthenticatedRequestRefused(t *testing.T) {
	e := setup(t)
	a, _, _ := e.registeredAdapter()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // no client identity on purpose
	base := fmt.Sprintf("https://127.0.0.1:%d", a.securePort)
	cases := []struct {
		name string
		path string
		want []int
	}{
		{"external metric", "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + e.NS + "/s0-redis-x?labelSelector=a%3Db", []int{http.StatusUnauthorized, http.StatusForbidden}},
		{"pod metrics", "/apis/metrics.k8s.io/v1beta1/pods", []int{http.StatusUnauthorized, http.StatusForbidden}},
		{"healthz stays open", "/healthz", []int{http.StatusOK}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Get(base + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range tc.want {
				if resp.StatusCode == w {
					return
				}
			}
			t.Fatalf("status %d (%s), want one of %v", resp.StatusCode, body, tc.want)
		})
	}
}

// The embedded kube-controller-manager's HPA controller scales a Deployment on an External metric served by the
// adapter: ScaledObject mode hpa, operator in-process fed by the gRPC stream.
func TestHPAScalesOnExternalMetric(t *testing.T) {
	e := setup(t)
	a, p, _ := e.registeredAdapter()
	e.startOperator(p, a.StreamAddr())
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	e.Deployment("hpa-ext", 1)
	e.ScaledObject(redisSO("hpa-ext", "hpa-ext", list, tidalv1alpha1.ScalingModeHPA))
	e.Eventually("managed HPA with the adapter's metric", 60*time.Second, func() (bool, string) {
		hpa, err := e.Cluster.Client.AutoscalingV2().HorizontalPodAutoscalers(e.NS).Get(e.Ctx, "tidal-hpa-hpa-ext", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(hpa.Spec.Metrics) == 1 && hpa.Spec.Metrics[0].Type == autoscalingv2.ExternalMetricSourceType, fmt.Sprintf("%+v", hpa.Spec.Metrics)
	})
	// 18 items at 5 per replica: ceil(18/5) = 4.
	testenv.Push(t, rc, list, 18)
	e.WaitReplicas("hpa-ext", 4, 3*time.Minute)
}

// The HPA controller scales a Deployment on CPU utilization read from the adapter's metrics.k8s.io for kwok pods.
func TestHPAScalesOnSimulatedCPU(t *testing.T) {
	e := setup(t)
	e.registeredAdapter()
	e.Deployment("cpu", 1, func(d *appsv1.Deployment) {
		// 90m of a 100m request: 90% against a 50% target.
		d.Spec.Template.Annotations = map[string]string{podmetrics.AnnotationSimUsage: "cpu=90m,memory=32Mi"}
	})
	e.Eventually("PodMetrics of the kwok pod", 90*time.Second, func() (bool, string) {
		raw, err := e.Cluster.Client.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/" + e.NS + "/pods").DoRaw(e.Ctx)
		if err != nil {
			return false, err.Error()
		}
		var list metricsv1beta1.PodMetricsList
		if err := json.Unmarshal(raw, &list); err != nil {
			return false, err.Error()
		}
		if len(list.Items) != 1 || len(list.Items[0].Containers) != 1 {
			return false, string(raw)
		}
		cpu := list.Items[0].Containers[0].Usage.Cpu().MilliValue()
		return cpu == 90, string(raw)
	})
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "cpu"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "cpu"},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    3,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu", Target: autoscalingv2.MetricTarget{
					Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50),
				}},
			}},
		},
	}
	if _, err := e.Cluster.Client.AutoscalingV2().HorizontalPodAutoscalers(e.NS).Create(e.Ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.WaitReplicas("cpu", 3, 4*time.Minute)
	got, err := e.Cluster.Client.AutoscalingV2().HorizontalPodAutoscalers(e.NS).Get(e.Ctx, "cpu", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var util *int32
	for _, m := range got.Status.CurrentMetrics {
		if m.Resource != nil {
			util = m.Resource.Current.AverageUtilization
		}
	}
	if util == nil || *util != 90 {
		t.Fatalf("HPA current utilization = %v, want 90", util)
	}
}

// Killing the adapter while the operator runs: the operator keeps its last state (no scale to zero although
// the cooldown passes), the stream client reports the outage, and scaling resumes once the adapter is back.
func TestAdapterOutage(t *testing.T) {
	e := setup(t)
	p := newPKI(t, testpki.NewCA(t, "tidal-outage"), e.NS)
	log := zaptest.NewLogger(t)
	first := startAdapter(t, e.Cluster, p, adapterConfig{namespace: e.NS}, log.Named("adapter-1"))
	t.Cleanup(first.stop)
	addr := first.StreamAddr()
	client := e.startOperator(p, addr)

	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	e.Deployment("outage", 0)
	so := redisSO("outage", "outage", list, tidalv1alpha1.ScalingModeDirect)
	so.Spec.MinReplicaCount = ptr.To[int32](0)
	so.Spec.CooldownPeriod = ptr.To[int32](2)
	e.ScaledObject(so)
	testenv.Push(t, rc, list, 12) // ceil(12/5) = 3
	e.WaitReplicas("outage", 3, 90*time.Second)
	e.Eventually("client connected", 10*time.Second, func() (bool, string) { return client.Err() == nil, fmt.Sprint(client.Err()) })

	first.stop()
	e.Eventually("client reports the adapter unreachable", 30*time.Second, func() (bool, string) {
		return client.Err() != nil && !client.Status().Connected, fmt.Sprintf("%+v", client.Status())
	})
	// The queue empties while the adapter is down; with a 2s cooldown a wrong decision would show quickly.
	if err := rc.Del(e.Ctx, list).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	if got := e.Replicas("outage"); got != 3 {
		t.Fatalf("while the adapter was down the operator scaled to %d, want its last state 3", got)
	}

	// Back on the same address: the client reconnects, rebuilds its view from the snapshot, scaling resumes.
	second := startAdapter(t, e.Cluster, p, adapterConfig{namespace: e.NS, streamAddr: addr}, log.Named("adapter-2"))
	t.Cleanup(second.stop)
	e.Eventually("client reconnected", 60*time.Second, func() (bool, string) {
		st := client.Status()
		return st.Connected && st.Reconnects >= 1, fmt.Sprintf("%+v", st)
	})
	testenv.Push(t, rc, list, 22) // ceil(22/5) = 5
	e.WaitReplicas("outage", 5, 90*time.Second)
}

// ScaledJobs are polled by the adapter too, and their samples reach the operator over the stream.
func TestScaledJobSamplesStreamed(t *testing.T) {
	e := setup(t)
	a, p, _ := e.registeredAdapter()
	client := e.startOperatorClientOnly(p, a.StreamAddr())
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	testenv.Push(t, rc, list, 4)
	e.ScaledJob(testenv.RedisScaledJob("jobs", testenv.RedisAddr, list, 1))
	key := samples.Key{Kind: samples.KindScaledJob, Namespace: e.NS, Name: "jobs"}
	e.Eventually("ScaledJob sample streamed to the operator side", 60*time.Second, func() (bool, string) {
		for _, st := range client.Snapshot() {
			if st.Key == key && len(st.Triggers) == 1 && len(st.Triggers[0].Samples) == 1 {
				return st.Triggers[0].Samples[0].Value == 4 && st.Triggers[0].Active, fmt.Sprintf("%+v", st.Triggers[0])
			}
		}
		return false, "not streamed yet"
	})
	if specs := client.MetricSpecs(key); len(specs) != 1 {
		t.Fatalf("metric specs of the ScaledJob = %+v", specs)
	}
	if err := e.Tidal.TidalV1alpha1().ScaledJobs(e.NS).Delete(e.Ctx, "jobs", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Eventually("ScaledJob dropped by the adapter and the client", 60*time.Second, func() (bool, string) {
		_, err := a.Poller().State(key)
		return err != nil && client.MetricSpecs(key) == nil, fmt.Sprint(err)
	})
}

// All-in-one: the operator runs on the adapter's own poller (Adapter.Source), scales on a real Redis list, and
// sees the build error of a trigger the adapter cannot build.
func TestAllInOne(t *testing.T) {
	e := setup(t)
	p := newPKI(t, testpki.NewCA(t, "tidal-aio"), e.NS)
	log := zaptest.NewLogger(t)
	a := startAdapter(t, e.Cluster, p, adapterConfig{namespace: e.NS}, log.Named("adapter"))
	t.Cleanup(a.stop)
	inproc.RunOperator(t, e.Ctx, operatorapp.Options{Config: e.Cluster.Config, Source: a.Source(), Logger: log.Named("operator"), Namespace: e.NS, WatchNamespace: e.NS})

	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	testenv.Push(t, rc, list, 7) // ceil(7/5) = 2
	e.Deployment("aio", 0)
	so := redisSO("aio", "aio", list, tidalv1alpha1.ScalingModeDirect)
	so.Spec.MinReplicaCount = ptr.To[int32](0)
	e.ScaledObject(so)
	e.WaitReplicas("aio", 2, 90*time.Second)

	e.Deployment("broken", 1)
	bad := redisSO("broken", "broken", list, tidalv1alpha1.ScalingModeDirect)
	delete(bad.Spec.Triggers[0].Metadata, "listName")
	e.ScaledObject(bad)
	e.Eventually("build error in the status", 60*time.Second, func() (bool, string) {
		got, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "broken", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(got.Status.Triggers) == 1 && strings.Contains(got.Status.Triggers[0].Error, "listName"), fmt.Sprintf("%+v", got.Status.Triggers)
	})
}
