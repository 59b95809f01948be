package podmetrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/metrics/pkg/apis/metrics"
)

// kubelet is an HTTPS /metrics/resource speaking the virtual node's text: pod ns/burn's container "c" has
// used cpu core-seconds by the n-th scrape, stamped at t0 + n seconds.
type kubelet struct {
	srv    *httptest.Server
	scrape atomic.Int64
	token  atomic.Value // the last Authorization header
}

func newKubelet(t *testing.T, t0 time.Time, cpu func(n int64) float64) *kubelet {
	k := &kubelet{}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics/resource" {
			http.NotFound(w, r)
			return
		}
		k.token.Store(r.Header.Get("Authorization"))
		n := k.scrape.Add(1)
		ts := t0.Add(time.Duration(n) * time.Second).UnixMilli()
		fmt.Fprintf(w, "# TYPE container_cpu_usage_seconds_total counter\n"+
			"container_cpu_usage_seconds_total{container=\"c\",namespace=\"ns\",pod=\"burn\"} %v %d\n"+
			"# TYPE container_memory_working_set_bytes gauge\n"+
			"container_memory_working_set_bytes{container=\"c\",namespace=\"ns\",pod=\"burn\"} 2097152 %d\n", cpu(n), ts, ts)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *kubelet) node(t *testing.T, name string, labels map[string]string) *corev1.Node {
	host, port, err := net.SplitHostPort(k.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(p)}},
		},
	}
}

func runningPod(name, node, cpuRequest string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{container("c", cpuRequest, "")}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func listers(t *testing.T, nodes []*corev1.Node, pods []*corev1.Pod) (corev1listers.NodeLister, corev1listers.PodLister) {
	ni := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	pi := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, n := range nodes {
		if err := ni.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods {
		if err := pi.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	return corev1listers.NewNodeLister(ni), corev1listers.NewPodLister(pi)
}

// Pods on a scraped node get the CPU rate and working set of its kubelet; pods absent from the scrape and pods
// on other served nodes stay simulated; a measured pod without a rate yet is not served.
func TestScrapedUsage(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	k := newKubelet(t, t0, func(n int64) float64 { return 0.75 * float64(n) }) // 750m
	labels := map[string]string{"type": "virtual-kubelet", "tidal.dev/virtual-node-backend": "process"}
	nodes := []*corev1.Node{
		k.node(t, "real", labels),
		k.node(t, "sim", map[string]string{"type": "virtual-kubelet", "tidal.dev/virtual-node-backend": "sim"}),
	}
	pods := []*corev1.Pod{
		runningPod("burn", "real", "100m"),     // measured
		runningPod("starting", "real", "100m"), // not in the scrape yet: simulated
		runningPod("other", "sim", "100m"),     // node not scraped: simulated, even with the same kubelet
	}
	nl, pl := listers(t, nodes, pods)
	src, err := newSource(Options{
		Pods: pl, Nodes: nl, Logger: zaptest.NewLogger(t),
		Scrape: &ScrapeOptions{Config: &rest.Config{BearerToken: "adapter-token"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	storage := &podStorage{src: src}
	ctx := genericapirequest.WithNamespace(context.Background(), "ns")
	get := func(name string) (*metrics.PodMetrics, error) {
		obj, err := storage.Get(ctx, name, &metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return obj.(*metrics.PodMetrics), nil
	}
	cpu := func(pm *metrics.PodMetrics) int64 {
		q := pm.Containers[0].Usage[corev1.ResourceCPU]
		return q.MilliValue()
	}

	if _, err := get("burn"); !apierrors.IsNotFound(err) {
		t.Fatalf("before any scrape: err = %v, want NotFound (measured node, no scrape yet)", err)
	}
	src.scraper.scrapeAll(context.Background())
	if _, err := get("burn"); !apierrors.IsNotFound(err) {
		t.Fatalf("after one scrape: err = %v, want NotFound (no rate yet)", err)
	}
	if got := k.token.Load(); got != "Bearer adapter-token" {
		t.Fatalf("kubelet saw Authorization %q, want the adapter's bearer token", got)
	}
	src.scraper.scrapeAll(context.Background())
	pm, err := get("burn")
	if err != nil {
		t.Fatal(err)
	}
	mem := pm.Containers[0].Usage[corev1.ResourceMemory]
	if cpu(pm) != 750 || mem.Value() != 2<<20 || pm.Window.Duration != time.Second {
		t.Fatalf("burn: cpu=%dm memory=%d window=%v, want 750m, 2Mi, 1s", cpu(pm), mem.Value(), pm.Window.Duration)
	}
	// sim node's kubelet was not scraped: two scrapes of "real" only.
	if n := k.scrape.Load(); n != 2 {
		t.Fatalf("kubelet scraped %d times, want 2 (the sim node is not selected)", n)
	}
	for _, name := range []string{"starting", "other"} {
		pm, err := get(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cpu(pm) != 50 {
			t.Fatalf("%s: cpu=%dm, want the simulated 50m (half the request)", name, cpu(pm))
		}
	}

	list, err := storage.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.(*metrics.PodMetricsList).Items); n != 3 {
		t.Fatalf("list: %d pods, want 3", n)
	}
	nm, err := (&nodeStorage{src: src}).Get(context.Background(), "real", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if q := nm.(*metrics.NodeMetrics).Usage[corev1.ResourceCPU]; q.MilliValue() != 800 {
		t.Fatalf("node real: cpu=%s, want 800m (750m measured + 50m simulated)", q.String())
	}

	// The kubelet stops answering: the node's scrapes are forgotten, its pods not served rather than simulated.
	k.srv.Close()
	src.scraper.scrapeAll(context.Background())
	if _, err := get("burn"); !apierrors.IsNotFound(err) {
		t.Fatalf("after a failed scrape: err = %v, want NotFound", err)
	}
}

func TestKubeletURL(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
	if _, err := kubeletURL(n); err == nil {
		t.Fatal("no port: want an error")
	}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = 10250
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n"}, {Type: corev1.NodeInternalIP, Address: "fd00::1"}}
	got, err := kubeletURL(n)
	if err != nil || got != "https://[fd00::1]:10250/metrics/resource" {
		t.Fatalf("got %q, %v", got, err)
	}
}
