package redis

// Private redis-server processes for the cluster and sentinel tests: each test starts its own on free ports in a
// temp dir and kills them at cleanup. The shared server on 127.0.0.1:6379 is used for standalone tests.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tidalscale/tidal/internal/testenv"
)

const localAddr = "127.0.0.1:6379"

// redisServer finds the redis-server binary (the sentinel runs as redis-server --sentinel).
func redisServer(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (%v): run scalers/redis/CI_SETUP.sh", err)
	}
	return p
}

// eventually polls cond until it returns nil or the timeout passes, then fails with the last error.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	testenv.Eventually(t, what, timeout, func() (bool, string) {
		err := cond()
		return err == nil, fmt.Sprint(err)
	})
}

func randSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uniqueKey names a key after the test, with a random suffix so reruns and parallel packages never collide.
func uniqueKey(t testing.TB, kind string) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("tidal-test:%s:%s:%s", kind, name, randSuffix())
}

// freePort finds a port that is free together with port+10000 (a cluster node's bus port).
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return p
	}
	t.Fatal("no free port pair found")
	return 0
}

// startRedis runs a redis-server on a free port until the test ends and returns its address.
func startRedis(t testing.TB, dir string, extra ...string) string {
	t.Helper()
	return startRedisProc(t, dir, extra...).addr
}

func startRedisProc(t testing.TB, dir string, extra ...string) server {
	t.Helper()
	port := freePort(t)
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
	}, extra...)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return runServerWith(t, dir, &goredis.Options{Addr: addr, DisableIdentity: true}, args...)
}

func runServer(t testing.TB, dir string, port int, args ...string) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return runServerWith(t, dir, &goredis.Options{Addr: addr, DisableIdentity: true}, args...).addr
}

// server is a private redis-server process; the test's cleanup kills it.
type server struct {
	addr string
	cmd  *exec.Cmd
}

// runServerWith starts redis-server with args and waits until a client with opts gets a PING answer.
func runServerWith(t testing.TB, dir string, opts *goredis.Options, args ...string) server {
	t.Helper()
	cmd := exec.Command(redisServer(t), args...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := opts.Addr
	c := goredis.NewClient(opts)
	defer c.Close()
	eventually(t, 15*time.Second, "redis-server on "+addr+" answers PING", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	return server{addr: addr, cmd: cmd}
}

// startCluster forms a 3-master cluster of private servers (16384 slots split three ways) and returns the
// nodes' addresses once every node reports cluster_state:ok.
func startCluster(t testing.TB) []string {
	t.Helper()
	dir := t.TempDir()
	addrs := make([]string, 3)
	for i := range addrs {
		port := freePort(t)
		addrs[i] = runServer(t, dir, port,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
			"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port),
			"--cluster-node-timeout", "5000")
	}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	ctx := context.Background()
	clients := make([]*goredis.Client, 3)
	for i, a := range addrs {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: a, DisableIdentity: true})
		defer clients[i].Close()
		if err := clients[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", ranges[i][0], ranges[i][1]).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", a, err)
		}
	}
	for _, a := range addrs[1:] {
		host, port, _ := net.SplitHostPort(a)
		if err := clients[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("CLUSTER MEET %s: %v", a, err)
		}
	}
	for i, c := range clients {
		eventually(t, 30*time.Second, "cluster node "+addrs[i]+" is ok", func() error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return fmt.Errorf("cluster info: %s", strings.Join(strings.Fields(info)[:4], " "))
			}
			return nil
		})
	}
	return addrs
}

// sentinelSetup is a private master, optionally with a replica, watched by one sentinel.
type sentinelSetup struct {
	master   server
	replica  string // "" without one
	sentinel string
	name     string
}

// startSentinel runs a master (and a replica of it when withReplica) and a sentinel monitoring it (redis-server
// --sentinel, since this machine has no separate redis-sentinel binary), and waits until the sentinel knows them.
// The sentinel declares the master down after 1s, so a failover test needs no long waits.
func startSentinel(t testing.TB, withReplica bool) sentinelSetup {
	t.Helper()
	dir := t.TempDir()
	st := sentinelSetup{master: startRedisProc(t, dir), name: "tidal-" + randSuffix()}
	host, mport, _ := net.SplitHostPort(st.master.addr)
	if withReplica {
		st.replica = startRedis(t, dir, "--replicaof", host, mport)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor %s %s %s 1\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\n",
		port, dir, filepath.Join(dir, "sentinel.log"), st.name, host, mport, st.name, st.name)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st.sentinel = runServer(t, dir, port, conf, "--sentinel")
	c := goredis.NewSentinelClient(&goredis.Options{Addr: st.sentinel, DisableIdentity: true})
	defer c.Close()
	eventually(t, 30*time.Second, "sentinel knows master "+st.name, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		addr, err := c.GetMasterAddrByName(ctx, st.name).Result()
		if err != nil {
			return err
		}
		if net.JoinHostPort(addr[0], addr[1]) != st.master.addr {
			return fmt.Errorf("sentinel reports master %v, want %s", addr, st.master.addr)
		}
		if !withReplica {
			return nil
		}
		replicas, err := c.Replicas(ctx, st.name).Result()
		if err != nil {
			return err
		}
		for _, r := range replicas {
			if net.JoinHostPort(r["ip"], r["port"]) == st.replica && !strings.Contains(r["flags"], "down") {
				return nil
			}
		}
		return fmt.Errorf("sentinel has not discovered replica %s yet: %v", st.replica, replicas)
	})
	return st
}
