package awskinesis

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth/awstest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const (
	keyID  = "AKIDKINESISTEST"
	secret = "tidal-kinesis-secret"
)

// fake answers Kinesis's DescribeStreamSummary in the AWS JSON 1.1 protocol, after checking the SigV4
// signature, from a map of stream name → open shard count.
type fake struct {
	srv    *httptest.Server
	mu     sync.Mutex
	shards map[string]int
}

func newFake(t testing.TB) *fake {
	t.Helper()
	f := &fake{shards: map[string]int{}}
	keys := awstest.Keys{keyID: secret}
	f.srv = httptest.NewServer(keys.Handler(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("X-Amz-Target") != "Kinesis_20131202.DescribeStreamSummary" {
			(&awstest.Error{Status: 400, Type: "UnknownOperationException", Message: r.Header.Get("X-Amz-Target")}).Write(w)
			return
		}
		var in struct{ StreamName string }
		if err := json.Unmarshal(body, &in); err != nil {
			(&awstest.Error{Status: 400, Type: "SerializationException", Message: err.Error()}).Write(w)
			return
		}
		f.mu.Lock()
		n, ok := f.shards[in.StreamName]
		f.mu.Unlock()
		if !ok {
			(&awstest.Error{Status: 400, Type: "ResourceNotFoundException", Message: "Stream " + in.StreamName + " under account 123456789012 not found."}).Write(w)
			return
		}
		awstest.WriteJSON(w, "application/x-amz-json-1.1", map[string]any{"StreamDescriptionSummary": map[string]any{
			"StreamName": in.StreamName, "StreamARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/" + in.StreamName,
			"StreamStatus": "ACTIVE", "StreamModeDetails": map[string]string{"StreamMode": "PROVISIONED"},
			"RetentionPeriodHours": 24, "StreamCreationTimestamp": float64(time.Now().Unix()),
			"EnhancedMonitoring": []map[string]any{{"ShardLevelMetrics": []string{}}}, "EncryptionType": "NONE",
			"OpenShardCount": n, "ConsumerCount": 0,
		}})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) set(stream string, n int) {
	f.mu.Lock()
	f.shards[stream] = n
	f.mu.Unlock()
}

func (f *fake) trigger(md map[string]string) *scalers.TriggerConfig {
	return &scalers.TriggerConfig{Type: Type, Index: 0,
		Metadata:   scalertest.With(map[string]string{"streamName": "orders", "awsRegion": "eu-west-1", "awsEndpoint": f.srv.URL}, md),
		AuthParams: map[string]string{"awsAccessKeyID": keyID, "awsSecretAccessKey": secret}}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"streamName": "orders", "awsRegion": "eu-west-1"}
	auth := awstest.Auth()
	scalertest.ParseTableFunc(t, Type, ParseMetadata, append(awstest.CredentialCases[Metadata](defaults), []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: defaults, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.ShardCount != 2 || m.ActivationShardCount != 0 || m.StreamName != "orders" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: scalertest.WithPairs(defaults, "shardCount", "4", "activationShardCount", "1", "awsEndpoint", "http://127.0.0.1:4566"), Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if m.ShardCount != 4 || m.ActivationShardCount != 1 || m.Endpoint != "http://127.0.0.1:4566" {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "missing streamName", MD: scalertest.WithPairs(defaults, "streamName", scalertest.Delete), Auth: auth, WantErr: `"streamName"`},
		{Name: "blank streamName", MD: scalertest.WithPairs(defaults, "streamName", " "), Auth: auth, WantErr: "streamName"},
		{Name: "shardCount text", MD: scalertest.WithPairs(defaults, "shardCount", "two"), Auth: auth, WantErr: "shardCount: want integer"},
		{Name: "shardCount zero", MD: scalertest.WithPairs(defaults, "shardCount", "0"), Auth: auth, WantErr: "shardCount"},
		{Name: "activationShardCount negative", MD: scalertest.WithPairs(defaults, "activationShardCount", "-1"), Auth: auth, WantErr: "activationShardCount"},
		{Name: "activationShardCount text", MD: scalertest.WithPairs(defaults, "activationShardCount", "1.5"), Auth: auth, WantErr: "activationShardCount"},
	}...), awstest.Secret)
}

func TestSample(t *testing.T) {
	f := newFake(t)
	s := scalertest.New[scalers.Scaler](t, New, f.trigger(map[string]string{"activationShardCount": "1"}))
	if specs := s.MetricSpecs(); specs[0].External.Metric.Name != "s0-aws-kinesis-orders" || specs[0].External.Target.AverageValue.Value() != 2 {
		t.Fatalf("specs = %+v", specs[0].External)
	}
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("missing stream: %v", err)
	}
	for _, tc := range []struct {
		shards     int
		wantActive bool
	}{{0, false}, {1, false}, {6, true}} {
		f.set("orders", tc.shards)
		if v, active := scalertest.Sample(t, s, "s0-aws-kinesis-orders"); v != float64(tc.shards) || active != tc.wantActive {
			t.Errorf("%d shards: %v %v, want %v", tc.shards, v, active, tc.wantActive)
		}
	}
}

func TestAuthAndServerDown(t *testing.T) {
	f := newFake(t)
	f.set("orders", 3)
	cfg := f.trigger(nil)
	cfg.AuthParams["awsSecretAccessKey"] = "wrong-kinesis-secret"
	scalertest.SampleFails(t, New, cfg, "InvalidSignatureException", "wrong-kinesis-secret")
	scalertest.SourceDown(t, scalertest.New[scalers.Scaler](t, New, f.trigger(nil)), f.srv.Close, "DescribeStreamSummary")
}

// BenchmarkSample measures one signed DescribeStreamSummary against the local fake.
func BenchmarkSample(b *testing.B) {
	f := newFake(b)
	f.set("orders", 4)
	scalertest.BenchmarkSample(b, scalertest.New[scalers.Scaler](b, New, f.trigger(nil)))
}
