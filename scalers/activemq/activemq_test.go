package activemq

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

var creds = map[string]string{"username": "admin", "password": "admin-pass"}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"managementEndpoint": "activemq.default:8161", "destinationName": "orders", "brokerName": "localhost"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	cases := []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(), Auth: creds, Check: func(t *testing.T, m Metadata) {
			want := "http://activemq.default:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=localhost,destinationType=Queue,destinationName=orders/QueueSize"
			if m.TargetQueueSize != 10 || m.ActivationTargetQueueSize != 0 || m.endpoint != want || m.CorsHeader != "http://activemq.default:8161" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "restAPITemplate", MD: map[string]string{"restAPITemplate": "https://amq:8162/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b1,destinationType=Queue,destinationName=q1/QueueSize",
			"targetQueueSize": "3", "activationTargetQueueSize": "1", "corsHeader": "https://console"}, Auth: creds, Check: func(t *testing.T, m Metadata) {
			if m.BrokerName != "b1" || m.DestinationName != "q1" || m.ManagementEndpoint != "amq:8162" || !strings.HasPrefix(m.endpoint, "https://amq:8162/") ||
				m.TargetQueueSize != 3 || m.ActivationTargetQueueSize != 1 || m.CorsHeader != "https://console" {
				t.Errorf("fields wrong: %+v", m)
			}
		}},
		{Name: "credentials from metadata env", MD: base("usernameFromEnv", "AMQ_USER", "passwordFromEnv", "AMQ_PASS"), Check: func(t *testing.T, m Metadata) {
			if m.Username != "u" || m.Password != "p" {
				t.Errorf("credentials %q %q", m.Username, m.Password)
			}
		}},
		{Name: "missing managementEndpoint", MD: base("managementEndpoint", scalertest.Delete), Auth: creds, WantErr: "managementEndpoint"},
		{Name: "managementEndpoint with a path", MD: base("managementEndpoint", "http://amq:8161/"), Auth: creds, WantErr: "managementEndpoint"},
		{Name: "missing destinationName", MD: base("destinationName", scalertest.Delete), Auth: creds, WantErr: "destinationName"},
		{Name: "missing brokerName", MD: base("brokerName", scalertest.Delete), Auth: creds, WantErr: "brokerName"},
		{Name: "non-numeric targetQueueSize", MD: base("targetQueueSize", "ten"), Auth: creds, WantErr: "targetQueueSize"},
		{Name: "zero targetQueueSize", MD: base("targetQueueSize", "0"), Auth: creds, WantErr: "targetQueueSize"},
		{Name: "negative activationTargetQueueSize", MD: base("activationTargetQueueSize", "-1"), Auth: creds, WantErr: "activationTargetQueueSize"},
		{Name: "missing username", MD: base(), Auth: map[string]string{"password": "p"}, WantErr: "username"},
		{Name: "missing password", MD: base(), Auth: map[string]string{"username": "u"}, WantErr: "password"},
		{Name: "relative restAPITemplate", MD: map[string]string{"restAPITemplate": "amq:8161/api"}, Auth: creds, WantErr: "restAPITemplate"},
		{Name: "restAPITemplate without destination", MD: map[string]string{"restAPITemplate": "http://amq:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b/QueueSize"}, Auth: creds, WantErr: "destinationName"},
		{Name: "restAPITemplate with a bad action", MD: map[string]string{"restAPITemplate": "http://amq:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationName=q/{{.Nope"}, Auth: creds, WantErr: "restAPITemplate"},
	}
	for i := range cases {
		cases[i].Env = map[string]string{"AMQ_USER": "u", "AMQ_PASS": "p"}
	}
	scalertest.ParseTable(t, TriggerType, cases)
}

// fakeJolokia serves ActiveMQ's Jolokia read endpoint for QueueSize behind basic auth (admin/admin-pass), with
// Jolokia's envelope: the HTTP status is 200 and the Jolokia status says whether the MBean exists.
type fakeJolokia struct {
	mu     sync.Mutex
	queues map[string]int64
	origin string
}

func (f *fakeJolokia) setSize(q string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queues[q] = n
}

func (f *fakeJolokia) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "admin-pass" {
		w.Header().Set("WWW-Authenticate", `basic realm="ActiveMQRealm"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	const prefix = "/api/jolokia/read/org.apache.activemq:"
	if !strings.HasPrefix(r.URL.Path, prefix) || !strings.HasSuffix(r.URL.Path, "/QueueSize") {
		http.NotFound(w, r)
		return
	}
	mbean := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, prefix), "/QueueSize")
	props := map[string]string{}
	for _, kv := range strings.Split(mbean, ",") {
		k, v, _ := strings.Cut(kv, "=")
		props[k] = v
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.origin = r.Header.Get("Origin")
	w.Header().Set("Content-Type", "text/plain;charset=utf-8")
	n, ok := f.queues[props["destinationName"]]
	if !ok || props["brokerName"] != "localhost" || props["type"] != "Broker" || props["destinationType"] != "Queue" {
		_, _ = fmt.Fprintf(w, `{"request":{"mbean":"org.apache.activemq:%s","attribute":"QueueSize","type":"read"},"stacktrace":"javax.management.InstanceNotFoundException ...","error_type":"javax.management.InstanceNotFoundException","error":"javax.management.InstanceNotFoundException : org.apache.activemq:%s","status":404}`, mbean, mbean)
		return
	}
	_, _ = fmt.Fprintf(w, `{"request":{"mbean":"org.apache.activemq:brokerName=localhost,destinationName=%s,destinationType=Queue,type=Broker","attribute":"QueueSize","type":"read"},"value":%d,"timestamp":%d,"status":200}`,
		props["destinationName"], n, time.Now().Unix())
}

func newScaler(tb testing.TB, md, auth map[string]string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, scalertest.Config(TriggerType, "orders", md, auth))
}

func TestSample(t *testing.T) {
	t.Parallel()
	f := &fakeJolokia{queues: map[string]int64{"orders": 0}}
	srv := scalertest.Serve(t, f)
	host := strings.TrimPrefix(srv.URL, "http://")
	s := newScaler(t, map[string]string{"managementEndpoint": host, "brokerName": "localhost", "destinationName": "orders",
		"targetQueueSize": "10", "activationTargetQueueSize": "3"}, creds)
	if name := s.MetricSpecs()[0].External.Metric.Name; name != "s0-activemq-orders" {
		t.Fatalf("metric name %q", name)
	}
	for _, st := range []struct {
		size       int64
		wantActive bool
	}{{0, false}, {3, false}, {25, true}} {
		f.setSize("orders", st.size)
		v, active, err := scalertest.First(s)
		if err != nil || v != float64(st.size) || active != st.wantActive {
			t.Fatalf("size %d: (%v, %v, %v), want (%d, %v)", st.size, v, active, err, st.size, st.wantActive)
		}
	}
	f.mu.Lock()
	origin := f.origin
	f.mu.Unlock()
	if origin != "http://"+host {
		t.Errorf("Origin %q", origin)
	}
	tmpl := newScaler(t, map[string]string{"restAPITemplate": srv.URL + "/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=localhost,destinationType=Queue,destinationName=orders/QueueSize"}, creds)
	if v, _, err := scalertest.First(tmpl); err != nil || v != 25 {
		t.Fatalf("restAPITemplate: (%v, %v), want 25", v, err)
	}
	missing := newScaler(t, map[string]string{"managementEndpoint": host, "brokerName": "localhost", "destinationName": "absent"}, creds)
	if _, _, err := scalertest.First(missing); err == nil || !strings.Contains(err.Error(), "no such broker or queue") || !strings.Contains(err.Error(), `activemq trigger "orders"`) {
		t.Fatalf("absent queue: %v, want a 404 from Jolokia", err)
	}
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	srv := scalertest.Serve(t, &fakeJolokia{queues: map[string]int64{"orders": 1}})
	scalertest.SampleFails(t, New, scalertest.Config(TriggerType, "", map[string]string{"managementEndpoint": strings.TrimPrefix(srv.URL, "http://"), "brokerName": "localhost", "destinationName": "orders"},
		map[string]string{"username": "admin", "password": "wrong-pass-123"}), "HTTP 401", "wrong-pass-123")
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	host := strings.TrimPrefix(scalertest.ClosedURL(t), "http://")
	scalertest.ExpectConnectError(t, newScaler(t, map[string]string{"managementEndpoint": host, "brokerName": "localhost", "destinationName": "orders"}, creds))
}

// BenchmarkSample measures one Sample against an in-process fake of ActiveMQ's Jolokia API.
func BenchmarkSample(b *testing.B) {
	srv := scalertest.Serve(b, &fakeJolokia{queues: map[string]int64{"orders": 5}})
	scalertest.BenchmarkSample(b, newScaler(b, map[string]string{"managementEndpoint": strings.TrimPrefix(srv.URL, "http://"),
		"brokerName": "localhost", "destinationName": "orders"}, creds))
}
