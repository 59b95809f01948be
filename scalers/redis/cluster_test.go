package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// listsOn loads keys in several hash slots of a deployment and checks value, activity and drain.
func listsOn(t *testing.T, c goredis.Cmdable, typ string, conn map[string]string) {
	ctx := context.Background()
	for _, tag := range []string{"a", "b", "c", "d"} { // four hash tags spread keys over the cluster's masters
		t.Run("slot-"+tag, func(t *testing.T) {
			key := "{" + tag + "}" + uniqueKey(t, "list")
			cleanupKeys(t, c, key)
			md := map[string]string{"listName": key, "activationListLength": "1"}
			for k, v := range conn {
				md[k] = v
			}
			s := build(t, triggerConfig(t, typ, md), Options{})
			if v, active := sample(t, s); v != 0 || active {
				t.Fatalf("missing key: %v %v", v, active)
			}
			c.RPush(ctx, key, 1, 2, 3)
			if v, active := sample(t, s); v != 3 || !active {
				t.Fatalf("3 items: %v %v, want 3 true", v, active)
			}
			c.Del(ctx, key)
			if v, active := sample(t, s); v != 0 || active {
				t.Fatalf("drained: %v %v", v, active)
			}
		})
	}
}

// TestCluster forms a private 3-master cluster and runs the list, stream and push checks against it.
func TestCluster(t *testing.T) {
	addrs := startCluster(t)
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, DisableIdentity: true})
	defer cc.Close()
	conn := map[string]string{"addresses": strings.Join(addrs, ",")}

	t.Run("lists", func(t *testing.T) { listsOn(t, cc, TypeClusterList, conn) })
	t.Run("streams", func(t *testing.T) { streamsOn(t, cc, TypeClusterStreams, conn) })
	t.Run("hosts and ports", func(t *testing.T) {
		var hosts, ports []string
		for _, a := range addrs {
			h, p, _ := strings.Cut(a, ":")
			hosts, ports = append(hosts, h), append(ports, p)
		}
		listsOn(t, cc, TypeClusterList, map[string]string{"hosts": strings.Join(hosts, ","), "ports": strings.Join(ports, ",")})
	})
	t.Run("push", func(t *testing.T) {
		ctx := context.Background()
		for _, tag := range []string{"a", "b", "c"} {
			t.Run("slot-"+tag, func(t *testing.T) {
				key := "{" + tag + "}" + uniqueKey(t, "list")
				cleanupKeys(t, cc, key)
				owner, err := cc.MasterForKey(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				s := build(t, triggerConfig(t, TypeClusterList, map[string]string{"enableKeyspaceNotifications": "true", "addresses": conn["addresses"], "listName": key}), Options{})
				changed, _ := watching(t, s, owner, keyspace(0, key))
				if flags := notifyFlags(t, owner); !covers(flags, "l") {
					t.Fatalf("owner %s has notify-keyspace-events %q", owner.Options().Addr, flags)
				}
				assertWakeUp(t, changed, func() { cc.LPush(ctx, key, "job") })
				if v, active := sample(t, s); v != 1 || !active {
					t.Fatalf("after LPUSH: %v %v", v, active)
				}
			})
		}
	})
}

// TestSentinel runs a private master with one sentinel and checks lists, streams and push through the sentinel.
func TestSentinel(t *testing.T) {
	st := startSentinel(t, false)
	mc := goredis.NewClient(&goredis.Options{Addr: st.master.addr, DisableIdentity: true})
	defer mc.Close()
	conn := map[string]string{"addresses": st.sentinel, "sentinelMaster": st.name}

	t.Run("lists", func(t *testing.T) { listsOn(t, mc, TypeSentinelList, conn) })
	t.Run("streams", func(t *testing.T) { streamsOn(t, mc, TypeSentinelStreams, conn) })
	t.Run("databaseIndex", func(t *testing.T) {
		db2 := goredis.NewClient(&goredis.Options{Addr: st.master.addr, DB: 2, DisableIdentity: true})
		t.Cleanup(func() { _ = db2.Close() }) // registered before cleanupKeys, so it closes after
		key := uniqueKey(t, "list")
		cleanupKeys(t, db2, key)
		db2.RPush(context.Background(), key, "a", "b")
		s := build(t, triggerConfig(t, TypeSentinelList, map[string]string{"addresses": st.sentinel, "sentinelMaster": st.name, "listName": key, "databaseIndex": "2"}), Options{})
		if v, _ := sample(t, s); v != 2 {
			t.Fatalf("db 2 via sentinel: %v, want 2", v)
		}
	})
	t.Run("push", func(t *testing.T) {
		key := uniqueKey(t, "list")
		cleanupKeys(t, mc, key)
		s := build(t, triggerConfig(t, TypeSentinelList, map[string]string{"enableKeyspaceNotifications": "true", "addresses": st.sentinel, "sentinelMaster": st.name, "listName": key}), Options{})
		changed, _ := watching(t, s, mc, keyspace(0, key))
		assertWakeUp(t, changed, func() { mc.LPush(context.Background(), key, "job") })
	})
	t.Run("unknown master", func(t *testing.T) {
		s := build(t, triggerConfig(t, TypeSentinelList, map[string]string{"addresses": st.sentinel, "sentinelMaster": "nope", "listName": "q"}), Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, _, err := s.Sample(ctx); err == nil || !strings.Contains(err.Error(), "redis-sentinel trigger") {
			t.Fatalf("unknown master: err %v, want a trigger error", err)
		}
	})
}

// TestSentinelFailover: a watch through the sentinel keeps working after the master dies and the replica takes
// over — the new master did not have keyspace notifications on (CONFIG SET is not replicated), and the watch's
// re-check turns them on there.
func TestSentinelFailover(t *testing.T) {
	st := startSentinel(t, true)
	rc := goredis.NewClient(&goredis.Options{Addr: st.replica, DisableIdentity: true})
	defer rc.Close()
	key := uniqueKey(t, "list")
	s := build(t, triggerConfig(t, TypeSentinelList, map[string]string{"enableKeyspaceNotifications": "true", "addresses": st.sentinel, "sentinelMaster": st.name, "listName": key}),
		Options{WatchRecheck: 200 * time.Millisecond})
	mc := goredis.NewClient(&goredis.Options{Addr: st.master.addr, DisableIdentity: true})
	defer mc.Close()
	changed, _ := watching(t, s, mc, keyspace(0, key))
	if f := notifyFlags(t, rc); covers(f, "l") {
		t.Fatalf("replica already has notify-keyspace-events %q; the test needs it off", f)
	}

	t0 := time.Now()
	if err := st.master.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "replica promoted and notifications enabled on it", func() error {
		role, err := rc.Do(context.Background(), "ROLE").Slice()
		if err != nil {
			return err
		}
		if role[0] != "master" {
			return fmt.Errorf("replica role %v", role[0])
		}
		if f := notifyFlags(t, rc); !covers(f, "l") {
			return fmt.Errorf("new master has notify-keyspace-events %q", f)
		}
		return nil
	})
	t.Logf("failover and re-enabled notifications %v after killing the master", time.Since(t0))
	eventually(t, 30*time.Second, "watch subscribed on the new master", func() error {
		n, err := rc.PubSubNumSub(context.Background(), keyspace(0, key)).Result()
		if err != nil || n[keyspace(0, key)] != 1 {
			return fmt.Errorf("numsub %v err %v", n, err)
		}
		return nil
	})
	for drained := false; !drained; { // wake-ups from the failover itself
		select {
		case <-changed:
		default:
			drained = true
		}
	}
	assertWakeUp(t, changed, func() { rc.LPush(context.Background(), key, "job") })
	if v, active := sample(t, s); v != 1 || !active {
		t.Fatalf("after failover and LPUSH: %v %v", v, active)
	}
}

// TestClusterSlotMove moves an empty key's slot to another master: the watch notices at its next re-check and
// subscribes on the new owner, where writes wake it again.
func TestClusterSlotMove(t *testing.T) {
	addrs := startCluster(t)
	ctx := context.Background()
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, DisableIdentity: true})
	defer cc.Close()
	key := "{move}" + uniqueKey(t, "list")
	s := build(t, triggerConfig(t, TypeClusterList, map[string]string{"enableKeyspaceNotifications": "true", "addresses": strings.Join(addrs, ","), "listName": key}),
		Options{WatchRecheck: 200 * time.Millisecond})
	from, err := cc.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	changed, _ := watching(t, s, from, keyspace(0, key))

	slot, err := from.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	var to *goredis.Client
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a, DisableIdentity: true})
		defer c.Close()
		if ids[a], err = c.Do(ctx, "CLUSTER", "MYID").Text(); err != nil {
			t.Fatal(err)
		}
		if a != from.Options().Addr && to == nil {
			to = c
		}
	}
	target, source := ids[to.Options().Addr], ids[from.Options().Addr]
	// As redis-cli --cluster reshard does: IMPORTING on the new owner and MIGRATING on the old (so that the final
	// SETSLOT NODE bumps the new owner's config epoch and gossip carries the move), then NODE on the new owner, the
	// old, and every other master, so no server can hand out the old slot map afterwards.
	setslot := func(c *goredis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, append([]any{"CLUSTER", "SETSLOT", slot}, args...)...).Err(); err != nil {
			t.Fatalf("CLUSTER SETSLOT %v on %s: %v", args, c.Options().Addr, err)
		}
	}
	setslot(to, "IMPORTING", source)
	setslot(from, "MIGRATING", target)
	setslot(to, "NODE", target)
	setslot(from, "NODE", target)
	for _, a := range addrs {
		if a != to.Options().Addr && a != from.Options().Addr {
			c := goredis.NewClient(&goredis.Options{Addr: a, DisableIdentity: true})
			defer c.Close()
			setslot(c, "NODE", target)
		}
	}
	sample(t, s) // a MOVED reply makes go-redis reload the slot map, as any Sample after a resharding would
	eventually(t, 60*time.Second, "watch subscribed on the new owner "+to.Options().Addr, func() error {
		n, err := to.PubSubNumSub(ctx, keyspace(0, key)).Result()
		if err != nil || n[keyspace(0, key)] != 1 {
			return fmt.Errorf("numsub %v err %v", n, err)
		}
		return nil
	})
	for drained := false; !drained; { // the move itself wakes the watch once
		select {
		case <-changed:
		default:
			drained = true
		}
	}
	assertWakeUp(t, changed, func() { cc.LPush(ctx, key, "job") })
}
