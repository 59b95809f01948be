package awscloudwatch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth/awstest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const (
	keyID  = "AKIDCLOUDWATCHTEST"
	secret = "tidal-cloudwatch-secret"
	region = "eu-west-1"
)

// now is the scalers' clock: with metricStatPeriod 60 the window ends at 12:03:00.
var now = time.Date(2026, 3, 1, 12, 3, 30, 0, time.UTC)

// point is one datapoint of a metric's statistic.
type point struct {
	at time.Time
	v  float64
}

// request is GetMetricData's input as the SDK encodes it in CBOR (Smithy RPC v2).
type request struct {
	StartTime, EndTime time.Time
	ScanBy             string
	MetricDataQueries  []struct {
		Id         string
		Expression string
		Period     int32
		ReturnData *bool
		MetricStat *struct {
			Metric struct {
				Namespace, MetricName string
				Dimensions            []struct{ Name, Value string }
			}
			Period     int32
			Stat, Unit string
		}
	}
}

// fake is CloudWatch's GetMetricData over the Smithy RPC v2 CBOR protocol the SDK speaks: it checks the path,
// the protocol headers and the SigV4 signature, decodes the CBOR request and answers from in-memory series
// keyed by namespace/metric/dimensions/stat[/unit], or by expression, with the datapoints inside
// [StartTime, EndTime) newest first.
type fake struct {
	srv    *httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	series map[string][]point
	last   request
	authz  string // the last request's Authorization header
}

func newFake(t testing.TB) *fake {
	t.Helper()
	f := &fake{series: map[string][]point{}}
	keys := awstest.Keys{keyID: secret}
	fail := func(w http.ResponseWriter, status int, typ, msg, query string) {
		(&awstest.Error{Status: status, Type: typ, Message: msg, QueryError: query}).WriteCBOR(w)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/service/GraniteServiceVersion20100801/operation/GetMetricData":
			fail(w, http.StatusNotFound, "UnknownOperationException", r.Method+" "+r.URL.Path, "")
			return
		case r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" || r.Header.Get("Content-Type") != "application/cbor" ||
			r.Header.Get("Accept") != "application/cbor":
			fail(w, http.StatusBadRequest, "SerializationException", "want rpc-v2-cbor", "")
			return
		}
		f.mu.Lock()
		f.authz = r.Header.Get("Authorization")
		f.mu.Unlock()
		body, aerr := keys.ReadSigned(r)
		if aerr != nil {
			query := "InvalidClientTokenId;Sender"
			if aerr.Type == "InvalidSignatureException" {
				query = "SignatureDoesNotMatch;Sender"
			}
			fail(w, aerr.Status, "com.amazon.coral.service#"+aerr.Type, aerr.Message, query)
			return
		}
		var in request
		if err := cbor.Unmarshal(body, &in); err != nil {
			fail(w, http.StatusBadRequest, "SerializationException", err.Error(), "")
			return
		}
		f.mu.Lock()
		f.last = in
		f.mu.Unlock()
		if len(in.MetricDataQueries) != 1 || in.ScanBy != "TimestampDescending" || !in.StartTime.Before(in.EndTime) {
			fail(w, http.StatusBadRequest, "com.amazonaws.cloudwatch#InvalidParameterValueException", "this fake takes one query, newest first", "InvalidParameterValue;Sender")
			return
		}
		q := in.MetricDataQueries[0]
		key := "expr:" + q.Expression
		if ms := q.MetricStat; ms != nil {
			key = seriesKey(ms.Metric.Namespace, ms.Metric.MetricName, ms.Stat, ms.Unit, dims(ms.Metric.Dimensions)...)
		}
		f.mu.Lock()
		pts := append([]point(nil), f.series[key]...)
		f.mu.Unlock()
		sort.Slice(pts, func(i, j int) bool { return pts[i].at.After(pts[j].at) })
		res := map[string]any{"Id": q.Id, "Label": q.Id, "StatusCode": "Complete", "Timestamps": []time.Time{}, "Values": []float64{}}
		var ts []time.Time
		var vs []float64
		for _, p := range pts {
			if !p.at.Before(in.StartTime) && p.at.Before(in.EndTime) {
				ts, vs = append(ts, p.at), append(vs, p.v)
			}
		}
		if len(ts) > 0 {
			res["Timestamps"], res["Values"] = ts, vs
		}
		if strings.Contains(q.Expression, "other-account") {
			res["StatusCode"] = "Forbidden" // a cross-account query without the monitoring account's permission
		}
		enc, _ := cbor.EncOptions{Time: cbor.TimeUnix, TimeTag: cbor.EncTagRequired}.EncMode()
		out, err := enc.Marshal(map[string]any{"MetricDataResults": []any{res}, "Messages": []any{}})
		if err != nil {
			fail(w, http.StatusInternalServerError, "InternalServiceError", err.Error(), "")
			return
		}
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		_, _ = w.Write(out)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func dims(ds []struct{ Name, Value string }) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Name+"="+d.Value)
	}
	return out
}

func seriesKey(namespace, metric, stat, unit string, dims ...string) string {
	sort.Strings(dims)
	return fmt.Sprintf("%s/%s/%s/%s/%s", namespace, metric, strings.Join(dims, ","), stat, unit)
}

func (f *fake) put(key string, pts ...point) {
	f.mu.Lock()
	f.series[key] = append(f.series[key], pts...)
	f.mu.Unlock()
}

func (f *fake) lastRequest() request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

var base = map[string]string{"namespace": "AWS/SQS", "metricName": "ApproximateNumberOfMessagesVisible",
	"dimensionName": "QueueName", "dimensionValue": "orders", "targetMetricValue": "5", "metricStatPeriod": "60",
	"awsRegion": region}

func (f *fake) trigger(md map[string]string) *scalers.TriggerConfig {
	return &scalers.TriggerConfig{Type: Type, Index: 2, Metadata: scalertest.With(scalertest.WithPairs(base, "awsEndpoint", f.srv.URL), md),
		AuthParams: map[string]string{"awsAccessKeyID": keyID, "awsSecretAccessKey": secret}}
}

func newTestScaler(t testing.TB, cfg *scalers.TriggerConfig) *Scaler {
	t.Helper()
	return scalertest.New[*Scaler](t, func(ctx context.Context, cfg *scalers.TriggerConfig) (*Scaler, error) {
		return newScaler(ctx, cfg, func() time.Time { return now })
	}, cfg)
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	auth := awstest.Auth()
	scalertest.ParseTableFunc(t, Type, ParseMetadata, append(awstest.CredentialCases[Metadata](base), []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: scalertest.WithPairs(base, "metricStatPeriod", scalertest.Delete), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.TargetMetricValue != 5 || m.ActivationTargetMetricValue != 0 || m.MinMetricValue != 0 || !m.IgnoreNullValues ||
				m.MetricStat != "Average" || m.MetricStatPeriod != 300 || m.MetricCollectionTime != 300 || m.MetricEndTimeOffset != 0 ||
				m.MetricUnit != "" || len(m.dimensions) != 1 || *m.dimensions[0].Name != "QueueName" || *m.dimensions[0].Value != "orders" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: scalertest.WithPairs(base, "dimensionName", "QueueName; Env", "dimensionValue", "orders;prod",
			"activationTargetMetricValue", "1.5", "minMetricValue", "2", "ignoreNullValues", "false", "metricStat", "p99.9",
			"metricStatPeriod", "30", "metricCollectionTime", "120", "metricEndTimeOffset", "60", "metricUnit", "Count"), Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if len(m.dimensions) != 2 || *m.dimensions[1].Name != "Env" || *m.dimensions[1].Value != "prod" || m.ActivationTargetMetricValue != 1.5 ||
					m.MinMetricValue != 2 || m.IgnoreNullValues || m.MetricStat != "p99.9" || m.MetricStatPeriod != 30 ||
					m.MetricCollectionTime != 120 || m.MetricEndTimeOffset != 60 || m.MetricUnit != "Count" {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "no dimensions", MD: scalertest.WithPairs(base, "dimensionName", scalertest.Delete, "dimensionValue", scalertest.Delete), Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if len(m.dimensions) != 0 {
					t.Errorf("dimensions: %+v", m.dimensions)
				}
			}},
		{Name: "expression alone", MD: map[string]string{"expression": "SELECT MAX(CPUUtilization) FROM \"AWS/EC2\"", "targetMetricValue": "50", "awsRegion": region}, Auth: auth},
		{Name: "empty awsEndpoint as in KEDA's example", MD: scalertest.WithPairs(base, "awsEndpoint", ""), Auth: auth},
		{Name: "missing namespace", MD: scalertest.WithPairs(base, "namespace", scalertest.Delete), Auth: auth, WantErr: "namespace: required"},
		{Name: "missing metricName", MD: scalertest.WithPairs(base, "metricName", " "), Auth: auth, WantErr: "metricName: required"},
		{Name: "dimension lengths differ", MD: scalertest.WithPairs(base, "dimensionValue", "a;b"), Auth: auth, WantErr: "dimensionName, dimensionValue"},
		{Name: "dimension value without name", MD: scalertest.WithPairs(base, "dimensionName", scalertest.Delete), Auth: auth, WantErr: "dimensionName, dimensionValue"},
		{Name: "empty dimension", MD: scalertest.WithPairs(base, "dimensionName", "a;", "dimensionValue", "x;y"), Auth: auth, WantErr: "entry 2 is empty"},
		{Name: "missing targetMetricValue", MD: scalertest.WithPairs(base, "targetMetricValue", scalertest.Delete), Auth: auth, WantErr: `"targetMetricValue"`},
		{Name: "targetMetricValue text", MD: scalertest.WithPairs(base, "targetMetricValue", "five"), Auth: auth, WantErr: "targetMetricValue: want a finite number"},
		{Name: "targetMetricValue zero", MD: scalertest.WithPairs(base, "targetMetricValue", "0"), Auth: auth, WantErr: "targetMetricValue"},
		{Name: "activationTargetMetricValue text", MD: scalertest.WithPairs(base, "activationTargetMetricValue", "x"), Auth: auth, WantErr: "activationTargetMetricValue"},
		{Name: "minMetricValue NaN", MD: scalertest.WithPairs(base, "minMetricValue", "NaN"), Auth: auth, WantErr: "minMetricValue"},
		{Name: "ignoreNullValues not bool", MD: scalertest.WithPairs(base, "ignoreNullValues", "sometimes"), Auth: auth, WantErr: "ignoreNullValues"},
		{Name: "metricStat unknown", MD: scalertest.WithPairs(base, "metricStat", "Median"), Auth: auth, WantErr: "metricStat"},
		{Name: "metricStat bad percentile", MD: scalertest.WithPairs(base, "metricStat", "pXX"), Auth: auth, WantErr: "metricStat"},
		{Name: "metricStatPeriod zero", MD: scalertest.WithPairs(base, "metricStatPeriod", "0"), Auth: auth, WantErr: "metricStatPeriod"},
		{Name: "metricStatPeriod 7", MD: scalertest.WithPairs(base, "metricStatPeriod", "7"), Auth: auth, WantErr: "metricStatPeriod: want 1, 5, 10, 30"},
		{Name: "metricStatPeriod 90", MD: scalertest.WithPairs(base, "metricStatPeriod", "90"), Auth: auth, WantErr: "metricStatPeriod"},
		{Name: "metricCollectionTime not a multiple", MD: scalertest.WithPairs(base, "metricCollectionTime", "90"), Auth: auth, WantErr: "metricCollectionTime: must be a multiple"},
		{Name: "metricCollectionTime negative", MD: scalertest.WithPairs(base, "metricCollectionTime", "-60"), Auth: auth, WantErr: "metricCollectionTime"},
		{Name: "metricEndTimeOffset negative", MD: scalertest.WithPairs(base, "metricEndTimeOffset", "-1"), Auth: auth, WantErr: "metricEndTimeOffset"},
		{Name: "metricEndTimeOffset text", MD: scalertest.WithPairs(base, "metricEndTimeOffset", "1m"), Auth: auth, WantErr: "metricEndTimeOffset"},
		{Name: "metricUnit unknown", MD: scalertest.WithPairs(base, "metricUnit", "Furlongs"), Auth: auth, WantErr: "metricUnit"},
	}...), awstest.Secret)
}

func TestSample(t *testing.T) {
	f := newFake(t)
	s := newTestScaler(t, f.trigger(map[string]string{"activationTargetMetricValue": "2"}))
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External.Metric.Name != "s2-aws-cloudwatch" || specs[0].External.Target.AverageValue.Value() != 5 {
		t.Fatalf("specs = %+v", specs)
	}
	key := seriesKey("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Average", "", "QueueName=orders")
	end := time.Date(2026, 3, 1, 12, 3, 0, 0, time.UTC)
	f.put(key, point{end.Add(-2 * time.Minute), 0})
	if v, active := scalertest.Sample(t, s, "s2-aws-cloudwatch"); v != 0 || active {
		t.Errorf("at 0: %v %v, want 0 false", v, active)
	}
	in := f.lastRequest()
	q := in.MetricDataQueries[0]
	if !in.EndTime.Equal(end) || !in.StartTime.Equal(end.Add(-5*time.Minute)) || q.Id != "c1" || q.MetricStat == nil ||
		q.MetricStat.Period != 60 || q.MetricStat.Stat != "Average" || q.MetricStat.Metric.Namespace != "AWS/SQS" || q.ReturnData == nil || !*q.ReturnData {
		t.Errorf("request = %+v", in)
	}
	f.mu.Lock()
	authz := f.authz
	f.mu.Unlock()
	if want := "AWS4-HMAC-SHA256 Credential=" + keyID + "/20"; !strings.HasPrefix(authz, want) || !strings.Contains(authz, "/"+region+"/monitoring/aws4_request") {
		t.Errorf("Authorization = %q, want SigV4 for %s in %s/monitoring", authz, keyID, region)
	}
	f.put(key, point{end.Add(-time.Minute), 2})
	if v, active := scalertest.Sample(t, s, ""); v != 2 || active {
		t.Errorf("at activation: %v %v, want 2 false", v, active)
	}
	// The newest point in the window wins; one at the window's end (excluded) and one before it do not count.
	f.put(key, point{end.Add(-30 * time.Second), 12.5}, point{end, 999}, point{end.Add(-6 * time.Minute), 888})
	if v, active := scalertest.Sample(t, s, ""); v != 12.5 || !active {
		t.Errorf("above target: %v %v, want 12.5 true", v, active)
	}
	// Another statistic, unit, two dimensions and an end offset reach CloudWatch as given.
	s2 := newTestScaler(t, f.trigger(map[string]string{"dimensionName": "QueueName;Env", "dimensionValue": "orders;prod",
		"metricStat": "p90", "metricUnit": "Count", "metricEndTimeOffset": "120", "metricCollectionTime": "180"}))
	f.put(seriesKey("AWS/SQS", "ApproximateNumberOfMessagesVisible", "p90", "Count", "Env=prod", "QueueName=orders"), point{end.Add(-3 * time.Minute), 7})
	if v, active := scalertest.Sample(t, s2, ""); v != 7 || !active {
		t.Errorf("p90/Count: %v %v, want 7 true", v, active)
	}
	if in := f.lastRequest(); !in.EndTime.Equal(end.Add(-2*time.Minute)) || !in.StartTime.Equal(end.Add(-5*time.Minute)) {
		t.Errorf("offset window: %v - %v", in.StartTime, in.EndTime)
	}
}

func TestNoDatapoint(t *testing.T) {
	f := newFake(t)
	if v, active := scalertest.Sample(t, newTestScaler(t, f.trigger(nil)), ""); v != 0 || active {
		t.Errorf("default minMetricValue: %v %v, want 0 false", v, active)
	}
	if v, active := scalertest.Sample(t, newTestScaler(t, f.trigger(map[string]string{"minMetricValue": "3"})), ""); v != 3 || !active {
		t.Errorf("minMetricValue 3: %v %v, want 3 true", v, active)
	}
	s := newTestScaler(t, f.trigger(map[string]string{"ignoreNullValues": "false"}))
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "no datapoint") {
		t.Errorf("ignoreNullValues false: %v, want an error", err)
	}
}

func TestExpression(t *testing.T) {
	f := newFake(t)
	expr := `SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId)`
	s := newTestScaler(t, f.trigger(map[string]string{"expression": expr, "namespace": scalertest.Delete, "metricName": scalertest.Delete,
		"dimensionName": scalertest.Delete, "dimensionValue": scalertest.Delete, "targetMetricValue": "50", "activationTargetMetricValue": "10"}))
	f.put("expr:"+expr, point{now.Add(-4 * time.Minute), 8})
	if v, active := scalertest.Sample(t, s, ""); v != 8 || active {
		t.Errorf("below activation: %v %v, want 8 false", v, active)
	}
	q := f.lastRequest().MetricDataQueries[0]
	if q.Id != "q1" || q.Expression != expr || q.Period != 60 || q.MetricStat != nil {
		t.Errorf("expression query = %+v", q)
	}
	f.put("expr:"+expr, point{now.Add(-2 * time.Minute), 75})
	if v, active := scalertest.Sample(t, s, ""); v != 75 || !active {
		t.Errorf("above target: %v %v, want 75 true", v, active)
	}
}

func TestForbiddenResult(t *testing.T) {
	f := newFake(t)
	s := newTestScaler(t, f.trigger(map[string]string{"expression": `SELECT SUM(x) FROM "other-account"`}))
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "status Forbidden") {
		t.Fatalf("forbidden result: %v, want an error (never minMetricValue)", err)
	}
}

func TestAuthFailure(t *testing.T) {
	f := newFake(t)
	for _, tc := range []struct {
		name, key, secret, want string
	}{
		{name: "wrong secret", key: keyID, secret: "wrong-secret-value", want: "SignatureDoesNotMatch"},
		{name: "unknown key", key: "AKIDUNKNOWN", secret: "unknown-secret-value", want: "InvalidClientTokenId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := scalertest.ObservedLogger()
			cfg := f.trigger(nil)
			cfg.AuthParams = map[string]string{"awsAccessKeyID": tc.key, "awsSecretAccessKey": tc.secret}
			cfg.Logger = log
			before := f.calls.Load()
			_, _, err := newTestScaler(t, cfg).Sample(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "aws-cloudwatch trigger #2") ||
				!strings.Contains(err.Error(), "GetMetricData") {
				t.Fatalf("err = %v, want %s naming the trigger", err, tc.want)
			}
			if n := f.calls.Load() - before; n != 1 {
				t.Errorf("%d calls; an auth failure must not be retried", n)
			}
			scalertest.AssertNoSecret(t, tc.secret, err.Error(), logs.All())
		})
	}
}

func TestSecretFromEnvNotLeaked(t *testing.T) {
	f := newFake(t)
	log, logs := scalertest.ObservedLogger()
	cfg := f.trigger(map[string]string{"awsSecretAccessKeyFromEnv": "AWS_SECRET"})
	cfg.AuthParams = map[string]string{"awsAccessKeyID": keyID}
	cfg.ResolvedEnv = map[string]string{"AWS_SECRET": "env-secret-value"}
	cfg.Logger = log
	_, _, err := newTestScaler(t, cfg).Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("err = %v", err)
	}
	scalertest.AssertNoSecret(t, "env-secret-value", err.Error(), logs.All())
}

func TestServerDown(t *testing.T) {
	f := newFake(t)
	scalertest.SourceDown(t, newTestScaler(t, f.trigger(nil)), f.srv.Close, "GetMetricData")
}

// BenchmarkSample measures one GetMetricData (SigV4-signed, CBOR encoded) against the in-process fake.
func BenchmarkSample(b *testing.B) {
	f := newFake(b)
	f.put(seriesKey("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Average", "", "QueueName=orders"), point{now.Add(-2 * time.Minute), 4})
	scalertest.BenchmarkSample(b, newTestScaler(b, f.trigger(nil)))
}
