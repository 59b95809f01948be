package app_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	operatorapp "github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testenv/inproc"
	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/metricsadapter/app"
	"github.com/tidalscale/tidal/metricsadapter/podmetrics"
	"github.com/tidalscale/tidal/metricsadapter/server"
	"github.com/tidalscale/tidal/metricsadapter/stream"
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
	// stop cancels the adapter and waits for it to stop, as a killed process would stop serving (also done when
	// the test ends).
	stop func()
}

type adapterConfig struct {
	gauge      *benchGauge   // counts the bench-gauge scaler's samples; nil: a fresh one
	register   bool          // register the APIServices (the one adapter of the binary that the aggregator reaches)
	namespace  string        // namespace of the ExternalName Service
	streamAddr string        // "" picks a port
	storeTTL   time.Duration // --secret-store-ttl (0: the default)
	shard      *app.ShardOptions
	cut        *atomic.Bool // when set, fails every request to the API server while true (a partition)
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
	restCfg := c.Config
	if cfg.cut != nil {
		restCfg = testenv.Partitioned(c.Config, cfg.cut)
	}
	opts := app.Options{
		Shard:  cfg.shard,
		Config: restCfg, Registry: testRegistry(cfg.gauge), Logger: logger, Serving: serving,
		// Pods on process and containerd virtual nodes are measured; a short interval for tests.
		PodMetrics:     &podmetrics.Options{Scrape: &podmetrics.ScrapeOptions{Interval: 2 * time.Second}},
		Stream:         &app.StreamOptions{Addr: cfg.streamAddr, TLS: streamTLS},
		MetricsAddr:    "127.0.0.1:0",
		SecretStoreTTL: cfg.storeTTL,
		// Other packages' tests share the cluster: an adapter watching every namespace would poll their
		// triggers too (the chart's one-poller test counts pollers of its list).
		WatchNamespace: cfg.namespace,
	}
	if cfg.shard != nil {
		opts.Namespace = cfg.namespace // the member Leases live in the test's namespace
	}
	if cfg.register {
		c.Exclusive(t, devcluster.ExclusiveMetricsAPIs) // the APIServices are cluster-wide
		opts.Register = &server.RegisterOptions{
			Namespace: cfg.namespace, Service: adapterService, Port: int32(port),
			ExternalName: "localhost", CABundle: p.ca.CertPEM, PodMetrics: true,
		}
	}
	a, stop := inproc.RunAdapter(t, context.Background(), opts)
	if cfg.register {
		// Stop the adapter (before the cluster stops: its watches would hold the apiserver's shutdown) and delete
		// the APIServices, so nothing points at a dead backend in a cluster shared with other packages (the
		// chart's install test waits for them to be gone).
		t.Cleanup(func() {
			stop()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			agg, err := aggregator.NewForConfig(c.Config)
			if err != nil {
				return
			}
			_ = server.Unregister(ctx, agg)
		})
	}
	return &adapterRun{Adapter: a, securePort: port, stop: stop}
}

// env is one test's namespace of the dev cluster (internal/testenv).
type env struct{ *testenv.Env }

func setup(t testing.TB) *env { return &env{testenv.New(t)} }

// registeredAdapter starts this test's adapter, registers both metrics APIs to it through an ExternalName
// Service in the test's namespace, and waits until the aggregator serves them (startAdapter removes them at
// cleanup). Tests using it must not run in parallel: the APIServices are cluster-wide.
func (e *env) registeredAdapter() (*adapterRun, pki, *benchGauge) {
	e.T.Helper()
	p := newPKI(e.T, testpki.NewCA(e.T, "tidal-test"), e.NS)
	gauge := &benchGauge{}
	a := startAdapter(e.T, e.Cluster, p, adapterConfig{register: true, namespace: e.NS, gauge: gauge}, zap.NewNop())
	for _, group := range []string{"external.metrics.k8s.io", "metrics.k8s.io"} {
		e.Eventually(group+" served through the aggregator", 90*time.Second, func() (bool, string) {
			raw, err := e.Cluster.Client.Discovery().RESTClient().Get().AbsPath("/apis/" + group + "/v1beta1").DoRaw(e.Ctx)
			return err == nil, fmt.Sprintf("%v %s", err, raw)
		})
	}
	return a, p, gauge
}

// startOperatorClientOnly runs just the operator's side of the stream: a connected client.
func (e *env) startOperatorClientOnly(p pki, streamAddr string) *stream.Client {
	e.T.Helper()
	client := e.streamClient(p, streamAddr)
	e.T.Cleanup(inproc.Start(e.Ctx, client.Run, nil))
	return client
}

func (e *env) streamClient(p pki, streamAddr string) *stream.Client {
	e.T.Helper()
	tlsCfg, err := stream.ClientTLSConfig(stream.TLSFiles{CertFile: p.operator.CertFile, KeyFile: p.operator.KeyFile, CAFile: p.ca.CertFile, ServerName: "localhost"})
	if err != nil {
		e.T.Fatal(err)
	}
	log := zaptest.NewLogger(e.T)
	client, err := stream.NewClient(stream.ClientOptions{Address: streamAddr, TLS: tlsCfg, Name: e.T.Name(), Logger: log.Named("stream-client"),
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		e.T.Fatal(err)
	}
	return client
}

// startOperator runs the Tidal operator in-process with the stream client as its sample source.
func (e *env) startOperator(p pki, streamAddr string) *stream.Client {
	e.T.Helper()
	client := e.streamClient(p, streamAddr)
	e.T.Cleanup(inproc.Start(e.Ctx, client.Run, nil)) // registered first: stops after the operator
	inproc.RunOperator(e.T, e.Ctx, operatorapp.Options{Config: e.Cluster.Config, Source: client,
		Logger: zaptest.NewLogger(e.T).Named("operator"), Namespace: e.NS, WatchNamespace: e.NS})
	return client
}

// redisSO is testenv's Redis ScaledObject in mode, from one replica, with a cooldown longer than any test.
func redisSO(name, target, list string, mode tidalv1alpha1.ScalingMode) *tidalv1alpha1.ScaledObject {
	so := testenv.RedisScaledObject(name, target, testenv.RedisAddr, list)
	so.Spec.Mode = mode
	so.Spec.CooldownPeriod = ptr.To[int32](300)
	so.Spec.MinReplicaCount = ptr.To[int32](1)
	return so
}
