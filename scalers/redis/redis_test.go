package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// localClient is a plain client of the shared server, for creating load. It fails the test when the server is
// down (start it with the command in the scaler guide / .ci/run).
func localClient(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: localAddr, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s is not reachable (%v); start it: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no", localAddr, err)
	}
	return c
}

func triggerConfig(t testing.TB, typ string, md map[string]string) *scalers.TriggerConfig {
	return &scalers.TriggerConfig{
		Type: typ, Name: "orders", Metadata: md,
		PollingInterval: 60 * time.Second,
		Logger:          zaptest.NewLogger(t),
		Shared:          scalers.NewShared(),
	}
}

// build makes a scaler and closes it at cleanup.
func build(t testing.TB, cfg *scalers.TriggerConfig, opts Options) scalers.PushScaler {
	t.Helper()
	s, err := NewWithOptions(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Type, err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s.(scalers.PushScaler)
}

// sample returns the single metric value and activity, failing the test on error.
func sample(t testing.TB, s scalers.Scaler) (float64, bool) {
	t.Helper()
	return scalertest.Sample(t, s, "")
}

func cleanupKeys(t testing.TB, c goredis.Cmdable, keys ...string) {
	t.Cleanup(func() { _ = c.Del(context.Background(), keys...).Err() })
}

// TestListLength loads each key type KEDA's list scaler counts, checks value and activity, drains, checks again.
func TestListLength(t *testing.T) {
	rc := localClient(t)
	ctx := context.Background()
	cases := []struct {
		name string
		fill func(key string, n int)
	}{
		{"list", func(k string, n int) {
			for i := 0; i < n; i++ {
				rc.LPush(ctx, k, i)
			}
		}},
		{"set", func(k string, n int) {
			for i := 0; i < n; i++ {
				rc.SAdd(ctx, k, i)
			}
		}},
		{"sorted set", func(k string, n int) {
			for i := 0; i < n; i++ {
				rc.ZAdd(ctx, k, goredis.Z{Score: float64(i), Member: i})
			}
		}},
		{"hash", func(k string, n int) {
			for i := 0; i < n; i++ {
				rc.HSet(ctx, k, i, i)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := uniqueKey(t, "list")
			cleanupKeys(t, rc, key)
			s := build(t, triggerConfig(t, TypeList, map[string]string{
				"address": localAddr, "listName": key, "listLength": "5", "activationListLength": "2"}), Options{})

			if v, active := sample(t, s); v != 0 || active {
				t.Fatalf("missing key: value %v active %v, want 0 false", v, active)
			}
			tc.fill(key, 2)
			if v, active := sample(t, s); v != 2 || active {
				t.Fatalf("2 items with activationListLength 2: value %v active %v, want 2 false", v, active)
			}
			tc.fill(key, 7) // set/hash members repeat 0,1; lists grow to 9
			want := 7.0
			if tc.name == "list" {
				want = 9
			}
			if v, active := sample(t, s); v != want || !active {
				t.Fatalf("loaded: value %v active %v, want %v true", v, active, want)
			}
			rc.Del(ctx, key)
			if v, active := sample(t, s); v != 0 || active {
				t.Fatalf("drained: value %v active %v, want 0 false", v, active)
			}
		})
	}
}

// TestListDatabaseIndex checks databaseIndex selects the database.
func TestListDatabaseIndex(t *testing.T) {
	rc := localClient(t)
	ctx := context.Background()
	db3 := goredis.NewClient(&goredis.Options{Addr: localAddr, DB: 3, DisableIdentity: true})
	t.Cleanup(func() { _ = db3.Close() }) // registered before cleanupKeys, so it closes after
	key := uniqueKey(t, "list")
	cleanupKeys(t, db3, key)
	cleanupKeys(t, rc, key)
	db3.RPush(ctx, key, "a", "b", "c")
	s3 := build(t, triggerConfig(t, TypeList, map[string]string{"address": localAddr, "listName": key, "databaseIndex": "3"}), Options{})
	s0 := build(t, triggerConfig(t, TypeList, map[string]string{"address": localAddr, "listName": key}), Options{})
	if v, _ := sample(t, s3); v != 3 {
		t.Fatalf("db 3: value %v, want 3", v)
	}
	if v, _ := sample(t, s0); v != 0 {
		t.Fatalf("db 0: value %v, want 0", v)
	}
}

func TestListMetricSpecs(t *testing.T) {
	cases := []struct {
		name       string
		md         map[string]string
		metricType autoscalingv2.MetricTargetType
		wantName   string
		wantTarget int64
	}{
		{"default target 5", map[string]string{"address": localAddr, "listName": "Jobs_Queue"}, "", "s2-redis-jobs-queue", 5},
		{"listLength 12 as Value", map[string]string{"address": localAddr, "listName": "jobs", "listLength": "12"}, autoscalingv2.ValueMetricType, "s2-redis-jobs", 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := triggerConfig(t, TypeList, tc.md)
			cfg.Index = 2
			cfg.MetricType = tc.metricType
			specs := build(t, cfg, Options{}).MetricSpecs()
			if len(specs) != 1 || specs[0].External == nil {
				t.Fatalf("specs %+v", specs)
			}
			ext := specs[0].External
			if ext.Metric.Name != tc.wantName {
				t.Errorf("metric name %q, want %q", ext.Metric.Name, tc.wantName)
			}
			q := ext.Target.AverageValue
			if tc.metricType == autoscalingv2.ValueMetricType {
				q = ext.Target.Value
			}
			if q == nil || q.Value() != tc.wantTarget {
				t.Errorf("target %+v, want %d", ext.Target, tc.wantTarget)
			}
		})
	}
}

// TestListMetadata covers every documented field, the defaults and bad values. Parsing never connects.
func TestListMetadata(t *testing.T) {
	type want struct {
		addrs      []string
		listLength int64
		activation int64
		db         int
		user, pass string
		tls        bool
	}
	cases := []struct {
		name      string
		typ       string
		md        map[string]string
		auth      map[string]string
		env       map[string]string
		want      *want
		wantField string
	}{
		{name: "defaults", typ: TypeList, md: map[string]string{"address": "redis:6379", "listName": "q"},
			want: &want{addrs: []string{"redis:6379"}, listLength: 5}},
		{name: "all fields", typ: TypeList,
			md:   map[string]string{"address": "redis:6380", "listName": "q", "listLength": "9", "activationListLength": "3", "databaseIndex": "4", "enableTLS": "true", "unsafeSsl": "true", "username": "app"},
			auth: map[string]string{"password": "s3cret"},
			want: &want{addrs: []string{"redis:6380"}, listLength: 9, activation: 3, db: 4, user: "app", pass: "s3cret", tls: true}},
		{name: "address and password from env", typ: TypeList,
			md:   map[string]string{"addressFromEnv": "REDIS_ADDR", "passwordFromEnv": "REDIS_PW", "listName": "q"},
			env:  map[string]string{"REDIS_ADDR": "10.0.0.1:6379", "REDIS_PW": "envpw"},
			want: &want{addrs: []string{"10.0.0.1:6379"}, listLength: 5, pass: "envpw"}},
		{name: "host and port", typ: TypeList, md: map[string]string{"host": "redis.ns", "port": "6379", "listName": "q"},
			want: &want{addrs: []string{"redis.ns:6379"}, listLength: 5}},
		{name: "cluster hosts and ports", typ: TypeClusterList, md: map[string]string{"hosts": "a, b,c", "ports": "1,2,3", "listName": "q"},
			want: &want{addrs: []string{"a:1", "b:2", "c:3"}, listLength: 5}},
		{name: "cluster addresses", typ: TypeClusterList, md: map[string]string{"addresses": "a:1,b:2", "listName": "q"},
			want: &want{addrs: []string{"a:1", "b:2"}, listLength: 5}},
		{name: "tls from auth params", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q"}, auth: map[string]string{"tls": "enable"},
			want: &want{addrs: []string{"r:1"}, listLength: 5, tls: true}},
		{name: "sentinel", typ: TypeSentinelList, md: map[string]string{"addresses": "s1:26379,s2:26379", "sentinelMaster": "mymaster", "listName": "q"},
			auth: map[string]string{"sentinelPassword": "spw"}, want: &want{addrs: []string{"s1:26379", "s2:26379"}, listLength: 5}},

		{name: "listName missing", typ: TypeList, md: map[string]string{"address": "r:1"}, wantField: "listName"},
		{name: "listName empty", typ: TypeList, md: map[string]string{"address": "r:1", "listName": ""}, wantField: "listName"},
		{name: "listLength not a number", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q", "listLength": "AA"}, wantField: "listLength"},
		{name: "listLength zero", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q", "listLength": "0"}, wantField: "listLength"},
		{name: "activationListLength negative", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q", "activationListLength": "-1"}, wantField: "activationListLength"},
		{name: "databaseIndex negative", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q", "databaseIndex": "-1"}, wantField: "databaseIndex"},
		{name: "databaseIndex not a number", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q", "databaseIndex": "x"}, wantField: "databaseIndex"},
		{name: "no address", typ: TypeList, md: map[string]string{"listName": "q"}, wantField: "address"},
		{name: "address without port", typ: TypeList, md: map[string]string{"address": "redis.example.com", "listName": "q"}, wantField: "address"},
		{name: "address is a URL", typ: TypeList, md: map[string]string{"address": "redis://u:p@host", "listName": "q"}, wantField: "address"},
		{name: "address with credentials", typ: TypeList, md: map[string]string{"address": "user:hunter22@host:6379", "listName": "q"}, wantField: "address"},
		{name: "address with user", typ: TypeList, md: map[string]string{"address": "hunter22@host:6379", "listName": "q"}, wantField: "address"},
		{name: "addressFromEnv unresolved", typ: TypeList, md: map[string]string{"addressFromEnv": "NOPE", "listName": "q"}, wantField: "addressFromEnv"},
		{name: "hosts without ports", typ: TypeClusterList, md: map[string]string{"hosts": "a,b", "listName": "q"}, wantField: "host"},
		{name: "hosts and ports differ in count", typ: TypeClusterList, md: map[string]string{"hosts": "a,b", "ports": "1", "listName": "q"}, wantField: "host"},
		{name: "port not a number", typ: TypeList, md: map[string]string{"host": "a", "port": "http", "listName": "q"}, wantField: "port"},
		{name: "enableTLS not a bool", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q", "enableTLS": "yes please"}, wantField: "enableTLS"},
		// tls "disable", not "enable": cfg.Errorf redacts every auth param value of 3+ characters, and "enable"
		// would mangle the field name enableTLS in the message (reported to the lead).
		{name: "tls in both places", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q", "enableTLS": "true"}, auth: map[string]string{"tls": "disable"}, wantField: "enableTLS"},
		{name: "tls bad value", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q"}, auth: map[string]string{"tls": "maybe"}, wantField: "tls"},
		{name: "cert without key", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q"}, auth: map[string]string{"tls": "enable", "cert": "x"}, wantField: "cert"},
		{name: "ca not PEM", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q"}, auth: map[string]string{"tls": "enable", "ca": "not a cert"}, wantField: "ca"},
		{name: "cert and key not PEM", typ: TypeList, md: map[string]string{"address": "r:1", "listName": "q"}, auth: map[string]string{"tls": "enable", "cert": "c", "key": "k"}, wantField: "cert"},
		{name: "cluster with databaseIndex", typ: TypeClusterList, md: map[string]string{"addresses": "a:1", "listName": "q", "databaseIndex": "2"}, wantField: "databaseIndex"},
		{name: "sentinel without master", typ: TypeSentinelList, md: map[string]string{"addresses": "s:26379", "listName": "q"}, wantField: "sentinelMaster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &scalers.TriggerConfig{Type: tc.typ, Metadata: tc.md, AuthParams: tc.auth, ResolvedEnv: tc.env}
			s, err := NewWithOptions(context.Background(), cfg, Options{})
			if tc.wantField != "" {
				if err == nil {
					_ = s.Close(context.Background())
					t.Fatalf("want an error naming %q, got none", tc.wantField)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.typ+" trigger") || !strings.Contains(msg, tc.wantField) {
					t.Fatalf("error %q does not name the trigger type %q and field %q", msg, tc.typ, tc.wantField)
				}
				if strings.Contains(msg, "hunter22") {
					t.Fatalf("error %q repeats the credentials in the address", msg)
				}
				for _, secret := range tc.auth {
					if len(secret) > 3 && strings.Contains(msg, secret) {
						t.Fatalf("error %q repeats an auth param", msg)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			defer s.Close(context.Background())
			m := s.(*listScaler).meta
			w := tc.want
			if strings.Join(m.Addresses, ",") != strings.Join(w.addrs, ",") || m.ListLength != w.listLength ||
				m.ActivationListLength != w.activation || m.DatabaseIndex != w.db || m.Username != w.user ||
				m.Password != w.pass || m.tlsEnabled() != w.tls {
				t.Fatalf("parsed %+v, want %+v", m, w)
			}
		})
	}
}

// TestSharedClient checks one client per distinct connection, released with the last user.
func TestSharedClient(t *testing.T) {
	shared := scalers.NewShared()
	mk := func(md map[string]string) scalers.Scaler {
		s, err := New(context.Background(), &scalers.TriggerConfig{Type: TypeList, Metadata: md, Shared: shared})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := mk(map[string]string{"address": localAddr, "listName": "a"})
	b := mk(map[string]string{"address": localAddr, "listName": "b"})
	c := mk(map[string]string{"address": localAddr, "listName": "a", "databaseIndex": "1"})
	if n := shared.Len(); n != 2 {
		t.Fatalf("%d clients for two distinct connections, want 2", n)
	}
	if a.(*listScaler).client != b.(*listScaler).client {
		t.Fatal("same connection, different clients")
	}
	for _, s := range []scalers.Scaler{a, b, c} {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := shared.Len(); n != 0 {
		t.Fatalf("%d clients left after closing every scaler", n)
	}
}

// TestUnreachable checks a server that is down is a Sample error for this trigger, not a build error.
func TestUnreachable(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s := build(t, triggerConfig(t, TypeList, map[string]string{"address": addr, "listName": "q"}), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, active, err := s.Sample(ctx)
	if err == nil || active {
		t.Fatalf("Sample against a closed port: active %v err %v, want an error", active, err)
	}
	if !strings.Contains(err.Error(), `redis trigger "orders"`) || !strings.Contains(err.Error(), "listName") {
		t.Fatalf("error %q does not name the trigger and key", err)
	}
}

// aclUser creates a throwaway ACL user on the shared server and deletes it at cleanup.
func aclUser(t testing.TB, rc *goredis.Client, password string, rules ...any) string {
	t.Helper()
	user := "tidal-test-" + randSuffix()
	args := append([]any{"ACL", "SETUSER", user, "reset", "on", ">" + password, "~*", "&*"}, rules...)
	if err := rc.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { rc.Do(context.Background(), "ACL", "DELUSER", user) })
	return user
}

// TestCredentialsNeverLeak uses a real ACL user: the right password works, and with a wrong one neither the
// errors nor any log line (message or field) contain the password.
func TestCredentialsNeverLeak(t *testing.T) {
	rc := localClient(t)
	const good, bad = "right-horse-battery", "wrong-staple-Zq9"
	user := aclUser(t, rc, good, "+@all")
	key := uniqueKey(t, "list")
	cleanupKeys(t, rc, key)
	rc.RPush(context.Background(), key, "x")

	core, logs := observer.New(zap.DebugLevel)
	for _, typ := range []string{TypeList, TypeStreams} {
		t.Run(typ, func(t *testing.T) {
			md := map[string]string{"address": localAddr, "listName": key, "stream": key, "username": user}
			okCfg := &scalers.TriggerConfig{Type: typ, Name: "orders", Metadata: md, AuthParams: map[string]string{"password": good}, Logger: zap.New(core)}
			if typ == TypeList {
				if v, _ := sample(t, build(t, okCfg, Options{})); v != 1 {
					t.Fatalf("right password: value %v, want 1", v)
				}
			}
			cfg := &scalers.TriggerConfig{Type: typ, Name: "orders", Metadata: md, AuthParams: map[string]string{"password": bad}, Logger: zap.New(core)}
			s := build(t, cfg, Options{WatchRecheck: 100 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var errs []error
			if _, _, err := s.Sample(ctx); err == nil {
				t.Fatal("Sample with a wrong password succeeded")
			} else {
				errs = append(errs, err)
			}
			if err := s.Watch(ctx, make(chan struct{}, 1)); err == nil {
				t.Fatal("Watch with a wrong password returned nil")
			} else {
				errs = append(errs, err)
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), good) {
					t.Fatalf("error leaks the password: %v", err)
				}
				if !strings.Contains(err.Error(), typ+` trigger "orders"`) {
					t.Fatalf("error does not name the trigger: %v", err)
				}
				t.Logf("error: %v", err)
			}
		})
	}
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += " " + k + "=" + anyString(v)
		}
		if strings.Contains(text, bad) || strings.Contains(text, good) {
			t.Fatalf("log line leaks the password: %s", text)
		}
	}
}

func anyString(v any) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(v)
}

func FuzzParseRedisMetadata(f *testing.F) {
	f.Add(TypeList, "address", "127.0.0.1:6379", "listName", "q", "listLength", "5")
	f.Add(TypeClusterList, "hosts", "a,b", "ports", "1,2", "listName", "q")
	f.Add(TypeSentinelList, "addresses", "s:1", "sentinelMaster", "m", "databaseIndex", "-1")
	f.Add(TypeStreams, "address", "r:1", "stream", "s", "consumerGroup", "g")
	f.Add(TypeClusterStreams, "addresses", "[::1]:7000", "stream", "s", "lagCount", "99999999999999999999")
	f.Add(TypeSentinelStreams, "host", "h", "port", "0", "enableTLS", "maybe")
	f.Add("redis-unknown", "address", "::::", "listName", "", "activationListLength", "1e9")
	f.Fuzz(func(t *testing.T, typ, k1, v1, k2, v2, k3, v3 string) {
		cfg := &scalers.TriggerConfig{Type: typ, Metadata: map[string]string{k1: v1, k2: v2, k3: v3}, AuthParams: map[string]string{"tls": v3, "ca": v2}}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := NewWithOptions(ctx, cfg, Options{})
		if err != nil {
			if !strings.Contains(err.Error(), "trigger") {
				t.Fatalf("error does not name the trigger: %v", err)
			}
			return
		}
		_ = s.MetricSpecs()
		if _, _, err := s.Sample(ctx); err == nil {
			t.Fatal("Sample with a cancelled context succeeded")
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkSample measures one list Sample round trip against the local server.
func BenchmarkSample(b *testing.B) {
	rc := localClient(b)
	key := uniqueKey(b, "list")
	cleanupKeys(b, rc, key)
	rc.RPush(context.Background(), key, 1, 2, 3)
	for _, typ := range []string{TypeList, TypeStreams} {
		b.Run(typ, func(b *testing.B) {
			md := map[string]string{"address": localAddr, "listName": key, "stream": key + ":s"}
			if typ == TypeStreams {
				rc.XAdd(context.Background(), &goredis.XAddArgs{Stream: key + ":s", Values: []any{"k", "v"}})
				cleanupKeys(b, rc, key+":s")
			}
			s := build(b, &scalers.TriggerConfig{Type: typ, Metadata: md}, Options{})
			scalertest.BenchmarkSample(b, s)
		})
	}
}

func TestRegister(t *testing.T) {
	r := scalers.NewRegistry()
	Register(r)
	for _, typ := range []string{TypeList, TypeClusterList, TypeSentinelList, TypeStreams, TypeClusterStreams, TypeSentinelStreams} {
		if !r.Has(typ) {
			t.Errorf("registry lacks %q", typ)
		}
	}
	s, err := r.New(context.Background(), scalers.TriggerConfig{Type: TypeList, Metadata: map[string]string{"address": localAddr, "listName": "q"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(scalers.PushScaler); !ok {
		t.Fatal("redis scaler from the registry is not a PushScaler")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.Shared().Len(); n != 0 {
		t.Fatalf("%d shared clients left", n)
	}
}
