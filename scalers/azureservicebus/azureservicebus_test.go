package azureservicebus

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// The Service Bus administration API cannot run here, so these tests run the SDK's admin client against an
// in-process server that speaks its wire format, as Microsoft's REST reference documents it (Get Queue, Get
// Subscription, list $Resources/Queues and <topic>/Subscriptions): HTTPS only, ATOM XML entries with a
// QueueDescription or SubscriptionDescription whose CountDetails carry the counts, the empty "Publicly Listed
// Services" feed for a missing entity, $skip/$top paging of 100 entries, and SharedAccessSignature
// authorization (HMAC-SHA256 of the URL-encoded resource URI and expiry, checked with the namespace's key).
// The server's CA reaches the SDK through SSL_CERT_FILE, which TestMain sets before any TLS connection, so the
// scaler runs exactly as in production.

const (
	keyName = "RootManageSharedAccessKey"
	key     = "c2VjcmV0LXNlcnZpY2UtYnVzLWtleS1zZWNyZXQ="
)

var fake *serviceBus

func TestMain(m *testing.M) {
	os.Exit(func() int {
		fake = newServiceBus()
		defer fake.srv.Close()
		dir, err := os.MkdirTemp("", "sbfake")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		ca := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(ca, fake.caPEM, 0o600); err != nil {
			panic(err)
		}
		os.Setenv("SSL_CERT_FILE", ca)
		return m.Run()
	}())
}

// serviceBus is one namespace: queues and topics' subscriptions with their active-message counts.
type serviceBus struct {
	srv    *httptest.Server
	caPEM  []byte
	host   string
	mu     sync.Mutex
	counts map[string]int32 // "queue" or "topic/Subscriptions/sub"
	dead   map[string]int32 // dead-letter counts, same keys (1 when unset)
	calls  atomic.Int64
}

func newServiceBus() *serviceBus {
	sb := &serviceBus{counts: map[string]int32{}, dead: map[string]int32{}}
	sb.srv = httptest.NewUnstartedServer(http.HandlerFunc(sb.serve))
	sb.srv.StartTLS()
	sb.host = sb.srv.Listener.Addr().String()
	sb.caPEM = pemCert(sb.srv.Certificate().Raw)
	return sb
}

func pemCert(der []byte) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + wrap(base64.StdEncoding.EncodeToString(der)) + "-----END CERTIFICATE-----\n")
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s + "\n"
}

func (sb *serviceBus) set(entity string, n int32) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.counts[entity] = n
}

// setDead sets an entity's dead-letter count.
func (sb *serviceBus) setDead(entity string, n int32) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.dead[entity] = n
}

// deadOf is an entity's dead-letter count (1 when never set); sb.mu held.
func (sb *serviceBus) deadOf(entity string) int32 {
	if n, ok := sb.dead[entity]; ok {
		return n
	}
	return 1
}

func (sb *serviceBus) connectionString(k string) string {
	return fmt.Sprintf("Endpoint=sb://%s/;SharedAccessKeyName=%s;SharedAccessKey=%s", sb.host, keyName, k)
}

// authorized checks the SharedAccessSignature the way the service does.
func (sb *serviceBus) authorized(r *http.Request) bool {
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "SharedAccessSignature ")
	if !ok {
		return false
	}
	f := map[string]string{}
	for _, kv := range strings.Split(h, "&") {
		k, v, _ := strings.Cut(kv, "=")
		f[k] = v
	}
	se, err := strconv.ParseInt(f["se"], 10, 64)
	if err != nil || time.Unix(se, 0).Before(time.Now()) || f["skn"] != keyName {
		return false
	}
	resource, err := url.QueryUnescape(f["sr"])
	if err != nil || !strings.HasPrefix(strings.ToLower("https://"+sb.host+r.URL.RequestURI()), strings.TrimSuffix(resource, "/")) {
		return false
	}
	sig, err := url.QueryUnescape(f["sig"])
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(f["sr"] + "\n" + f["se"]))
	return hmac.Equal([]byte(sig), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil))))
}

func (sb *serviceBus) serve(w http.ResponseWriter, r *http.Request) {
	sb.calls.Add(1)
	if r.URL.Query().Get("api-version") == "" {
		http.Error(w, "api-version is required", http.StatusBadRequest)
		return
	}
	if !sb.authorized(r) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `<Error><Code>401</Code><Detail>InvalidSignature: The token has an invalid signature.</Detail></Error>`)
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml;type=feed;charset=utf-8")
	path := strings.TrimPrefix(r.URL.Path, "/")
	sb.mu.Lock()
	defer sb.mu.Unlock()
	switch {
	case strings.EqualFold(path, "$Resources/Queues"):
		var names []string
		for e := range sb.counts {
			if !strings.Contains(e, "/") {
				names = append(names, e)
			}
		}
		sb.feed(w, r, names, "")
	case strings.HasSuffix(path, "/Subscriptions"):
		topic := strings.TrimSuffix(path, "/Subscriptions")
		var names []string
		for e := range sb.counts {
			if t, sub, ok := strings.Cut(e, "/Subscriptions/"); ok && t == topic {
				names = append(names, sub)
			}
		}
		sb.feed(w, r, names, topic)
	default:
		n, ok := sb.counts[path]
		if !ok {
			fmt.Fprintf(w, `<feed xmlns="http://www.w3.org/2005/Atom"><title type="text">Publicly Listed Services</title><id>uuid:%d</id><updated>%s</updated></feed>`,
				time.Now().UnixNano(), time.Now().UTC().Format(time.RFC3339))
			return
		}
		w.Header().Set("Content-Type", "application/atom+xml;type=entry;charset=utf-8")
		topic, sub, isSub := strings.Cut(path, "/Subscriptions/")
		if isSub {
			fmt.Fprint(w, sb.entry(sub, topic, n, sb.deadOf(path)))
		} else {
			fmt.Fprint(w, sb.entry(path, "", n, sb.deadOf(path)))
		}
	}
}

// feed writes one page ($skip, $top; 100 by default) of queue or subscription entries, sorted by name.
func (sb *serviceBus) feed(w http.ResponseWriter, r *http.Request, names []string, topic string) {
	sort.Strings(names)
	skip, _ := strconv.Atoi(r.URL.Query().Get("$skip"))
	top := 100
	if t, err := strconv.Atoi(r.URL.Query().Get("$top")); err == nil {
		top = t
	}
	names = names[min(skip, len(names)):]
	names = names[:min(top, len(names))]
	fmt.Fprintf(w, `<feed xmlns="http://www.w3.org/2005/Atom"><title type="text">%s</title><id>https://%s/%s</id><updated>%s</updated>`,
		map[bool]string{true: "Subscriptions", false: "Queues"}[topic != ""], sb.host, r.URL.Path, time.Now().UTC().Format(time.RFC3339))
	for _, n := range names {
		e := n
		if topic != "" {
			e = topic + "/Subscriptions/" + n
		}
		fmt.Fprint(w, sb.entry(n, topic, sb.counts[e], sb.deadOf(e)))
	}
	fmt.Fprint(w, `</feed>`)
}

// entry is one ATOM entry: a QueueDescription, or a SubscriptionDescription when topic is set.
func (sb *serviceBus) entry(name, topic string, active, dead int32) string {
	now := time.Now().UTC().Format("2006-01-02T15:04:05.9999999Z")
	kind, extra := "QueueDescription", "<LockDuration>PT1M</LockDuration><MaxSizeInMegabytes>1024</MaxSizeInMegabytes><SizeInBytes>"+strconv.Itoa(int(active)*128)+"</SizeInBytes>"
	if topic != "" {
		kind, extra = "SubscriptionDescription", "<LockDuration>PT1M</LockDuration><RequiresSession>false</RequiresSession>"
	}
	return fmt.Sprintf(`<entry xmlns="http://www.w3.org/2005/Atom"><id>https://%[1]s/%[2]s?api-version=2021-05</id><title type="text">%[2]s</title><published>%[3]s</published><updated>%[3]s</updated><link rel="self" href="https://%[1]s/%[2]s?api-version=2021-05"/><content type="application/xml"><%[4]s xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">%[5]s<MessageCount>%[6]d</MessageCount><CreatedAt>%[3]s</CreatedAt><UpdatedAt>%[3]s</UpdatedAt><AccessedAt>%[3]s</AccessedAt><CountDetails xmlns:d2p1="http://schemas.microsoft.com/netservices/2011/06/servicebus"><d2p1:ActiveMessageCount>%[6]d</d2p1:ActiveMessageCount><d2p1:DeadLetterMessageCount>%[7]d</d2p1:DeadLetterMessageCount><d2p1:ScheduledMessageCount>2</d2p1:ScheduledMessageCount><d2p1:TransferMessageCount>0</d2p1:TransferMessageCount><d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount></CountDetails><Status>Active</Status></%[4]s></content></entry>`,
		sb.host, name, now, kind, extra, active, dead)
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	conn := fake.connectionString(key)
	auth := map[string]string{"connection": conn}
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "queue defaults", MD: map[string]string{"queueName": "orders"}, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.MessageCount != 5 || m.ActivationMessageCount != 0 || m.Operation != "sum" || m.UseRegex || m.pattern != nil || m.MessageCountType != "active" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "KEDA's old queueLength name", MD: map[string]string{"queueName": "orders", "queueLength": "7"}, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.MessageCount != 7 {
				t.Errorf("messageCount = %d, want 7", m.MessageCount)
			}
		}},
		{Name: "topic and subscription, regex", MD: map[string]string{"topicName": "t", "subscriptionName": "sub-.*", "useRegex": "true", "operation": "max"}, Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if m.pattern == nil || !m.pattern.MatchString("sub-1") || m.pattern.MatchString("xsub-1") {
					t.Errorf("pattern = %v: want it anchored on both ends", m.pattern)
				}
			}},
		{Name: "connectionFromEnv", MD: map[string]string{"queueName": "q", "connectionFromEnv": "SB"}, Env: map[string]string{"SB": conn},
			Check: func(t *testing.T, m Metadata) {
				if m.Connection != conn {
					t.Errorf("connection not read from the environment")
				}
			}},
		{Name: "namespace on the public cloud", MD: map[string]string{"queueName": "q", "namespace": "ns"}, Check: func(t *testing.T, m Metadata) {
			if m.fqdn != "ns.servicebus.windows.net" {
				t.Errorf("fqdn = %q", m.fqdn)
			}
		}},
		{Name: "namespace on a named cloud", MD: map[string]string{"queueName": "q", "namespace": "ns", "cloud": "AzureUSGovernmentCloud"}, Check: func(t *testing.T, m Metadata) {
			if m.fqdn != "ns.servicebus.usgovcloudapi.net" {
				t.Errorf("fqdn = %q", m.fqdn)
			}
		}},
		{Name: "namespace on a private cloud", MD: map[string]string{"queueName": "q", "namespace": "ns", "cloud": "Private", "endpointSuffix": "sb.airgap.example"}, Check: func(t *testing.T, m Metadata) {
			if m.fqdn != "ns.sb.airgap.example" {
				t.Errorf("fqdn = %q", m.fqdn)
			}
		}},
		{Name: "neither queue nor topic", MD: map[string]string{}, Auth: auth, WantErr: "queueName: required"},
		{Name: "queue and topic", MD: map[string]string{"queueName": "q", "topicName": "t", "subscriptionName": "s"}, Auth: auth, WantErr: "not both"},
		{Name: "topic without subscription", MD: map[string]string{"topicName": "t"}, Auth: auth, WantErr: "subscriptionName: required"},
		{Name: "bad regex", MD: map[string]string{"queueName": "q(", "useRegex": "true"}, Auth: auth, WantErr: "queueName: not a regular expression"},
		{Name: "unknown messageCountType", MD: map[string]string{"queueName": "q", "messageCountType": "scheduled"}, Auth: auth, WantErr: "messageCountType"},
		{Name: "unknown operation", MD: map[string]string{"queueName": "q", "operation": "median"}, Auth: auth, WantErr: "operation"},
		{Name: "zero messageCount", MD: map[string]string{"queueName": "q", "messageCount": "0"}, Auth: auth, WantErr: "messageCount"},
		{Name: "negative activationMessageCount", MD: map[string]string{"queueName": "q", "activationMessageCount": "-1"}, Auth: auth, WantErr: "activationMessageCount"},
		{Name: "no connection nor namespace", MD: map[string]string{"queueName": "q"}, WantErr: "connection: missing"},
		{Name: "not a connection string", MD: map[string]string{"queueName": "q"}, Auth: map[string]string{"connection": key}, WantErr: "connection: want a Service Bus connection string"},
		{Name: "unknown cloud", MD: map[string]string{"queueName": "q", "namespace": "ns", "cloud": "Mars"}, WantErr: "cloud"},
		{Name: "private cloud without suffix", MD: map[string]string{"queueName": "q", "namespace": "ns", "cloud": "Private"}, WantErr: "endpointSuffix"},
		{Name: "namespace that is a URL", MD: map[string]string{"queueName": "q", "namespace": "sb://ns.servicebus.windows.net"}, WantErr: "namespace"},
	}, key)
}

var seq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

func newScaler(tb testing.TB, md map[string]string, k string) *Scaler {
	tb.Helper()
	return scalertest.New[*Scaler](tb, New, &scalers.TriggerConfig{Type: TriggerType, Metadata: md, AuthParams: map[string]string{"connection": fake.connectionString(k)}, Shared: scalers.NewShared()})
}

func TestQueue(t *testing.T) {
	t.Parallel()
	q := unique("orders-")
	fake.set(q, 0)
	s := newScaler(t, map[string]string{"queueName": q, "messageCount": "10", "activationMessageCount": "3"}, key)
	if specs := s.MetricSpecs(); len(specs) != 1 || specs[0].External.Metric.Name != "s0-azure-servicebus-"+q ||
		specs[0].External.Target.AverageValue.Value() != 10 {
		t.Fatalf("MetricSpecs = %+v", specs)
	}
	for _, st := range []struct {
		active     int32
		wantActive bool
	}{{0, false}, {3, false}, {4, true}, {250, true}} {
		fake.set(q, st.active)
		v, active := scalertest.Sample(t, s, s.MetricName())
		if v != float64(st.active) || active != st.wantActive {
			t.Fatalf("%d active messages: Sample = (%v, %v), want (%d, %v)", st.active, v, active, st.active, st.wantActive)
		}
	}
}

func TestSubscription(t *testing.T) {
	t.Parallel()
	topic := unique("events-")
	fake.set(topic+"/Subscriptions/billing", 42)
	fake.set(topic+"/Subscriptions/audit", 7)
	s := newScaler(t, map[string]string{"topicName": topic, "subscriptionName": "billing"}, key)
	if v, active := scalertest.Sample(t, s, "s0-azure-servicebus-"+topic+"-billing"); v != 42 || !active {
		t.Fatalf("Sample = (%v, %v), want the subscription's 42 active messages (not the topic's or a sibling's)", v, active)
	}
}

// messageCountType picks the active, dead-letter or combined count of a queue, a subscription and a regex match,
// and activation follows the chosen count.
func TestMessageCountType(t *testing.T) {
	t.Parallel()
	q := unique("dlq-")
	fake.set(q, 5)
	fake.setDead(q, 3)
	topic := unique("dlqtopic-")
	sub := topic + "/Subscriptions/billing"
	fake.set(sub, 2)
	fake.setDead(sub, 40)
	for _, c := range []struct {
		countType    string
		queue, subsc float64
	}{{"active", 5, 2}, {"deadLetter", 3, 40}, {"activeAndDeadLetter", 8, 42}} {
		s := newScaler(t, map[string]string{"queueName": q, "messageCountType": c.countType, "activationMessageCount": "4"}, key)
		if v, active := scalertest.Sample(t, s, s.MetricName()); v != c.queue || active != (c.queue > 4) {
			t.Errorf("%s, queue: Sample = (%v, %v), want (%v, %v)", c.countType, v, active, c.queue, c.queue > 4)
		}
		s = newScaler(t, map[string]string{"topicName": topic, "subscriptionName": "billing", "messageCountType": c.countType}, key)
		if v, _ := scalertest.Sample(t, s, s.MetricName()); v != c.subsc {
			t.Errorf("%s, subscription: Sample = %v, want %v", c.countType, v, c.subsc)
		}
		s = newScaler(t, map[string]string{"topicName": topic, "subscriptionName": "bill.*", "useRegex": "true", "messageCountType": c.countType}, key)
		if v, _ := scalertest.Sample(t, s, ""); v != c.subsc {
			t.Errorf("%s, subscriptions by regex: Sample = %v, want %v", c.countType, v, c.subsc)
		}
	}
}

// TestRegex is not parallel: listing pages by $skip, so queues other tests create between two pages would shift
// the pages (as on the real service).
func TestRegex(t *testing.T) {
	prefix := unique("rx")
	// 120 queues (more than one page of 100) of which 105 match, with 1..105 messages; 15 others with 1,000 each.
	sum, max := int64(0), int64(0)
	for i := 1; i <= 105; i++ {
		fake.set(fmt.Sprintf("%s-work-%03d", prefix, i), int32(i))
		sum += int64(i)
		max = int64(i)
	}
	for i := 0; i < 15; i++ {
		fake.set(fmt.Sprintf("%s-other-%d", prefix, i), 1000)
	}
	for op, want := range map[string]int64{"sum": sum, "max": max, "avg": sum / 105} {
		s := newScaler(t, map[string]string{"queueName": prefix + "-work-.*", "useRegex": "true", "operation": op}, key)
		if v, _ := scalertest.Sample(t, s, ""); v != float64(want) {
			t.Errorf("operation %s over 105 matching queues = %v, want %d", op, v, want)
		}
	}
	topic := unique("rxtopic-")
	fake.set(topic+"/Subscriptions/a-1", 5)
	fake.set(topic+"/Subscriptions/a-2", 9)
	fake.set(topic+"/Subscriptions/b-1", 100)
	s := newScaler(t, map[string]string{"topicName": topic, "subscriptionName": "a-.", "useRegex": "true"}, key)
	if v, _ := scalertest.Sample(t, s, ""); v != 14 {
		t.Errorf("subscriptions matching a-. summed to %v, want 14", v)
	}
	none := newScaler(t, map[string]string{"queueName": unique("nothing-") + ".*", "useRegex": "true"}, key)
	if _, _, err := none.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "no entity matches") {
		t.Errorf("no match: err = %v, want an error (never a silent 0)", err)
	}
}

func TestSampleErrors(t *testing.T) {
	t.Parallel()
	q := unique("err-")
	fake.set(q, 3)
	wrongKey := base64.StdEncoding.EncodeToString([]byte("not-the-namespace-key-at-all"))
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close()
	tests := []struct {
		name, queue, conn, wantErr string
	}{
		{name: "wrong key", queue: q, conn: fake.connectionString(wrongKey), wantErr: "401"},
		{name: "queue does not exist", queue: "absent-queue", conn: fake.connectionString(key), wantErr: "does not exist"},
		{name: "namespace down", queue: q, conn: fmt.Sprintf("Endpoint=sb://%s/;SharedAccessKeyName=%s;SharedAccessKey=%s", downAddr, keyName, key), wantErr: "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logger, logs := scalertest.ObservedLogger()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Name: "orders", Logger: logger,
				Metadata: map[string]string{"queueName": tc.queue}, AuthParams: map[string]string{"connection": tc.conn}}
			s, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, active, err := s.Sample(ctx)
			if err == nil || active || !strings.Contains(err.Error(), `azure-servicebus trigger "orders"`) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Sample = (active %v, %v), want an error naming the trigger and containing %q", active, err, tc.wantErr)
			}
			scalertest.AssertNoSecret(t, wrongKey, err.Error(), logs.All())
			scalertest.AssertNoSecret(t, key, err.Error(), logs.All())
		})
	}
}

func TestWorkloadIdentityWithoutEnvironmentIsABuildError(t *testing.T) {
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{"queueName": "q", "namespace": "ns"}}
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "namespace: ") || !strings.Contains(err.Error(), "workload identity") {
		t.Fatalf("New error = %v, want one saying namespace needs workload identity", err)
	}
}

// BenchmarkSample measures one Sample (a Get Queue over HTTPS) against the in-process namespace.
func BenchmarkSample(b *testing.B) {
	q := unique("bench-")
	fake.set(q, 10)
	s := newScaler(b, map[string]string{"queueName": q}, key)
	scalertest.BenchmarkSample(b, s)
}
