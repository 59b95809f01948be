package nats

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

// natsCluster is a three-server JetStream cluster this test started. Server i (1..3) listens on 127.0.0.i with the
// same client and monitoring ports on every address, as pods behind a headless service do, which is what the
// monitoring endpoint's leader discovery relies on.
type natsCluster struct {
	clientPort, monitorPort int
}

func (c *natsCluster) url(i int) string {
	return fmt.Sprintf("nats://127.0.0.%d:%d", i, c.clientPort)
}

func (c *natsCluster) monitoring(i int) string {
	return net.JoinHostPort(fmt.Sprintf("127.0.0.%d", i), strconv.Itoa(c.monitorPort))
}

// node maps a server name ("node2") to its index.
func (c *natsCluster) node(name string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "node"))
	return i
}

func startCluster(t *testing.T) *natsCluster {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	c := &natsCluster{clientPort: freePort(t), monitorPort: freePort(t)}
	routePort := freePort(t)
	var routes []string
	for i := 1; i <= 3; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.%d:%d", i, routePort))
	}
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("127.0.0.%d", i)
		cmd := exec.Command(bin, "-a", host, "-p", strconv.Itoa(c.clientPort), "-m", strconv.Itoa(c.monitorPort),
			"-n", fmt.Sprintf("node%d", i), "--cluster_name", "tidal", "--cluster", routes[i-1],
			"--routes", strings.Join(routes, ","), "-js", "-sd", t.TempDir())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	// Ready when JetStream answers through the meta leader.
	nc, err := natsgo.Connect(c.url(1), natsgo.RetryOnFailedConnect(true), natsgo.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for deadline := time.Now().Add(60 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func consumerLeader(t *testing.T, f *fixture) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ci, err := f.cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Cluster == nil || ci.Cluster.Leader == "" {
		t.Fatal("consumer has no cluster leader")
	}
	return ci.Cluster.Leader
}

// TestMonitoringEndpointCluster points natsServerMonitoringEndpoint at a follower: the scaler must find the
// consumer leader, whose numbers are current, and agree with the JetStream API reader; after a leader change it
// must find the new one.
func TestMonitoringEndpointCluster(t *testing.T) {
	t.Parallel()
	cl := startCluster(t)
	f := newReplicatedFixture(t, cl.url(1), 3)
	f.publish(t, f.subject, 7)
	msgs := f.fetch(t, 3)
	ackAll(t, msgs[:1]) // lag = 4 pending + 2 ack pending

	leader := cl.node(consumerLeader(t, f))
	follower := leader%3 + 1
	viaHTTP := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServerMonitoringEndpoint": cl.monitoring(follower), "account": "$G", "stream": f.stream, "consumer": f.consumer}})
	viaAPI := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServer": cl.url(follower), "stream": f.stream, "consumer": f.consumer}})
	if v, _ := sample(t, viaAPI); v != 6 {
		t.Fatalf("JetStream API lag = %v, want 6", v)
	}
	if v, active := sample(t, viaHTTP); v != 6 || !active {
		t.Fatalf("monitoring lag via follower node%d (leader node%d) = %v/%v, want 6/true", follower, leader, v, active)
	}
	mr := viaHTTP.reader.(*monitorReader)
	if want := cl.monitoring(leader); !strings.Contains(mr.leaderURL, want) {
		t.Fatalf("remembered leader %q, want node%d at %s", mr.leaderURL, leader, want)
	}

	// Move the consumer leader; the remembered one becomes a follower and must be dropped.
	nc, err := natsgo.Connect(cl.url(1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	newLeader := leader
	for deadline := time.Now().Add(60 * time.Second); newLeader == leader; {
		if time.Now().After(deadline) {
			t.Fatal("consumer leader did not move")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.LEADER.STEPDOWN."+f.stream+"."+f.consumer, nil); err != nil {
			t.Logf("stepdown: %v (retrying)", err)
		}
		cancel()
		time.Sleep(500 * time.Millisecond)
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		if ci, err := f.cons.Info(ctx); err == nil && ci.Cluster != nil && ci.Cluster.Leader != "" {
			newLeader = cl.node(ci.Cluster.Leader)
		}
		cancel()
	}
	ackAll(t, msgs[1:]) // lag = 4
	for deadline := time.Now().Add(30 * time.Second); ; {
		v, _ := sample(t, viaHTTP)
		// A leader that is the configured endpoint itself needs no remembering.
		wantURL := cl.monitoring(newLeader)
		if newLeader == follower {
			wantURL = ""
		}
		if v == 4 && (wantURL == "" && mr.leaderURL == "" || wantURL != "" && strings.Contains(mr.leaderURL, wantURL)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after stepdown to node%d: lag=%v leader=%q, want 4 from the new leader", newLeader, v, mr.leaderURL)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMonitoringEndpointClusterR1 reads a single-replica stream through the monitoring endpoint of a server that
// does not hold it.
func TestMonitoringEndpointClusterR1(t *testing.T) {
	t.Parallel()
	cl := startCluster(t)
	f := newReplicatedFixture(t, cl.url(1), 1)
	home := cl.node(consumerLeader(t, f))
	other := home%3 + 1
	f.publish(t, f.subject, 3)
	s := newScaler(t, scalertest.Trigger{MD: map[string]string{"natsServerMonitoringEndpoint": cl.monitoring(other), "account": "$G", "stream": f.stream, "consumer": f.consumer}})
	if v, active := sample(t, s); v != 3 || !active {
		t.Fatalf("R1 stream on node%d read via node%d: lag=%v active=%v, want 3/true", home, other, v, active)
	}
	if mr := s.reader.(*monitorReader); !strings.Contains(mr.leaderURL, cl.monitoring(home)) {
		t.Fatalf("remembered %q, want node%d's endpoint", mr.leaderURL, home)
	}
}

// newReplicatedFixture is newFixture with a file-stored stream of the given replica count.
func newReplicatedFixture(t *testing.T, url string, replicas int) *fixture {
	t.Helper()
	js := connect(t, url)
	name := unique(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Replicas: replicas})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	// A freshly created clustered stream may not be known to every server yet: retry.
	for {
		cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
		if err == nil {
			return &fixture{js: js, stream: name, consumer: "worker", subject: name + ".work", cons: cons}
		}
		if ctx.Err() != nil {
			t.Fatalf("create consumer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
