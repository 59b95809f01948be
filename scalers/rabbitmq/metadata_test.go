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
	for _, tc := range []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		env      map[string]string
		want     *want
		errField string // the error must name this field
	}{
		{name: "defaults", metadata: base(), want: &want{protocol: "amqp", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},
		{name: "mode and value", metadata: base("mode", "QueueLength", "value", "100.5", "activationValue", "10.5"), want: &want{protocol: "amqp", mode: "QueueLength", value: 100.5, activation: 10.5, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},
		{name: "deprecated queueLength", metadata: base("queueLength", "7"), want: &want{protocol: "amqp", mode: "QueueLength", value: 7, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},
		{name: "http auto", metadata: base("host", "http://guest:guest@127.0.0.1:15672/", "mode", "MessageRate", "value", "2", "useRegex", "true", "operation", "avg", "pageSize", "10", "timeout", "1500", "excludeUnacknowledged", "true"), want: &want{protocol: "http", mode: "MessageRate", value: 2, pageSize: 10, operation: "avg", timeout: 1500 * time.Millisecond, watch: defaultWatchHTTP}},
		{name: "explicit protocol", metadata: base("protocol", "amqp", "watchInterval", "50ms"), want: &want{protocol: "amqp", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: 50 * time.Millisecond}},
		{name: "amqps with tls", metadata: base("host", "amqps://h:5671/"), auth: map[string]string{"tls": "enable"}, want: &want{protocol: "amqp", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},
		{name: "hostFromEnv", metadata: base("host", "<delete>", "hostFromEnv", "RABBIT"), env: map[string]string{"RABBIT": "http://h:15672/"}, want: &want{protocol: "http", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchHTTP}},
		{name: "host from authParams", metadata: base("host", "<delete>"), auth: map[string]string{"host": "amqp://u:p@h:5672/"}, want: &want{protocol: "amqp", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchAMQP}},

		{name: "oauth over http", metadata: base("host", "http://127.0.0.1:15672/"), auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "clientSecret": "s"}, want: &want{protocol: "http", mode: "QueueLength", value: 20, pageSize: 100, operation: "sum", timeout: defaultTimeout, watch: defaultWatchHTTP}},
		{name: "oauth over amqp", metadata: base("host", "amqp://127.0.0.1:5672/"), auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "clientSecret": "s"}, errField: "oauthTokenURI"},
		{name: "oauth with username", metadata: base("host", "http://u:p@127.0.0.1:15672/"), auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "clientSecret": "s"}, errField: "oauthTokenURI"},
		{name: "oauth without secret", metadata: base("host", "http://127.0.0.1:15672/"), auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c"}, errField: "clientSecret"},
		{name: "oauth without token URL", metadata: base("host", "http://127.0.0.1:15672/"), auth: map[string]string{"clientID": "c", "clientSecret": "s"}, errField: "oauthTokenURI"},

		{name: "missing host", metadata: base("host", "<delete>"), errField: "host"},
		{name: "hostFromEnv variable missing", metadata: base("host", "<delete>", "hostFromEnv", "NOPE"), errField: "hostFromEnv"},
		{name: "missing queueName", metadata: base("queueName", "<delete>"), errField: "queueName"},
		{name: "empty queueName", metadata: base("queueName", " "), errField: "queueName"},
		{name: "bad URL", metadata: base("host", "::not a url"), errField: "host"},
		{name: "bad scheme", metadata: base("host", "ftp://h/"), errField: "host"},
		{name: "protocol mismatch", metadata: base("protocol", "http"), errField: "protocol"},
		{name: "unknown protocol", metadata: base("protocol", "mqtt"), errField: "protocol"},
		{name: "unknown mode", metadata: base("mode", "Bytes", "value", "1"), errField: "mode"},
		{name: "mode without value", metadata: base("mode", "QueueLength"), errField: "value"},
		{name: "value without mode", metadata: base("value", "3"), errField: "mode"},
		{name: "non-numeric value", metadata: base("mode", "QueueLength", "value", "AA"), errField: "value"},
		{name: "zero value", metadata: base("mode", "QueueLength", "value", "0"), errField: "value"},
		{name: "negative value", metadata: base("mode", "QueueLength", "value", "-1"), errField: "value"},
		{name: "negative activationValue", metadata: base("activationValue", "-1"), errField: "activationValue"},
		{name: "non-numeric activationValue", metadata: base("activationValue", "x"), errField: "activationValue"},
		{name: "queueLength with mode", metadata: base("queueLength", "5", "mode", "QueueLength", "value", "5"), errField: "queueLength"},
		{name: "MessageRate over amqp", metadata: base("mode", "MessageRate", "value", "5"), errField: "mode"},
		{name: "useRegex over amqp", metadata: base("useRegex", "true"), errField: "useRegex"},
		{name: "excludeUnacknowledged over amqp", metadata: base("excludeUnacknowledged", "true"), errField: "excludeUnacknowledged"},
		{name: "bad useRegex", metadata: base("useRegex", "maybe"), errField: "useRegex"},
		{name: "bad operation", metadata: base("host", "http://h:15672/", "operation", "median"), errField: "operation"},
		{name: "zero pageSize", metadata: base("host", "http://h:15672/", "pageSize", "0"), errField: "pageSize"},
		{name: "non-numeric pageSize", metadata: base("host", "http://h:15672/", "pageSize", "ten"), errField: "pageSize"},
		{name: "zero timeout", metadata: base("timeout", "0"), errField: "timeout"},
		{name: "negative timeout", metadata: base("timeout", "-5"), errField: "timeout"},
		{name: "tiny watchInterval", metadata: base("watchInterval", "1ms"), errField: "watchInterval"},
		{name: "username without password", metadata: base(), auth: map[string]string{"username": "u"}, errField: "username"},
		{name: "password in plain metadata", metadata: base("password", "hunter22"), errField: "password"},
		{name: "bad tls value", metadata: base("host", "amqps://h/"), auth: map[string]string{"tls": "yes"}, errField: "tls"},
		{name: "tls over plain amqp", metadata: base(), auth: map[string]string{"tls": "enable"}, errField: "tls"},
		{name: "cert without key", metadata: base("host", "amqps://h/"), auth: map[string]string{"tls": "enable", "cert": "x"}, errField: "cert"},
		{name: "bad ca", metadata: base("host", "amqps://h/"), auth: map[string]string{"tls": "enable", "ca": "not pem"}, errField: "ca"},
		{name: "bad unsafeSsl", metadata: base("unsafeSsl", "sure"), errField: "unsafeSsl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: tc.metadata, AuthParams: tc.auth, ResolvedEnv: tc.env}
			s, err := New(context.Background(), cfg)
			if tc.want == nil {
				if err == nil {
					_ = s.Close(context.Background())
					t.Fatalf("want an error naming %q, got none", tc.errField)
				}
				if !strings.Contains(err.Error(), "rabbitmq trigger") || !strings.Contains(err.Error(), tc.errField) {
					t.Fatalf("error %q does not name the scaler type and field %q", err, tc.errField)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close(context.Background())
			m := s.(*Scaler).meta
			got := want{protocol: m.Protocol, mode: m.Mode, value: *m.Value, activation: m.ActivationValue, pageSize: m.PageSize,
				operation: m.Operation, timeout: m.timeout(), watch: m.watchInterval()}
			if got != *tc.want {
				t.Fatalf("parsed %+v, want %+v", got, *tc.want)
			}
		})
	}
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
			s := newScaler(t, scalerOpts{metadata: md, auth: tc.auth})
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
