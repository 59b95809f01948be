package app_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/client-go/rest"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/registry"
)

// benchGauge is an in-process source for the benchmark's 3,000 triggers; it counts Sample calls so the
// benchmark can show that requests never reach a scaler.
type benchGauge struct{ calls atomic.Int64 }

type benchScaler struct {
	g      *benchGauge
	metric string
	cfg    *scalers.TriggerConfig
}

func (s *benchScaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metric, 5)}
}

func (s *benchScaler) Sample(context.Context) ([]scalers.Sample, bool, error) {
	s.g.calls.Add(1)
	return []scalers.Sample{{MetricName: s.metric, Value: 3}}, true, nil
}

func (s *benchScaler) Close(context.Context) error { return nil }

// testRegistry is every real scaler plus the benchmark's "bench-gauge".
func testRegistry(g *benchGauge) *scalers.Registry {
	r := registry.New()
	r.Register(func(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
		return &benchScaler{g: g, metric: cfg.MetricName("gauge", cfg.Metadata["name"]), cfg: cfg}, nil
	}, "bench-gauge")
	return r
}

// BenchmarkExternalMetricHTTP measures external.metrics.k8s.io GET latency at 1,000 ScaledObjects × 3 triggers
// under concurrent load, over HTTPS with delegated authentication, directly against the adapter ("adapter") and
// through the kube-apiserver's aggregation layer as the HPA controller reaches it ("aggregator"). It reports
// p50/p99 and the scaler calls made per request.
func BenchmarkExternalMetricHTTP(b *testing.B) {
	e := setup(b)
	a, p, gauge := e.registeredAdapter()
	const objects, triggers = 1000, 3
	ns := "bench-" + strconv.Itoa(int(time.Now().UnixNano()%1e6))
	for i := range objects {
		key := samples.Key{Kind: samples.KindScaledObject, Namespace: ns, Name: "so-" + strconv.Itoa(i)}
		spec := samples.ObjectSpec{Key: key, PollingInterval: time.Hour, Generation: 1}
		for j := range triggers {
			spec.Triggers = append(spec.Triggers, scalers.TriggerConfig{Type: "bench-gauge", Index: j, Metadata: map[string]string{"name": "q" + strconv.Itoa(j)}})
			spec.UseCachedMetrics = append(spec.UseCachedMetrics, true)
		}
		if errs := a.Poller().Upsert(context.Background(), spec); len(errs) > 0 {
			b.Fatal(errs)
		}
		if err := a.Poller().SampleNow(context.Background(), key); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		for i := range objects {
			a.Poller().Delete(context.Background(), samples.Key{Kind: samples.KindScaledObject, Namespace: ns, Name: "so-" + strconv.Itoa(i)})
		}
	})

	tlsCfg, err := rest.TLSConfigFor(e.c.Config)
	if err != nil {
		b.Fatal(err)
	}
	direct := tlsCfg.Clone()
	direct.RootCAs = x509.NewCertPool()
	direct.RootCAs.AppendCertsFromPEM(p.ca.CertPEM)
	direct.ServerName = "localhost"
	targets := []struct {
		name   string
		base   string
		client *http.Client
	}{
		{"adapter", fmt.Sprintf("https://127.0.0.1:%d", a.securePort),
			&http.Client{Transport: &http.Transport{TLSClientConfig: direct, MaxIdleConnsPerHost: 64}}},
		{"aggregator", e.c.Config.Host,
			&http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 64}}},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			get := func(n int) error {
				t := n % triggers
				url := fmt.Sprintf("%s/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/s%d-gauge-q%d?labelSelector=scaledobject.tidal.dev%%2Fname%%3Dso-%d",
					tg.base, ns, t, t, (n*7919)%objects)
				resp, err := tg.client.Get(url)
				if err != nil {
					return err
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
				}
				return nil
			}
			if err := get(0); err != nil { // warm the connection and the authorization cache
				b.Fatal(err)
			}
			calls := gauge.calls.Load()
			var mu sync.Mutex
			var lat []time.Duration
			var seq atomic.Int64
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 256)
				for pb.Next() {
					start := time.Now()
					if err := get(int(seq.Add(1))); err != nil {
						b.Error(err)
						return
					}
					local = append(local, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "p99-ms")
			}
			b.ReportMetric(float64(gauge.calls.Load()-calls)/float64(b.N), "scaler-calls/op")
		})
	}
}

// benchParallelism × GOMAXPROCS goroutines issue requests concurrently.
const benchParallelism = 4
