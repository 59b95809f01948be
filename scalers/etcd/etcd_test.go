package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const rootPassword = "etcd-root-secret"

// server is a real etcd (go.etcd.io/etcd/server/v3/embed) on loopback ports.
type server struct {
	stopOnce sync.Once
	etcd     *embed.Etcd
	endpoint string
	admin    *clientv3.Client
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newServer starts etcd; with auth it enables authentication with user root.
func newServer(t testing.TB, auth bool) *server {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.BcryptCost = 4                                             // bcrypt's minimum: the default cost takes seconds per login under -race on a loaded machine
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop()) // shutdown logs "server closed" at error level
	client, peer := url.URL{Scheme: "http", Host: freePort(t)}, url.URL{Scheme: "http", Host: freePort(t)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{etcd: e, endpoint: client.String()}
	t.Cleanup(s.stop)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		t.Fatal("etcd did not become ready")
	}
	s.admin, err = clientv3.New(clientv3.Config{Endpoints: []string{s.endpoint}, DialTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if auth {
		if _, err := s.admin.UserAdd(ctx, "root", rootPassword); err != nil {
			t.Fatal(err)
		}
		if _, err := s.admin.UserGrantRole(ctx, "root", "root"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.admin.AuthEnable(ctx); err != nil {
			t.Fatal(err)
		}
		_ = s.admin.Close()
		s.admin, err = clientv3.New(clientv3.Config{Endpoints: []string{s.endpoint}, DialTimeout: 60 * time.Second, Username: "root", Password: rootPassword})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = s.admin.Close() })
	return s
}

func (s *server) stop() { s.stopOnce.Do(s.etcd.Close) }

func (s *server) put(t testing.TB, key, val string) {
	t.Helper()
	if _, err := s.admin.Put(context.Background(), key, val); err != nil {
		t.Fatal(err)
	}
}

func uniqueKey() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "/tidal/test/" + hex.EncodeToString(b)
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"endpoints": "http://10.0.0.1:2379, http://10.0.0.2:2379", "watchKey": "/jobs/length", "value": "5"}
	pki := scalertest.NewPKI(t)
	scalertest.ParseTableFunc(t, Type, scalers.ParseExternal[Metadata], []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: defaults, Check: func(t *testing.T, m Metadata) {
			if len(m.Endpoints) != 2 || m.Endpoints[1] != "http://10.0.0.2:2379" || m.WatchKey != "/jobs/length" || m.Value != 5 ||
				m.ActivationValue != 0 || m.WatchProgressNotifyInterval != 600 || m.TLS != "disable" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: scalertest.WithPairs(defaults, "activationValue", "1.5", "watchProgressNotifyInterval", "30"),
			Auth: map[string]string{"username": "u", "password": "p4ss", "tls": "enable", "ca": pki.CA, "cert": pki.ClientCert, "key": pki.ClientKey},
			Check: func(t *testing.T, m Metadata) {
				if m.ActivationValue != 1.5 || m.WatchProgressNotifyInterval != 30 || m.Username != "u" || m.TLS != "enable" {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "missing endpoints", MD: scalertest.WithPairs(defaults, "endpoints", scalertest.Delete), WantErr: `"endpoints"`},
		{Name: "empty endpoints", MD: scalertest.WithPairs(defaults, "endpoints", " , "), WantErr: "endpoints"},
		{Name: "endpoint without scheme", MD: scalertest.WithPairs(defaults, "endpoints", "10.0.0.1:2379"), WantErr: "endpoints"},
		{Name: "missing watchKey", MD: scalertest.WithPairs(defaults, "watchKey", scalertest.Delete), WantErr: `"watchKey"`},
		{Name: "blank watchKey", MD: scalertest.WithPairs(defaults, "watchKey", "  "), WantErr: "watchKey"},
		{Name: "missing value", MD: scalertest.WithPairs(defaults, "value", scalertest.Delete), WantErr: `"value"`},
		{Name: "value text", MD: scalertest.WithPairs(defaults, "value", "five"), WantErr: "value: want a finite number"},
		{Name: "value zero", MD: scalertest.WithPairs(defaults, "value", "0"), WantErr: "value: a metric target must be at least"},
		{Name: "activationValue negative", MD: scalertest.WithPairs(defaults, "activationValue", "-1"), WantErr: "activationValue"},
		{Name: "activationValue text", MD: scalertest.WithPairs(defaults, "activationValue", "x"), WantErr: "activationValue"},
		{Name: "interval text", MD: scalertest.WithPairs(defaults, "watchProgressNotifyInterval", "10m"), WantErr: "watchProgressNotifyInterval: want integer"},
		{Name: "interval zero", MD: scalertest.WithPairs(defaults, "watchProgressNotifyInterval", "0"), WantErr: "watchProgressNotifyInterval"},
		{Name: "username without password", MD: defaults, Auth: map[string]string{"username": "u"}, WantErr: "username and password"},
		{Name: "tls bad", MD: defaults, Auth: map[string]string{"tls": "yes"}, WantErr: "tls: want one of"},
		{Name: "cert without tls", MD: defaults, Auth: map[string]string{"cert": pki.ClientCert, "key": pki.ClientKey}, WantErr: "tls"},
	})
	// A key that is not PEM fails at build, naming the parameter.
	_, err := New(context.Background(), &scalers.TriggerConfig{Type: Type, Metadata: defaults,
		AuthParams: map[string]string{"tls": "enable", "cert": pki.ClientCert, "key": "not-a-key"}})
	if err == nil || !strings.Contains(err.Error(), "cert/key") {
		t.Errorf("bad key: %v", err)
	}
}

func TestSampleAndWatch(t *testing.T) {
	srv := newServer(t, false)
	key := uniqueKey()
	s := scalertest.New[*Scaler](t, New, &scalers.TriggerConfig{Type: Type, Index: 2,
		Metadata: map[string]string{"endpoints": srv.endpoint, "watchKey": key, "value": "5", "activationValue": "2", "watchProgressNotifyInterval": "1"}})
	specs := s.MetricSpecs()
	if specs[0].External.Metric.Name != "s2-etcd--tidal-test-"+key[len("/tidal/test/"):] || specs[0].External.Target.AverageValue.Value() != 5 {
		t.Fatalf("specs = %+v", specs[0].External)
	}
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "key not found") {
		t.Errorf("missing key: %v, want an error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, changed) }()

	steps := []struct {
		val        string
		want       float64
		wantActive bool
	}{{"0", 0, false}, {"2", 2, false}, {"12.5", 12.5, true}, {"0", 0, false}}
	for _, st := range steps {
		// Put until the watch reports it: the watch may open after the first put.
		deadline := time.After(60 * time.Second)
		seen := false
		for !seen {
			srv.put(t, key, st.val)
			select {
			case <-changed:
				seen = true
			case err := <-done:
				t.Fatalf("Watch returned %v", err)
			case <-time.After(time.Second):
			case <-deadline:
				t.Fatalf("value %s: no change signalled", st.val)
			}
		}
		if v, active := scalertest.Sample(t, s, ""); v != st.want || active != st.wantActive {
			t.Errorf("value %s: sample %v active %v, want %v %v", st.val, v, active, st.want, st.wantActive)
		}
	}
	srv.put(t, key, "many")
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("text value: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch after cancel: %v", err)
	}
}

func TestAuth(t *testing.T) {
	srv := newServer(t, true)
	key := uniqueKey()
	srv.put(t, key, "3")
	md := map[string]string{"endpoints": srv.endpoint, "watchKey": key, "value": "1"}
	ok := scalertest.New[*Scaler](t, New, &scalers.TriggerConfig{Type: Type, Metadata: md, AuthParams: map[string]string{"username": "root", "password": rootPassword}})
	if v, active := scalertest.Sample(t, ok, ""); v != 3 || !active {
		t.Errorf("with auth: %v %v", v, active)
	}
	log, logs := scalertest.ObservedLogger()
	bad := scalertest.New[*Scaler](t, New, &scalers.TriggerConfig{Type: Type, Metadata: md, Logger: log, AuthParams: map[string]string{"username": "root", "password": "wrong-password"}})
	_, _, err := bad.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), "etcd trigger") {
		t.Fatalf("wrong password: %v", err)
	}
	scalertest.AssertNoSecret(t, "wrong-password", err.Error(), logs.All())
	anon := scalertest.New[*Scaler](t, New, &scalers.TriggerConfig{Type: Type, Metadata: md})
	if _, _, err := anon.Sample(context.Background()); err == nil {
		t.Error("no credentials on an auth-enabled cluster: no error")
	}
}

func TestServerDown(t *testing.T) {
	srv := newServer(t, false)
	key := uniqueKey()
	srv.put(t, key, "1")
	s := scalertest.New[*Scaler](t, New, &scalers.TriggerConfig{Type: Type, Metadata: map[string]string{"endpoints": srv.endpoint, "watchKey": key, "value": "1"}})
	scalertest.Sample(t, s, "")
	srv.stop()
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "get") {
		t.Fatalf("server down: %v", err)
	}
}

// BenchmarkSample measures one linearizable Get against a local embedded etcd.
func BenchmarkSample(b *testing.B) {
	srv := newServer(b, false)
	key := uniqueKey()
	srv.put(b, key, fmt.Sprint(7))
	scalertest.BenchmarkSample(b, scalertest.New[*Scaler](b, New, &scalers.TriggerConfig{Type: Type, Metadata: map[string]string{"endpoints": srv.endpoint, "watchKey": key, "value": "5"}}))
}
