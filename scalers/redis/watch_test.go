package redis

// Push tests. They change the shared server's notify-keyspace-events and restore it at cleanup, so none of them
// runs in parallel with another.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tidalscale/tidal/scalers"
)

// setNotify sets notify-keyspace-events on a server and puts the old value back at cleanup.
func setNotify(t testing.TB, c goredis.Cmdable, v string) {
	t.Helper()
	ctx := context.Background()
	old, err := c.ConfigGet(ctx, notifyParam).Result()
	if err != nil {
		t.Fatalf("CONFIG GET: %v", err)
	}
	if err := c.ConfigSet(ctx, notifyParam, v).Err(); err != nil {
		t.Fatalf("CONFIG SET: %v", err)
	}
	t.Cleanup(func() { _ = c.ConfigSet(context.Background(), notifyParam, old[notifyParam]).Err() })
}

func notifyFlags(t testing.TB, c goredis.Cmdable) string {
	t.Helper()
	v, err := c.ConfigGet(context.Background(), notifyParam).Result()
	if err != nil {
		t.Fatalf("CONFIG GET: %v", err)
	}
	return v[notifyParam]
}

// watching runs s.Watch until the test ends and returns the wake-up channel once node has a subscriber on the
// key's keyspace channel. It fails if Watch returns early.
func watching(t *testing.T, s scalers.PushScaler, node goredis.Cmdable, channel string) (<-chan struct{}, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() { errc <- s.Watch(ctx, changed) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Watch returned %v after cancel, want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	})
	eventually(t, 15*time.Second, "Watch subscribed to "+channel, func() error {
		select {
		case err := <-errc:
			t.Fatalf("Watch returned early: %v", err)
		default:
		}
		n, err := node.PubSubNumSub(context.Background(), channel).Result()
		if err != nil {
			return err
		}
		if n[channel] < 1 {
			return fmt.Errorf("%d subscribers", n[channel])
		}
		return nil
	})
	return changed, errc
}

// assertWakeUp writes and waits for the wake-up, which must come well before the 60s polling interval. There
// must be none before the write.
func assertWakeUp(t *testing.T, changed <-chan struct{}, write func()) {
	t.Helper()
	select {
	case <-changed:
		t.Fatal("wake-up before any write")
	default:
	}
	t0 := time.Now()
	write()
	select {
	case <-changed:
		t.Logf("push wake-up %v after the write (polling interval 60s)", time.Since(t0))
	case <-time.After(60 * time.Second):
		t.Fatal("no wake-up within the 60s polling interval")
	}
}

func keyspace(db int, key string) string { return fmt.Sprintf("__keyspace@%d__:%s", db, key) }

func TestWatchList(t *testing.T) {
	rc := localClient(t)
	setNotify(t, rc, "")
	key := uniqueKey(t, "list")
	cleanupKeys(t, rc, key)
	s := build(t, triggerConfig(t, TypeList, map[string]string{"enableKeyspaceNotifications": "true", "address": localAddr, "listName": key}), Options{})
	if v, active := sample(t, s); v != 0 || active {
		t.Fatalf("empty list: %v %v", v, active)
	}
	changed, _ := watching(t, s, rc, keyspace(0, key))
	if flags := notifyFlags(t, rc); !covers(flags, "l") {
		t.Fatalf("Watch left notify-keyspace-events %q, want K and l", flags)
	}
	assertWakeUp(t, changed, func() { rc.LPush(context.Background(), key, "job") })
	if v, active := sample(t, s); v != 1 || !active {
		t.Fatalf("after LPUSH: %v %v, want 1 true", v, active)
	}
}

func TestWatchStream(t *testing.T) {
	rc := localClient(t)
	setNotify(t, rc, "")
	db5 := goredis.NewClient(&goredis.Options{Addr: localAddr, DB: 5, DisableIdentity: true})
	t.Cleanup(func() { _ = db5.Close() }) // registered before cleanupKeys, so it closes after
	stream := uniqueKey(t, "stream")
	cleanupKeys(t, db5, stream)
	s := build(t, triggerConfig(t, TypeStreams, map[string]string{"enableKeyspaceNotifications": "true", "address": localAddr, "stream": stream, "databaseIndex": "5"}), Options{})
	changed, _ := watching(t, s, rc, keyspace(5, stream))
	if flags := notifyFlags(t, rc); !covers(flags, "t") {
		t.Fatalf("Watch left notify-keyspace-events %q, want K and t", flags)
	}
	assertWakeUp(t, changed, func() { xadd(t, db5, stream, 1) })
	if v, active := sample(t, s); v != 1 || !active {
		t.Fatalf("after XADD: %v %v, want 1 true", v, active)
	}
}

// TestWatchKeepsOtherFlags checks enabling adds to the flags already on instead of replacing them.
func TestWatchKeepsOtherFlags(t *testing.T) {
	rc := localClient(t)
	setNotify(t, rc, "Ex")
	key := uniqueKey(t, "list")
	s := build(t, triggerConfig(t, TypeList, map[string]string{"enableKeyspaceNotifications": "true", "address": localAddr, "listName": key}), Options{})
	watching(t, s, rc, keyspace(0, key))
	flags := notifyFlags(t, rc)
	for _, c := range "ExKl" {
		if !strings.ContainsRune(flags, c) {
			t.Fatalf("notify-keyspace-events %q lost or lacks %q", flags, c)
		}
	}
}

// TestWatchReenables: a server that loses the setting (restart, failover, an operator's CONFIG SET) gets it back
// at the next re-check, and the watch keeps working.
func TestWatchReenables(t *testing.T) {
	rc := localClient(t)
	setNotify(t, rc, "")
	key := uniqueKey(t, "list")
	cleanupKeys(t, rc, key)
	s := build(t, triggerConfig(t, TypeList, map[string]string{"enableKeyspaceNotifications": "true", "address": localAddr, "listName": key}), Options{WatchRecheck: 200 * time.Millisecond})
	changed, _ := watching(t, s, rc, keyspace(0, key))
	if err := rc.ConfigSet(context.Background(), notifyParam, "").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "notifications re-enabled", func() error {
		if f := notifyFlags(t, rc); !covers(f, "l") {
			return fmt.Errorf("flags %q", f)
		}
		return nil
	})
	select { // re-enabling says "something may have changed"
	case <-changed:
	case <-time.After(15 * time.Second):
		t.Fatal("no wake-up after re-enabling notifications")
	}
	assertWakeUp(t, changed, func() { rc.RPush(context.Background(), key, "job") })
}

// TestWatchFallsBack: with notifications off and CONFIG refused by ACL, Watch returns an error so the caller keeps
// polling, and says why.
func TestWatchFallsBack(t *testing.T) {
	rc := localClient(t)
	setNotify(t, rc, "")
	const pw = "no-config-for-you"
	user := aclUser(t, rc, pw, "+@all", "-config")
	key := uniqueKey(t, "list")
	cfg := triggerConfig(t, TypeList, map[string]string{"enableKeyspaceNotifications": "true", "address": localAddr, "listName": key, "username": user})
	cfg.AuthParams = map[string]string{"password": pw}
	s := build(t, cfg, Options{})
	if v, _ := sample(t, s); v != 0 { // polling still works for this user
		t.Fatalf("value %v", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Watch(ctx, make(chan struct{}, 1))
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Watch = %v (ctx %v), want an early error", err, ctx.Err())
	}
	if msg := err.Error(); !strings.Contains(msg, `redis trigger "orders"`) || !strings.Contains(msg, notifyParam) || strings.Contains(msg, pw) {
		t.Fatalf("error %q should name the trigger and %s, without the password", msg, notifyParam)
	}
	t.Logf("fallback error: %v", err)
}

func TestCovers(t *testing.T) {
	cases := []struct {
		name, flags, classes string
		want                 bool
		merged               string
	}{
		{"off", "", "l", false, "Kl"},
		{"keyevent only", "El", "l", false, "ElK"},
		{"K and l", "Kl", "l", true, "Kl"},
		{"A covers streams", "AK", "t", true, "AK"},
		{"A without K", "AE", "t", false, "AEK"},
		{"g is not l", "Kg", "l", false, "Kgl"},
		{"set needs s too", "Kl", "ls", false, "Kls"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := covers(tc.flags, tc.classes); got != tc.want {
				t.Errorf("covers(%q, %q) = %v", tc.flags, tc.classes, got)
			}
			if got := mergeFlags(tc.flags, tc.classes); got != tc.merged {
				t.Errorf("mergeFlags(%q, %q) = %q, want %q", tc.flags, tc.classes, got, tc.merged)
			}
		})
	}
}

func pubsubClients(t testing.TB, c *goredis.Client) int {
	t.Helper()
	out, err := c.Do(context.Background(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	return strings.Count(out, "\n")
}

// TestWatchSharesOneConnection: forty watches through one shared client use one subscriber connection; each
// wakes only for its own key; the connection goes away with the last watch.
func TestWatchSharesOneConnection(t *testing.T) {
	rc := localClient(t)
	setNotify(t, rc, "")
	before := pubsubClients(t, rc)
	shared := scalers.NewShared()
	const n = 40
	keys := make([]string, n)
	wakes := make([]chan struct{}, n)
	cancels := make([]context.CancelFunc, n)
	done := make(chan error, n)
	for i := range keys {
		keys[i] = uniqueKey(t, "list")
		if i == n-1 {
			keys[i] = keys[0] // two watches on one key
		}
		cleanupKeys(t, rc, keys[i])
		cfg := triggerConfig(t, TypeList, map[string]string{"enableKeyspaceNotifications": "true", "address": localAddr, "listName": keys[i]})
		cfg.Shared = shared
		s := build(t, cfg, Options{})
		wakes[i] = make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		go func(i int) { done <- s.Watch(ctx, wakes[i]) }(i)
	}
	if shared.Len() != 1 {
		t.Fatalf("%d shared clients, want 1", shared.Len())
	}
	eventually(t, 15*time.Second, "every key has its subscriber", func() error {
		for _, k := range keys {
			got, err := rc.PubSubNumSub(context.Background(), keyspace(0, k)).Result()
			if err != nil {
				return err
			}
			if got[keyspace(0, k)] != 1 {
				return fmt.Errorf("%s has %d subscribers, want 1 (shared)", k, got[keyspace(0, k)])
			}
		}
		return nil
	})
	if got := pubsubClients(t, rc) - before; got != 1 {
		t.Fatalf("%d new subscriber connections for %d watches, want 1", got, n)
	}

	rc.LPush(context.Background(), keys[5], "job")
	select {
	case <-wakes[5]:
	case <-time.After(60 * time.Second):
		t.Fatal("watch of the written key did not wake")
	}
	rc.LPush(context.Background(), keys[0], "job")
	for _, i := range []int{0, n - 1} {
		select {
		case <-wakes[i]:
		case <-time.After(60 * time.Second):
			t.Fatalf("watch %d of the shared key did not wake", i)
		}
	}
	for i := 1; i < n-1; i++ {
		select {
		case <-wakes[i]:
			t.Fatalf("watch %d woke for another key", i)
		default:
		}
	}

	cancels[0]() // the other watch of keys[0] keeps its subscription
	if err := <-done; err != nil {
		t.Fatalf("Watch: %v", err)
	}
	rc.LPush(context.Background(), keys[0], "job")
	select {
	case <-wakes[n-1]:
	case <-time.After(60 * time.Second):
		t.Fatal("remaining watch of the shared key did not wake after the other left")
	}
	for _, c := range cancels[1:] {
		c()
	}
	for i := 1; i < n; i++ {
		if err := <-done; err != nil {
			t.Fatalf("Watch: %v", err)
		}
	}
	eventually(t, 15*time.Second, "subscriber connection closed with the last watch", func() error {
		if got := pubsubClients(t, rc) - before; got != 0 {
			return fmt.Errorf("%d subscriber connections left", got)
		}
		return nil
	})
}

// TestWatchSurvivesReconnect kills the subscriber connection on a private server: go-redis reconnects and
// subscribes again, the hub reports a possible change, and later writes still wake the watch.
func TestWatchSurvivesReconnect(t *testing.T) {
	addr := startRedis(t, t.TempDir())
	pc := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
	defer pc.Close()
	key := uniqueKey(t, "list")
	s := build(t, triggerConfig(t, TypeList, map[string]string{"enableKeyspaceNotifications": "true", "address": addr, "listName": key}), Options{})
	changed, _ := watching(t, s, pc, keyspace(0, key))
	if err := pc.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("no wake-up after the subscriber connection was re-established")
	}
	eventually(t, 15*time.Second, "subscribed again", func() error {
		n, err := pc.PubSubNumSub(context.Background(), keyspace(0, key)).Result()
		if err != nil || n[keyspace(0, key)] != 1 {
			return fmt.Errorf("numsub %v err %v", n, err)
		}
		return nil
	})
	assertWakeUp(t, changed, func() { pc.LPush(context.Background(), key, "job") })
}

// TestWatchDefaultNeverChangesServer: without enableKeyspaceNotifications a trigger whose server publishes no
// keyspace events does not touch the server: Watch says why and returns, and the caller polls.
func TestWatchDefaultNeverChangesServer(t *testing.T) {
	rc := localClient(t)
	setNotify(t, rc, "Ex")
	before := notifyFlags(t, rc)
	key := uniqueKey(t, "list")
	s := build(t, triggerConfig(t, TypeList, map[string]string{"address": localAddr, "listName": key}), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Watch(ctx, make(chan struct{}, 1))
	if !errors.Is(err, errNotificationsOff) || ctx.Err() != nil {
		t.Fatalf("Watch = %v, want errNotificationsOff before the deadline", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `redis trigger "orders"`) || !strings.Contains(msg, "enableKeyspaceNotifications") {
		t.Fatalf("error %q should name the trigger and the opt-in", msg)
	}
	if flags := notifyFlags(t, rc); flags != before {
		t.Fatalf("notify-keyspace-events changed from %q to %q without the opt-in", before, flags)
	}
}

// TestWatchDefaultUsesServerNotifications: when the server already publishes what a watch needs, the default
// trigger subscribes (push works) and leaves the setting exactly as it was; when someone turns the events off
// later, the watch ends (the caller polls) instead of turning them back on.
func TestWatchDefaultUsesServerNotifications(t *testing.T) {
	rc := localClient(t)
	setNotify(t, rc, "Klgx") // what a list watch needs: pushes, DEL, expiry
	before := notifyFlags(t, rc)
	key := uniqueKey(t, "list")
	cleanupKeys(t, rc, key)
	s := build(t, triggerConfig(t, TypeList, map[string]string{"address": localAddr, "listName": key}), Options{WatchRecheck: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed, errc := make(chan struct{}, 1), make(chan error, 1)
	go func() { errc <- s.Watch(ctx, changed) }()
	channel := keyspace(0, key)
	eventually(t, 15*time.Second, "Watch subscribed to "+channel, func() error {
		n, err := rc.PubSubNumSub(ctx, channel).Result()
		if err != nil {
			return err
		}
		if n[channel] < 1 {
			return fmt.Errorf("%d subscribers", n[channel])
		}
		return nil
	})
	assertWakeUp(t, changed, func() { rc.LPush(context.Background(), key, "job") })
	if flags := notifyFlags(t, rc); flags != before {
		t.Fatalf("notify-keyspace-events changed from %q to %q", before, flags)
	}
	if err := rc.ConfigSet(context.Background(), notifyParam, "").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, errNotificationsOff) {
			t.Fatalf("Watch ended with %v, want errNotificationsOff", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Watch kept running after notifications were turned off")
	}
	if flags := notifyFlags(t, rc); flags != "" {
		t.Fatalf("the default trigger re-enabled notifications: %q", flags)
	}
}

// TestWatchOptOut: enableKeyspaceNotifications "false" builds a scaler that cannot push at all.
func TestWatchOptOut(t *testing.T) {
	s, err := NewWithOptions(context.Background(), triggerConfig(t, TypeList,
		map[string]string{"address": localAddr, "listName": "q", "enableKeyspaceNotifications": "false"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if _, ok := s.(scalers.PushScaler); ok {
		t.Fatal("a trigger with enableKeyspaceNotifications false is a PushScaler")
	}
	if v, _ := sample(t, s); v != 0 {
		t.Fatalf("polling: value %v", v)
	}
}
