package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/internal/shard"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/metricsadapter/app"
	"github.com/tidalscale/tidal/metricsadapter/external"
	"github.com/tidalscale/tidal/metricsadapter/server"
	"github.com/tidalscale/tidal/metricsadapter/stream"
)

// Three sharded adapters split the ScaledObjects, each polled by exactly one; external.metrics.k8s.io answers
// every object from whichever replica the aggregator reaches; the operator, connected to one replica as through
// the Service, keeps scaling an object whose polling replica is partitioned and stops, once a survivor took the
// object over (within two lease periods).
func TestShardedAdapters(t *testing.T) {
	e := setup(t)
	p := newPKI(t, testpki.NewCA(t, "tidal-shard"), e.NS)
	peerPair := p.ca.Client(t, "tidal-metrics-adapter")
	peerTLS, err := stream.ClientTLSConfig(stream.TLSFiles{CertFile: peerPair.CertFile, KeyFile: peerPair.KeyFile, CAFile: p.ca.CertFile, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	const lease = 4 * time.Second
	ids := []string{"a0", "a1", "a2"}
	cuts := make([]*atomic.Bool, len(ids))
	adapters := make([]*adapterRun, len(ids))
	log := zaptest.NewLogger(t)
	for i, id := range ids {
		addr := testenv.FreeAddr(t)
		cuts[i] = &atomic.Bool{}
		adapters[i] = startAdapter(t, e.Cluster, p, adapterConfig{
			register: i == 0, namespace: e.NS, streamAddr: addr, cut: cuts[i],
			shard: &app.ShardOptions{Identity: id, LeaseDuration: lease, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
				Advertise: addr, PeerTLS: peerTLS},
		}, log.Named(id))
	}
	e.Eventually("external.metrics.k8s.io served", 90*time.Second, func() (bool, string) {
		raw, err := e.Cluster.Client.Discovery().RESTClient().Get().AbsPath("/apis/external.metrics.k8s.io/v1beta1").DoRaw(e.Ctx)
		return err == nil, fmt.Sprintf("%v %s", err, raw)
	})

	// The driven object is polled by a1, the replica that will be partitioned; the operator streams from a0.
	drive := ""
	for i := 0; drive == ""; i++ {
		if name := "drive-" + strconv.Itoa(i); shard.Owner(ids, e.NS+"/"+name) == "a1" {
			drive = name
		}
	}
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	_, idleList := testenv.RedisList(t, testenv.RedisAddr)
	const idle = 24
	names := []string{drive}
	for i := range idle {
		name := "idle-" + strconv.Itoa(i)
		names = append(names, name)
		e.Deployment(name, 0)
		so := redisSO(name, name, idleList, tidalv1alpha1.ScalingModeDirect)
		so.Spec.MinReplicaCount = ptr.To[int32](0)
		e.ScaledObject(so)
	}
	e.Deployment(drive, 0)
	so := redisSO(drive, drive, list, tidalv1alpha1.ScalingModeDirect)
	so.Spec.MinReplicaCount = ptr.To[int32](0)
	e.ScaledObject(so)
	slices.Sort(names)

	// pollers maps each object to the replicas whose poller holds it.
	pollers := func(live []int) map[string][]string {
		out := map[string][]string{}
		for _, i := range live {
			for _, st := range adapters[i].Poller().Snapshot() {
				if st.Key.Namespace == e.NS && st.Key.Kind == samples.KindScaledObject {
					out[st.Key.Name] = append(out[st.Key.Name], ids[i])
				}
			}
		}
		return out
	}
	exactlyOnce := func(live []int) (bool, string) {
		got := pollers(live)
		var bad []string
		for _, n := range names {
			if len(got[n]) != 1 {
				bad = append(bad, fmt.Sprintf("%s:%v", n, got[n]))
			}
		}
		return len(bad) == 0 && len(got) == len(names), fmt.Sprintf("not polled exactly once: %v (of %d)", bad, len(got))
	}
	e.Eventually("every object polled by exactly one replica", 90*time.Second, func() (bool, string) { return exactlyOnce([]int{0, 1, 2}) })
	per := map[string]int{}
	for _, rs := range pollers([]int{0, 1, 2}) {
		per[rs[0]]++
	}
	t.Logf("objects per replica: %v", per)
	for _, id := range ids {
		if per[id] == 0 {
			t.Errorf("replica %s polls nothing: %v", id, per)
		}
	}

	// Every object, through the aggregator, from each replica in turn.
	testenv.Push(t, rc, list, 12) // ceil(12/5) = 3
	agg, err := aggregator.NewForConfig(e.Cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	metric := "s0-redis-" + strings.ToLower(list)
	for i, a := range adapters {
		if i > 0 {
			if err := server.Register(e.Ctx, e.Cluster.Client, agg, server.RegisterOptions{Namespace: e.NS, Service: adapterService,
				Port: int32(a.securePort), ExternalName: "localhost", CABundle: p.ca.CertPEM, PodMetrics: true}); err != nil {
				t.Fatal(err)
			}
		}
		before := externalRequests(a)
		e.Eventually(fmt.Sprintf("%s answers %s for the driven object", ids[i], metric), 60*time.Second, func() (bool, string) {
			v, err := externalValue(e, metric, drive)
			return err == nil && v == 12 && externalRequests(a) > before,
				fmt.Sprintf("value %d, err %v", v, err)
		})
		for _, n := range names {
			if n == drive {
				continue
			}
			// An object's first sample comes after its first (jittered) poll and then its owner's relay: wait for
			// it, as a client of the aggregator would.
			m := "s0-redis-" + strings.ToLower(idleList)
			e.Eventually(fmt.Sprintf("%s answers %s", ids[i], n), 30*time.Second, func() (bool, string) {
				_, err := externalValue(e, m, n)
				return err == nil, fmt.Sprint(err)
			})
		}
		t.Logf("%s answered all %d objects", ids[i], len(names))
	}

	// The operator streams from a0 and scales the object a1 polls.
	e.startOperator(p, adapters[0].StreamAddr())
	e.WaitReplicas(drive, 3, 90*time.Second)

	// a1 loses the API server (its Lease is not renewed) and dies without deleting its Lease.
	var lost []string
	for n, rs := range pollers([]int{1}) {
		if rs[0] == "a1" {
			lost = append(lost, n)
		}
	}
	cut := time.Now()
	cuts[1].Store(true)
	adapters[1].stop()
	e.Eventually("a1's objects taken over", 60*time.Second, func() (bool, string) { return exactlyOnce([]int{0, 2}) })
	took := time.Since(cut)
	t.Logf("takeover of %d objects after a1 was cut and stopped: %s (lease %s)", len(lost), took, lease)
	if took > 2*lease {
		t.Errorf("takeover took %s, more than two lease periods (%s)", took, 2*lease)
	}
	testenv.Push(t, rc, list, 10) // 22 items: ceil(22/5) = 5
	e.WaitReplicas(drive, 5, 90*time.Second)
}

// externalRequests is the number of external metric requests an adapter answered.
func externalRequests(a *adapterRun) float64 {
	families, err := a.Prometheus().Gather()
	if err != nil {
		return -1
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == "tidal_metrics_adapter_external_requests_total" {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// externalValue reads one ScaledObject's metric through the aggregator.
func externalValue(e *env, metric, name string) (int64, error) {
	ctx, cancel := context.WithTimeout(e.Ctx, 10*time.Second)
	defer cancel()
	raw, err := e.Cluster.Client.Discovery().RESTClient().Get().AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces/"+e.NS+"/"+metric).
		Param("labelSelector", external.LabelScaledObjectName+"="+name).DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, raw)
	}
	var got v1beta1.ExternalMetricValueList
	if err := json.Unmarshal(raw, &got); err != nil {
		return 0, err
	}
	if len(got.Items) != 1 {
		return 0, fmt.Errorf("%d items: %s", len(got.Items), raw)
	}
	return got.Items[0].Value.Value(), nil
}
