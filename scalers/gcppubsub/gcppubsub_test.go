package gcppubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/gcp/monitoringfake"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const project = "tidal-test"

// env is pstest (Google's in-process Pub/Sub server) used through the real client, and the shared fake Cloud
// Monitoring MetricService (scalers/gcp/monitoringfake) answering ListTimeSeries for the Pub/Sub subscription
// metrics from pstest's state.
type env struct {
	ps     *pstest.Server
	client *pubsub.Client
	mon    *monitoringfake.Server
	nowNS  atomic.Int64 // the shared clock of pstest, the fake and the scaler

	mu     sync.Mutex
	topics map[string]string // subscription ID → topic ID
}

var filterRE = regexp.MustCompile(`^metric\.type = "([^"]+)" AND resource\.labels\.(subscription|topic)_id = "([^"]+)"$`)

// listTimeSeries answers for the subscription metrics from pstest's state.
func (e *env) listTimeSeries(_ context.Context, req *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
	m := filterRE.FindStringSubmatch(req.GetFilter())
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument, "unsupported filter %q", req.GetFilter())
	}
	metricType, kind, id := m[1], m[2], m[3]
	if kind != "subscription" {
		return &monitoringpb.ListTimeSeriesResponse{}, nil // topic metrics are not modelled: no data
	}
	e.mu.Lock()
	topic, ok := e.topics[id]
	e.mu.Unlock()
	if !ok {
		return &monitoringpb.ListTimeSeriesResponse{}, nil
	}
	var undelivered int64
	oldest := time.Time{}
	for _, msg := range e.ps.Messages() {
		if msg.Topic != "projects/"+project+"/topics/"+topic || msg.Acks > 0 {
			continue
		}
		undelivered++
		if oldest.IsZero() || msg.PublishTime.Before(oldest) {
			oldest = msg.PublishTime
		}
	}
	var v int64
	switch metricType {
	case "pubsub.googleapis.com/subscription/num_undelivered_messages":
		v = undelivered
	case "pubsub.googleapis.com/subscription/oldest_unacked_message_age":
		if !oldest.IsZero() {
			v = int64(e.clock().Sub(oldest).Seconds())
		}
	default:
		return &monitoringpb.ListTimeSeriesResponse{}, nil
	}
	end := req.GetInterval().GetEndTime()
	return &monitoringpb.ListTimeSeriesResponse{TimeSeries: []*monitoringpb.TimeSeries{{
		Metric:     &metric.Metric{Type: metricType},
		Resource:   &monitoredres.MonitoredResource{Type: "pubsub_subscription", Labels: map[string]string{"project_id": project, "subscription_id": id}},
		MetricKind: metric.MetricDescriptor_GAUGE, ValueType: metric.MetricDescriptor_INT64,
		Points: []*monitoringpb.Point{
			{Interval: &monitoringpb.TimeInterval{EndTime: end}, Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}}},
			// An older point that must lose to the newest one.
			{Interval: &monitoringpb.TimeInterval{EndTime: timestamppb.New(end.AsTime().Add(-time.Minute))},
				Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: 999}}},
		},
	}}}, nil
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{ps: pstest.NewServer(), topics: map[string]string{}}
	e.nowNS.Store(time.Now().UnixNano())
	e.ps.SetTimeNowFunc(e.clock)
	t.Cleanup(func() { _ = e.ps.Close() })
	var err error
	e.client, err = pubsub.NewClient(context.Background(), project, option.WithEndpoint(e.ps.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.client.Close() })
	e.mon = monitoringfake.New(t, project, e.listTimeSeries)
	return e
}

// subscription creates a topic and a subscription on it and returns the subscription ID.
func (e *env) subscription(t testing.TB) (sub, topic string) {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	sub, topic = "sub-"+id, "topic-"+id
	ctx := context.Background()
	if _, err := e.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + project + "/subscriptions/" + sub, Topic: "projects/" + project + "/topics/" + topic, AckDeadlineSeconds: 600,
	}); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.topics[sub] = topic
	e.mu.Unlock()
	return sub, topic
}

func (e *env) publish(t testing.TB, topic string, n int) {
	t.Helper()
	p := e.client.Publisher(topic)
	defer p.Stop()
	var results []*pubsub.PublishResult
	for i := 0; i < n; i++ {
		results = append(results, p.Publish(context.Background(), &pubsub.Message{Data: []byte("m")}))
	}
	for _, r := range results {
		if _, err := r.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// ack receives and acknowledges n messages.
func (e *env) ack(t testing.TB, sub string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	acked := 0
	err := e.client.Subscriber(sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		mu.Lock()
		defer mu.Unlock()
		if acked >= n {
			m.Nack()
			return
		}
		m.Ack()
		acked++
		if acked == n {
			cancel()
		}
	})
	if err != nil || acked != n {
		t.Fatalf("acked %d of %d: %v", acked, n, err)
	}
	// Acks travel asynchronously; wait until pstest has them.
	deadline := time.Now().Add(60 * time.Second)
	for {
		total := 0
		for _, m := range e.ps.Messages() {
			total += min(m.Acks, 1)
		}
		if total >= n || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) clock() time.Time { return time.Unix(0, e.nowNS.Load()) }

func (e *env) trigger(md map[string]string) *scalers.TriggerConfig {
	return &scalers.TriggerConfig{Type: Type, Index: 3, Metadata: md,
		AuthParams: map[string]string{"GoogleApplicationCredentials": e.mon.Credentials}}
}

func (e *env) scaler(t testing.TB, cfg *scalers.TriggerConfig) *Scaler {
	t.Helper()
	return scalertest.New[*Scaler](t, func(ctx context.Context, cfg *scalers.TriggerConfig) (*Scaler, error) {
		return newScaler(ctx, cfg, e.clock, e.mon.ClientOptions()...)
	}, cfg)
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"subscriptionName": "orders"}
	auth, credCases := monitoringfake.CredentialCases[Metadata](t, project, defaults)
	scalertest.ParseTableFunc(t, Type, ParseMetadata, append(credCases, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: defaults, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.Value != 10 || m.ActivationValue != 0 || m.TimeHorizon != 2*time.Minute || m.ValueIfNull != nil || m.project != project ||
				m.resourceID != "orders" || m.metricType != "pubsub.googleapis.com/subscription/num_undelivered_messages" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "oldest age, full name, every field", MD: map[string]string{"subscriptionName": "projects/other/subscriptions/jobs",
			"mode": "OldestUnackedMessageAge", "value": "30.5", "activationValue": "5", "timeHorizon": "5m", "valueIfNull": "0"}, Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if m.project != "other" || m.resourceID != "jobs" || m.Value != 30.5 || m.ActivationValue != 5 || m.TimeHorizon != 5*time.Minute ||
					m.ValueIfNull == nil || *m.ValueIfNull != 0 || m.metricType != "pubsub.googleapis.com/subscription/oldest_unacked_message_age" {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "topic with another mode", MD: map[string]string{"topicName": "t", "mode": "SendRequestCount"}, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.metricType != "pubsub.googleapis.com/topic/send_request_count" || m.resourceType != "topic" {
				t.Errorf("topic: %+v", m)
			}
		}},
		{Name: "subscriptionNameFromEnv", MD: map[string]string{"subscriptionNameFromEnv": "SUB"}, Env: map[string]string{"SUB": "s1"}, Auth: auth},
		{Name: "no name", MD: map[string]string{}, Auth: auth, WantErr: "subscriptionName: required"},
		{Name: "both names", MD: scalertest.WithPairs(defaults, "topicName", "t"), Auth: auth, WantErr: "give exactly one"},
		{Name: "bad full name", MD: map[string]string{"subscriptionName": "projects/p/topics/t"}, Auth: auth, WantErr: "subscriptionName"},
		{Name: "bad mode", MD: scalertest.WithPairs(defaults, "mode", "subscription_size"), Auth: auth, WantErr: "mode"},
		{Name: "value text", MD: scalertest.WithPairs(defaults, "value", "ten"), Auth: auth, WantErr: "value: want a finite number"},
		{Name: "value zero", MD: scalertest.WithPairs(defaults, "value", "0"), Auth: auth, WantErr: "value: a metric target must be at least"},
		{Name: "activationValue negative", MD: scalertest.WithPairs(defaults, "activationValue", "-1"), Auth: auth, WantErr: "activationValue"},
		{Name: "activationValue text", MD: scalertest.WithPairs(defaults, "activationValue", "x"), Auth: auth, WantErr: "activationValue"},
		{Name: "timeHorizon bad", MD: scalertest.WithPairs(defaults, "timeHorizon", "soon"), Auth: auth, WantErr: "timeHorizon"},
		{Name: "timeHorizon too short", MD: scalertest.WithPairs(defaults, "timeHorizon", "10s"), Auth: auth, WantErr: "timeHorizon"},
		{Name: "valueIfNull text", MD: scalertest.WithPairs(defaults, "valueIfNull", "none"), Auth: auth, WantErr: "valueIfNull"},
		{Name: "aggregation refused", MD: scalertest.WithPairs(defaults, "aggregation", "sum"), Auth: auth, WantErr: "aggregation"},
		{Name: "credentials without project", MD: defaults, Auth: map[string]string{"GoogleApplicationCredentials": `{"type":"service_account"}`}, WantErr: "project_id"},
	}...), "PRIVATE KEY", "not-json-secret")
}

func TestSubscriptionSize(t *testing.T) {
	e := newEnv(t)
	sub, topic := e.subscription(t)
	s := e.scaler(t, e.trigger(map[string]string{"subscriptionName": sub, "value": "5", "activationValue": "2"}))
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External.Metric.Name != "s3-gcp-ps-"+sub || specs[0].External.Target.AverageValue.Value() != 5 {
		t.Fatalf("specs = %+v", specs)
	}
	if v, active := scalertest.Sample(t, s, specs[0].External.Metric.Name); v != 0 || active {
		t.Errorf("empty: %v %v, want 0 false", v, active)
	}
	e.publish(t, topic, 2)
	if v, active := scalertest.Sample(t, s, ""); v != 2 || active {
		t.Errorf("at activation: %v %v, want 2 false", v, active)
	}
	e.publish(t, topic, 7)
	if v, active := scalertest.Sample(t, s, ""); v != 9 || !active {
		t.Errorf("above target: %v %v, want 9 true", v, active)
	}
	e.ack(t, sub, 4)
	if v, _ := scalertest.Sample(t, s, ""); v != 5 {
		t.Errorf("after 4 acks: %v, want 5", v)
	}
}

func TestOldestUnackedMessageAge(t *testing.T) {
	e := newEnv(t)
	sub, topic := e.subscription(t)
	s := e.scaler(t, e.trigger(map[string]string{"subscriptionName": "projects/" + project + "/subscriptions/" + sub,
		"mode": "OldestUnackedMessageAge", "value": "60", "activationValue": "30"}))
	if v, active := scalertest.Sample(t, s, ""); v != 0 || active {
		t.Errorf("empty: %v %v", v, active)
	}
	e.publish(t, topic, 1)
	e.nowNS.Add(int64(20 * time.Second))
	if v, active := scalertest.Sample(t, s, ""); v != 20 || active {
		t.Errorf("20s old: %v %v, want 20 false", v, active)
	}
	e.nowNS.Add(int64(100 * time.Second))
	if v, active := scalertest.Sample(t, s, ""); v != 120 || !active {
		t.Errorf("120s old: %v %v, want 120 true", v, active)
	}
}

func TestNoData(t *testing.T) {
	e := newEnv(t)
	_, topic := e.subscription(t)
	s := e.scaler(t, e.trigger(map[string]string{"topicName": topic, "mode": "SendRequestCount"}))
	_, _, err := s.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no pubsub.googleapis.com/topic/send_request_count point") {
		t.Errorf("no data: %v, want an error (never a silent 0)", err)
	}
	s = e.scaler(t, e.trigger(map[string]string{"topicName": topic, "mode": "SendRequestCount", "valueIfNull": "3"}))
	if v, _ := scalertest.Sample(t, s, ""); v != 3 {
		t.Errorf("valueIfNull: %v, want 3", v)
	}
}

func TestAuthFailure(t *testing.T) {
	e := newEnv(t)
	sub, _ := e.subscription(t)
	other, _ := monitoringfake.ServiceAccount(t, project, "http://127.0.0.1:1/token")
	log, logs := scalertest.ObservedLogger()
	cfg := e.trigger(map[string]string{"subscriptionName": sub})
	cfg.AuthParams["GoogleApplicationCredentials"], cfg.Logger = other, log
	s := e.scaler(t, cfg)
	_, _, err := s.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Unauthenticated") || !strings.Contains(err.Error(), "gcp-pubsub trigger #3") {
		t.Fatalf("wrong key: %v, want Unauthenticated naming the trigger", err)
	}
	scalertest.AssertNoSecret(t, monitoringfake.PrivateKeyLine(t, other), err.Error(), logs.All())
}

func TestServerDown(t *testing.T) {
	e := newEnv(t)
	sub, _ := e.subscription(t)
	scalertest.SourceDown(t, e.scaler(t, e.trigger(map[string]string{"subscriptionName": sub})), e.mon.Stop, "ListTimeSeries")
}

// BenchmarkSample measures one ListTimeSeries over TLS gRPC with a self-signed JWT against the fake Monitoring
// service (whose answer reads pstest's state).
func BenchmarkSample(b *testing.B) {
	e := newEnv(b)
	sub, topic := e.subscription(b)
	e.publish(b, topic, 10)
	scalertest.BenchmarkSample(b, e.scaler(b, e.trigger(map[string]string{"subscriptionName": sub})))
}
