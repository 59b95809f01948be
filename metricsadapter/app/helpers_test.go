package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	operatorapp "github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/metricsadapter/app"
	"github.com/tidalscale/tidal/metricsadapter/podmetrics"
	"github.com/tidalscale/tidal/metricsadapter/server"
	"github.com/tidalscale/tidal/metricsadapter/stream"
	"github.com/tidalscale/tidal/metricsadapter/testpki"
)

const adapterService = "tidal-metrics-adapter"

// pki is one test's CA with the adapter's serving and stream certificates and the operator's client certificate.
type pki struct {
	ca                        *testpki.CA
	serving, stream, operator testpki.Pair
}

func newPKI(t testing.TB, ca *testpki.CA, serviceNamespace string) pki {
	return pki{
		ca:       ca,
		serving:  ca.Server(t, "adapter-serving", "localhost", "127.0.0.1", adapterService+"."+serviceNamespace+".svc"),
		stream:   ca.Server(t, "adapter-stream", "localhost", "127.0.0.1"),
		operator: ca.Client(t, "tidal-operator"),
	}
}

// adapterRun is an in-process adapter.
type adapterRun struct {
	*app.Adapter
	securePort int
	cancel     context.CancelFunc
	done       chan struct{}
}

// stop cancels the adapter and waits for it to stop, as a killed process would stop serving.
func (r *adapterRun) stop() {
	r.cancel()
	<-r.done
}

type adapterConfig struct {
	gauge      *benchGauge // counts the bench-gauge scaler's samples; nil: a fresh one
	register   bool        // register the APIServices (the one adapter of the binary that the aggregator reaches)
	namespace  string      // namespace of the ExternalName Service
	streamAddr string      // "" picks a port
}

func startAdapter(t testing.TB, c *devcluster.Cluster, p pki, cfg adapterConfig, logger *zap.Logger) *adapterRun {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	serving := cmoptions.NewCustomMetricsAdapterServerOptions()
	serving.SecureServing.Listener = l
	serving.SecureServing.BindPort = port
	serving.SecureServing.ServerCert.CertKey.CertFile = p.serving.CertFile
	serving.SecureServing.ServerCert.CertKey.KeyFile = p.serving.KeyFile
	serving.Authentication.RemoteKubeConfigFile = c.Kubeconfig
	serving.Authorization.RemoteKubeConfigFile = c.Kubeconfig
	streamTLS, err := stream.ServerTLSConfig(stream.TLSFiles{CertFile: p.stream.CertFile, KeyFile: p.stream.KeyFile, CAFile: p.ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.gauge == nil {
		cfg.gauge = &benchGauge{}
	}
	if cfg.streamAddr == "" {
		cfg.streamAddr = "127.0.0.1:0"
	}
	opts := app.Options{
		Config: c.Config, Registry: testRegistry(cfg.gauge), Logger: logger, Serving: serving,
		PodMetrics:  &podmetrics.Options{},
		Stream:      &app.StreamOptions{Addr: cfg.streamAddr, TLS: streamTLS},
		MetricsAddr: "127.0.0.1:0",
	}
	if cfg.register {
		c.Exclusive(t, devcluster.ExclusiveMetricsAPIs) // the APIServices are cluster-wide
		opts.Register = &server.RegisterOptions{
			Namespace: cfg.namespace, Service: adapterService, Port: int32(port),
			ExternalName: "localhost", CABundle: p.ca.CertPEM, PodMetrics: true,
		}
	}
	a, err := app.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &adapterRun{Adapter: a, securePort: port, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		if err := a.Run(ctx); err != nil {
			logger.Error("adapter stopped", zap.Error(err))
		}
	}()
	return run
}

// env is one test's view of the cluster.
type env struct {
	t     testing.TB
	c     *devcluster.Cluster
	ns    string
	tidal tidalclient.Interface
	ctx   context.Context
}

func setup(t testing.TB) *env {
	t.Helper()
	c := devcluster.Get(t)
	devcluster.InstallCRDs(t, c)
	tc, err := tidalclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &env{t: t, c: c, ns: c.Namespace(t), tidal: tc, ctx: ctx}
}

// registeredAdapter starts this test's adapter, registers both metrics APIs to it through an ExternalName
// Service in the test's namespace, and waits until the aggregator serves them. At cleanup it stops the adapter
// (before the cluster stops: its watches would hold the apiserver's shutdown) and deletes the APIServices, so
// nothing points at a dead backend in a cluster shared with other packages. Tests using it must not run in
// parallel: the APIServices are cluster-wide.
func (e *env) registeredAdapter() (*adapterRun, pki, *benchGauge) {
	e.t.Helper()
	p := newPKI(e.t, testpki.NewCA(e.t, "tidal-test"), e.ns)
	gauge := &benchGauge{}
	a := startAdapter(e.t, e.c, p, adapterConfig{register: true, namespace: e.ns, gauge: gauge}, zap.NewNop())
	e.t.Cleanup(func() {
		a.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		agg, err := aggregator.NewForConfig(e.c.Config)
		if err != nil {
			return
		}
		for _, name := range []string{server.APIServiceExternalMetrics, server.APIServiceMetrics} {
			_ = agg.ApiregistrationV1().APIServices().Delete(ctx, name, metav1.DeleteOptions{})
		}
	})
	for _, group := range []string{"external.metrics.k8s.io", "metrics.k8s.io"} {
		e.eventually(group+" served through the aggregator", 90*time.Second, func() (bool, string) {
			raw, err := e.c.Client.Discovery().RESTClient().Get().AbsPath("/apis/" + group + "/v1beta1").DoRaw(e.ctx)
			return err == nil, fmt.Sprintf("%v %s", err, raw)
		})
	}
	return a, p, gauge
}

// startOperatorClientOnly runs just the operator's side of the stream: a connected client.
func (e *env) startOperatorClientOnly(p pki, streamAddr string) *stream.Client {
	e.t.Helper()
	client := e.streamClient(p, streamAddr)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = client.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return client
}

func (e *env) streamClient(p pki, streamAddr string) *stream.Client {
	e.t.Helper()
	tlsCfg, err := stream.ClientTLSConfig(stream.TLSFiles{CertFile: p.operator.CertFile, KeyFile: p.operator.KeyFile, CAFile: p.ca.CertFile, ServerName: "localhost"})
	if err != nil {
		e.t.Fatal(err)
	}
	log := zaptest.NewLogger(e.t)
	client, err := stream.NewClient(stream.ClientOptions{Address: streamAddr, TLS: tlsCfg, Name: e.t.Name(), Logger: log.Named("stream-client"),
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	return client
}

// startOperator runs the Tidal operator in-process with the stream client as its sample source.
func (e *env) startOperator(p pki, streamAddr string) *stream.Client {
	e.t.Helper()
	client := e.streamClient(p, streamAddr)
	log := zaptest.NewLogger(e.t)
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = client.Run(ctx) })
	op, err := operatorapp.New(operatorapp.Options{Config: e.c.Config, Source: client, Logger: log.Named("operator"), Namespace: e.ns, WatchNamespace: e.ns})
	if err != nil {
		e.t.Fatal(err)
	}
	wg.Go(func() {
		if err := op.Run(ctx); err != nil {
			e.t.Logf("operator stopped: %v", err)
		}
	})
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	return client
}

func (e *env) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
}

func (e *env) deployment(name string, replicas int32, mutate func(*appsv1.Deployment)) {
	e.t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
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
			},
		},
	}
	if mutate != nil {
		mutate(d)
	}
	if _, err := e.c.Client.AppsV1().Deployments(e.ns).Create(e.ctx, d, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) replicas(name string) int32 {
	e.t.Helper()
	s, err := e.c.Client.AppsV1().Deployments(e.ns).GetScale(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return s.Spec.Replicas
}

func (e *env) waitReplicas(name string, want int32, timeout time.Duration) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%s at %d replicas", name, want), timeout, func() (bool, string) {
		got := e.replicas(name)
		return got == want, fmt.Sprintf("replicas=%d", got)
	})
}

func (e *env) scaledObject(so *tidalv1alpha1.ScaledObject) {
	e.t.Helper()
	if _, err := e.tidal.TidalV1alpha1().ScaledObjects(e.ns).Create(e.ctx, so, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func redisList(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	key := fmt.Sprintf("tidal-adapter-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), rand.Int64())
	t.Cleanup(func() { rc.Del(context.Background(), key); rc.Close() })
	return rc, key
}

func push(t *testing.T, rc *goredis.Client, key string, n int) {
	t.Helper()
	items := make([]any, n)
	for i := range items {
		items[i] = "job-" + strconv.Itoa(i)
	}
	if err := rc.RPush(context.Background(), key, items...).Err(); err != nil {
		t.Fatal(err)
	}
}

func redisSO(name, target, list string, mode tidalv1alpha1.ScalingMode) *tidalv1alpha1.ScaledObject {
	return &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			Mode:            mode,
			ScaleTargetRef:  tidalv1alpha1.ScaleTarget{Name: target},
			PollingInterval: ptr[int32](1),
			CooldownPeriod:  ptr[int32](300),
			MinReplicaCount: ptr[int32](1),
			MaxReplicaCount: ptr[int32](10),
			Triggers: []tidalv1alpha1.ScaleTriggers{{
				Type: "redis", Name: "queue",
				Metadata: map[string]string{"address": "127.0.0.1:6379", "listName": list, "listLength": "5"},
			}},
		},
	}
}
