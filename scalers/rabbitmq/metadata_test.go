package rabbitmq

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestParseMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"host": "amqp://guest:guest@127.0.0.1:5672/vh", "queueName": "orders"}
	base := func(kv ...string) map[string]string { return scalertest.WithPairs(defaults, kv...) }
	type want struct {
		protocol   string
		mode       string
		value      float64
		activation float64
		pageSize   int64
		operation  string
		timeout    time.Duration
		watch      time.Duration
	}
	scalertest.NewTable(t, TriggerType, "", New, func(s scalers.Scaler) want {
		m := s.(*Scaler).meta
		return want{protocol: m.Protocol, mode: m.Mode, value: *m.Value, activation: m.ActivationValue, pageSize: m.PageSize,
			operation: m.Operation, timeout: m.timeout(), watch: m.watchInterval()}
	}, []scalertest.NewCase[want]{
		{Name: "defaults", MD: base(), WantMeta: want{protocol: "amqp", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},
		{Name: "mode and value", MD: base("mode", "QueueLength", "value", "100.5", "activationValue", "10.5"), WantMeta: want{protocol: "amqp", mode: "QueueLength", value: 100.5, activation: 10.5, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},
		{Name: "deprecated queueLength", MD: base("queueLength", "7"), WantMeta: want{protocol: "amqp", mode: "QueueLength", value: 7, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},
		{Name: "http auto", MD: base("host", "http://guest:guest@127.0.0.1:15672/", "mode", "MessageRate", "value", "2", "useRegex", "true", "operation", "avg", "pageSize", "10", "timeout", "1500", "excludeUnacknowledged", "true"), WantMeta: want{protocol: "http", mode: "MessageRate", value: 2, pageSize: 10, operation: "avg", timeout: 1500 * time.Millisecond, watch: defaultWatchHTTP}},
		{Name: "explicit protocol", MD: base("protocol", "amqp", "watchInterval", "50ms"), WantMeta: want{protocol: "amqp", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: 50 * time.Millisecond}},
		{Name: "amqps with tls", MD: base("host", "amqps://h:5671/"), Auth: map[string]string{"tls": "enable"}, WantMeta: want{protocol: "amqp", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},
		{Name: "hostFromEnv", MD: base("host", "<delete>", "hostFromEnv", "RABBIT"), Env: map[string]string{"RABBIT": "http://h:15672/"}, WantMeta: want{protocol: "http", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchHTTP}},
		{Name: "host from authParams", MD: base("host", "<delete>"), Auth: map[string]string{"host": "amqp://u:p@h:5672/"}, WantMeta: want{protocol: "amqp", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},

		{Name: "oauth over http", MD: base("host", "http://127.0.0.1:15672/"), Auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "clientSecret": "s"}, WantMeta: want{protocol: "http", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchHTTP}},
		{Name: "oauth over amqp", MD: base("host", "amqp://127.0.0.1:5672/"), Auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "clientSecret": "s"}, WantErr: "oauthTokenURI"},
		{Name: "oauth with username", MD: base("host", "http://u:p@127.0.0.1:15672/"), Auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "clientSecret": "s"}, WantErr: "oauthTokenURI"},
		{Name: "oauth without secret", MD: base("host", "http://127.0.0.1:15672/"), Auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c"}, WantErr: "clientSecret"},
		{Name: "oauth without token URL", MD: base("host", "http://127.0.0.1:15672/"), Auth: map[string]string{"clientID": "c", "clientSecret": "s"}, WantErr: "oauthTokenURI"},

		{Name: "missing host", MD: base("host", "<delete>"), WantErr: "host"},
		{Name: "hostFromEnv variable missing", MD: base("host", "<delete>", "hostFromEnv", "NOPE"), WantErr: "hostFromEnv"},
		{Name: "missing queueName", MD: base("queueName", "<delete>"), WantErr: "queueName"},
		{Name: "empty queueName", MD: base("queueName", " "), WantErr: "queueName"},
		{Name: "bad URL", MD: base("host", "::not a url"), WantErr: "host"},
		{Name: "bad scheme", MD: base("host", "ftp://h/"), WantErr: "host"},
		{Name: "protocol mismatch", MD: base("protocol", "http"), WantErr: "protocol"},
		{Name: "unknown protocol", MD: base("protocol", "mqtt"), WantErr: "protocol"},
		{Name: "unknown mode", MD: base("mode", "Bytes", "value", "1"), WantErr: "mode"},
		{Name: "mode without value", MD: base("mode", "QueueLength"), WantErr: "value"},
		{Name: "value without mode", MD: base("value", "3"), WantErr: "mode"},
		{Name: "non-numeric value", MD: base("mode", "QueueLength", "value", "AA"), WantErr: "value"},
		{Name: "zero value", MD: base("mode", "QueueLength", "value", "0"), WantErr: "value"},
		{Name: "negative value", MD: base("mode", "QueueLength", "value", "-1"), WantErr: "value"},
		{Name: "negative activationValue", MD: base("activationValue", "-1"), WantErr: "activationValue"},
		{Name: "non-numeric activationValue", MD: base("activationValue", "x"), WantErr: "activationValue"},
		{Name: "queueLength with mode", MD: base("queueLength", "5", "mode", "QueueLength", "value", "5"), WantErr: "queueLength"},
		{Name: "MessageRate over amqp", MD: base("mode", "MessageRate", "value", "5"), WantErr: "mode"},
		{Name: "useRegex over amqp", MD: base("useRegex", "true"), WantErr: "useRegex"},
		{Name: "excludeUnacknowledged over amqp", MD: base("excludeUnacknowledged", "true"), WantErr: "excludeUnacknowledged"},
		{Name: "bad useRegex", MD: base("useRegex", "maybe"), WantErr: "useRegex"},
		{Name: "bad operation", MD: base("host", "http://h:15672/", "operation", "median"), WantErr: "operation"},
		{Name: "zero pageSize", MD: base("host", "http://h:15672/", "pageSize", "0"), WantErr: "pageSize"},
		{Name: "non-numeric pageSize", MD: base("host", "http://h:15672/", "pageSize", "ten"), WantErr: "pageSize"},
		{Name: "zero timeout", MD: base("timeout", "0"), WantErr: "timeout"},
		{Name: "negative timeout", MD: base("timeout", "-5"), WantErr: "timeout"},
		{Name: "tiny watchInterval", MD: base("watchInterval", "1ms"), WantErr: "watchInterval"},
		{Name: "username without password", MD: base(), Auth: map[string]string{"username": "u"}, WantErr: "username"},
		{Name: "password in plain metadata", MD: base("password", "hunter22"), WantErr: "password"},
		{Name: "bad tls value", MD: base("host", "amqps://h/"), Auth: map[string]string{"tls": "yes"}, WantErr: "tls"},
		{Name: "tls over plain amqp", MD: base(), Auth: map[string]string{"tls": "enable"}, WantErr: "tls"},
		{Name: "cert without key", MD: base("host", "amqps://h/"), Auth: map[string]string{"tls": "enable", "cert": "x"}, WantErr: "cert"},
		{Name: "bad ca", MD: base("host", "amqps://h/"), Auth: map[string]string{"tls": "enable", "ca": "not pem"}, WantErr: "ca"},
		{Name: "bad unsafeSsl", MD: base("unsafeSsl", "sure"), WantErr: "unsafeSsl"},
	})
}

func TestSplitVhost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, path, prefix, vhost string }{
		{name: "empty", path: "", prefix: "", vhost: ""},
		{name: "root", path: "/", prefix: "", vhost: ""},
		{name: "vhost", path: "/vh", prefix: "", vhost: "vh"},
		{name: "encoded slash", path: "/%2F", prefix: "", vhost: "%2F"},
		{name: "prefix", path: "/rabbit/mgmt/vh", prefix: "/rabbit/mgmt", vhost: "vh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, v := splitVhost(tc.path)
			if p != tc.prefix || v != tc.vhost {
				t.Fatalf("splitVhost(%q) = %q, %q; want %q, %q", tc.path, p, v, tc.prefix, tc.vhost)
			}
		})
	}
}

func TestCombine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		op     string
		values []float64
		want   float64
	}{
		{name: "sum", op: "sum", values: []float64{1, 2, 3}, want: 6},
		{name: "max", op: "max", values: []float64{1, 5, 3}, want: 5},
		{name: "avg", op: "avg", values: []float64{1, 2}, want: 1.5},
		{name: "no queues", op: "avg", values: nil, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := combine(tc.op, tc.values); got != tc.want {
				t.Fatalf("combine(%s, %v) = %v, want %v", tc.op, tc.values, got, tc.want)
			}
		})
	}
}

// TestHTTPTLS reads the management API over TLS with a custom CA and a client certificate, against an httptest
// server that answers with the management API's queue JSON.
func TestHTTPTLS(t *testing.T) {
	t.Parallel()
	clientCA := testpki.NewCA(t, "tidal-client-ca")
	client := clientCA.Client(t, "tidal-client")
	clientCert, clientKey := client.CertPEM, client.KeyPEM
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.EscapedPath() != "/api/queues/%2F/orders" {
			http.NotFound(w, r)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "guest" || p != "guest" {
			http.Error(w, `{"error":"not_authorised"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"message_stats":{"publish_details":{"rate":1.5}},"messages":12,"messages_ready":9,"name":"orders"}`))
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool()}
	srv.StartTLS()
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	host := strings.Replace(srv.URL, "https://", "https://guest:guest@", 1) + "/"

	for _, tc := range []struct {
		name    string
		auth    map[string]string
		meta    map[string]string
		want    float64
		wantErr string
	}{
		{name: "ca and client cert", auth: map[string]string{"tls": "enable", "ca": string(caPEM), "cert": string(clientCert), "key": string(clientKey)}, want: 12},
		{name: "excludeUnacknowledged", auth: map[string]string{"tls": "enable", "ca": string(caPEM), "cert": string(clientCert), "key": string(clientKey)}, meta: map[string]string{"excludeUnacknowledged": "true"}, want: 9},
		{name: "unsafeSsl with client cert", auth: map[string]string{"tls": "enable", "cert": string(clientCert), "key": string(clientKey)}, meta: map[string]string{"unsafeSsl": "true"}, want: 12},
		{name: "no client cert", auth: map[string]string{"tls": "enable", "ca": string(caPEM)}, wantErr: "management API"},
		{name: "unknown CA", auth: map[string]string{"tls": "enable", "cert": string(clientCert), "key": string(clientKey)}, wantErr: "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"host": host, "queueName": "orders"}
			for k, v := range tc.meta {
				md[k] = v
			}
			s := newScaler(t, scalertest.Trigger{MD: md, Auth: tc.auth})
			v, _, err := s.Sample(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err=%v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v[0].Value != tc.want {
				t.Fatalf("value=%v, want %v", v[0].Value, tc.want)
			}
		})
	}
}

func FuzzParseRabbitMQMetadata(f *testing.F) {
	keys := []string{"host", "protocol", "queueName", "mode", "value", "queueLength", "activationValue", "vhostName",
		"useRegex", "operation", "excludeUnacknowledged", "pageSize", "timeout", "unsafeSsl", "watchInterval", "hostFromEnv", "password"}
	f.Add("amqp://guest:guest@127.0.0.1:5672/", "q", "QueueLength", "5", "auto", "")
	f.Add("http://h:15672/vh", "^q.*$", "MessageRate", "0.5", "http", "true")
	f.Add("amqps://h", "", "", "", "amqp", "enable")
	f.Add("::%zz", "q", "Bytes", "NaN", "mqtt", "1e400")
	f.Add("http://u:p@h:1/a/b/c", "q", "QueueLength", "-3", "auto", "x")
	f.Fuzz(func(t *testing.T, host, queue, mode, value, protocol, extra string) {
		md := map[string]string{"host": host, "queueName": queue, "mode": mode, "value": value, "protocol": protocol}
		// Spread extra over the remaining keys so every field sees arbitrary input.
		sort.Strings(keys)
		for i, k := range keys {
			if _, set := md[k]; !set && len(extra) > 0 && i%2 == len(extra)%2 {
				md[k] = extra
			}
		}
		cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: md, AuthParams: map[string]string{"tls": extra, "ca": extra, "cert": extra, "key": extra}}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := New(ctx, cfg)
		if err != nil {
			if !strings.Contains(err.Error(), "rabbitmq trigger") {
				t.Fatalf("error does not name the trigger: %v", err)
			}
			return
		}
		_ = s.MetricSpecs()
		_, _, _ = s.Sample(ctx) // cancelled: must fail fast, never panic
		_ = s.Close(context.Background())
	})
}
