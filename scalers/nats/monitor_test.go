package nats

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

// jszServer serves testdata/jsz.json, a /jsz?acc=$G&consumers=true&config=true answer captured from
// nats-server 2.9.10 (stream ORDERS, durable consumer worker: num_pending 4, num_ack_pending 2, last_seq 7).
func jszServer(t testing.TB) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	body, err := os.ReadFile("testdata/jsz.json")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/jsz" || q.Get("consumers") != "true" || q.Get("config") != "true" || q.Get("acc") == "" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestMonitoringEndpoint(t *testing.T) {
	t.Parallel()
	srv, hits := jszServer(t)
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name       string
		metadata   map[string]string
		want       float64
		wantActive bool
		wantErr    string
	}{
		{name: "consumer lag is pending plus ack pending", metadata: map[string]string{"account": "$G", "stream": "ORDERS", "consumer": "worker"}, want: 6, wantActive: true},
		{name: "activation threshold", metadata: map[string]string{"account": "$G", "stream": "ORDERS", "consumer": "worker", "activationLagThreshold": "6"}, want: 6, wantActive: false},
		{name: "missing consumer is the whole stream", metadata: map[string]string{"account": "$G", "stream": "ORDERS", "consumer": "other"}, want: 7, wantActive: true},
		{name: "endpoint written with an http scheme", metadata: map[string]string{"account": "$G", "stream": "ORDERS", "consumer": "worker", "natsServerMonitoringEndpoint": "http://" + endpoint}, want: 6, wantActive: true},
		{name: "missing stream", metadata: map[string]string{"account": "$G", "stream": "NOPE", "consumer": "worker"}, wantErr: "stream not found"},
		{name: "other account", metadata: map[string]string{"account": "ACME", "stream": "ORDERS", "consumer": "worker"}, wantErr: "stream not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"natsServerMonitoringEndpoint": endpoint}
			for k, v := range tc.metadata {
				md[k] = v
			}
			s := newScaler(t, scalertest.Trigger{MD: md})
			v, active, err := s.Sample(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "nats-jetstream trigger") {
					t.Fatalf("err=%v, want a nats-jetstream trigger error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v[0].Value != tc.want || active != tc.wantActive {
				t.Fatalf("lag=%v active=%v, want %v/%v", v[0].Value, active, tc.want, tc.wantActive)
			}
		})
	}
	if hits.Load() == 0 {
		t.Fatal("the monitoring endpoint was never queried")
	}

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer bad.Close()
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServerMonitoringEndpoint": strings.TrimPrefix(bad.URL, "http://"), "account": "$G", "stream": "S", "consumer": "C"}})
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("HTTP 500: err=%v, want it reported", err)
	}
}

// TestMonitoringEndpointLive reads the monitoring port of a real nats-server and checks it agrees with the
// JetStream API reader, KEDA's numbers and Tidal's being the same.
func TestMonitoringEndpointLive(t *testing.T) {
	t.Parallel()
	srv := startNATS(t)
	f := newFixture(t, srv.url, "")
	viaHTTP := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServerMonitoringEndpoint": srv.monitoring, "account": "$G", "stream": f.stream, "consumer": f.consumer}})
	viaAPI := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServer": srv.url, "stream": f.stream, "consumer": f.consumer}})
	check := func(what string, want float64) {
		t.Helper()
		for _, s := range []*Scaler{viaHTTP, viaAPI} {
			if v, _ := sample(t, s); v != want {
				t.Fatalf("%s: lag=%v via %T, want %v", what, v, s.reader, want)
			}
		}
	}
	check("empty", 0)
	f.publish(t, f.subject, 5)
	check("5 published", 5)
	msgs := f.fetch(t, 2)
	check("2 fetched unacked", 5)
	ackAll(t, msgs)
	check("2 acked", 3)
	ackAll(t, f.fetch(t, 3))
	check("all acked", 0)
}

func TestBothSourcesSampleMonitoringWatchAPI(t *testing.T) {
	t.Parallel()
	srv := startNATS(t)
	f := newFixture(t, srv.url, "")
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServerMonitoringEndpoint": srv.monitoring, "natsServer": srv.url, "account": "$G", "stream": f.stream, "consumer": f.consumer}})
	if _, ok := s.reader.(*monitorReader); !ok {
		t.Fatalf("Sample reads %T, want the monitoring endpoint", s.reader)
	}
	sample(t, s)
	changed := startWatch(t, s)
	f.publish(t, f.subject, 1)
	select {
	case <-changed:
	case <-time.After(s.Cfg.PollingInterval):
		t.Fatal("no wake-up")
	}
	if v, active := sample(t, s); v != 1 || !active {
		t.Fatalf("lag=%v active=%v, want 1/true", v, active)
	}
}

// TestClusterHosts covers both of KEDA's ways to list a cluster's monitoring endpoints from /varz.
func TestClusterHosts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		varz string
		want []string
	}{
		{
			name: "advertised client URLs",
			varz: `{"server_name":"n1","connect_urls":["10.0.0.1:4222","10.0.0.2:4222","10.0.0.1:4222"],"cluster":{"urls":["10.0.0.2:6222"]}}`,
			want: []string{"10.0.0.1:8222", "10.0.0.2:8222"},
		},
		{
			name: "headless service names",
			varz: `{"server_name":"nats-0","connect_urls":[],"cluster":{"urls":["nats-1.nats.ns.svc.cluster.local:6222","nats-2.nats.ns.svc.cluster.local:6222"]}}`,
			want: []string{"nats-0.nats.ns.svc:8222", "nats-1.nats.ns.svc:8222", "nats-2.nats.ns.svc:8222"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/varz" {
					http.NotFound(w, r)
					return
				}
				_, _ = w.Write([]byte(tc.varz))
			}))
			defer srv.Close()
			s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServerMonitoringEndpoint": "nats.ns.svc:8222", "account": "$G", "stream": "S", "consumer": "C"}})
			mr := s.reader.(*monitorReader)
			// Send the /varz request to the test server while keeping the endpoint's host name and port.
			mr.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, srv.Listener.Addr().String())
			}}}
			got, err := mr.clusterHosts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("hosts %v, want %v", got, tc.want)
			}
		})
	}
}
