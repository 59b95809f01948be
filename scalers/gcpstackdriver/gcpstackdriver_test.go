package gcpstackdriver

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/gcp/monitoringfake"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const project = "tidal-stackdriver"

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// series is one stored time series: a metric type, the resource's labels and its points.
type series struct {
	metricType string
	labels     map[string]string
	points     []point
}

type point struct {
	end time.Time
	v   float64
}

// env is the shared fake Monitoring service answering ListTimeSeries from in-memory series: the filter may be
// metric.type = "T" followed by AND resource.labels.K = "V" clauses; aggregation supports the aligners
// none/mean/sum/max and the reducers none/sum/mean/max, refusing a reducer without an aligner as Monitoring does.
type env struct {
	mon  *monitoringfake.Server
	mu   sync.Mutex
	data []*series
	last *monitoringpb.ListTimeSeriesRequest
}

var clauseRE = regexp.MustCompile(`^(metric\.type|resource\.labels\.[a-z_]+)\s*=\s*"([^"]*)"$`)

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{}
	e.mon = monitoringfake.New(t, project, e.list)
	return e
}

func (e *env) list(_ context.Context, req *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last = req
	want := map[string]string{}
	for _, c := range strings.Split(req.GetFilter(), " AND ") {
		m := clauseRE.FindStringSubmatch(strings.TrimSpace(c))
		if m == nil {
			return nil, status.Errorf(codes.InvalidArgument, "Field filter had an invalid value of %q", req.GetFilter())
		}
		want[m[1]] = m[2]
	}
	if _, ok := want["metric.type"]; !ok {
		return nil, status.Error(codes.InvalidArgument, "A filter must specify a metric type")
	}
	if want["resource.labels.project_id"] != project {
		return &monitoringpb.ListTimeSeriesResponse{}, nil // every stored series is the project's
	}
	delete(want, "resource.labels.project_id")
	start, end := req.GetInterval().GetStartTime().AsTime(), req.GetInterval().GetEndTime().AsTime()
	var out []*monitoringpb.TimeSeries
	for _, s := range e.data {
		if s.metricType != want["metric.type"] {
			continue
		}
		match := true
		for k, v := range want {
			if l, ok := strings.CutPrefix(k, "resource.labels."); ok && s.labels[l] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		ts := &monitoringpb.TimeSeries{Metric: &metric.Metric{Type: s.metricType},
			Resource:   &monitoredres.MonitoredResource{Type: "gce_instance", Labels: s.labels},
			MetricKind: metric.MetricDescriptor_GAUGE, ValueType: metric.MetricDescriptor_DOUBLE}
		// Monitoring returns the newest point first.
		for i := len(s.points) - 1; i >= 0; i-- {
			p := s.points[i]
			if p.end.After(start) && !p.end.After(end) {
				ts.Points = append(ts.Points, &monitoringpb.Point{Interval: &monitoringpb.TimeInterval{EndTime: timestamppb.New(p.end)},
					Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: p.v}}})
			}
		}
		if len(ts.Points) > 0 {
			out = append(out, ts)
		}
	}
	agg := req.GetAggregation()
	if agg == nil {
		return &monitoringpb.ListTimeSeriesResponse{TimeSeries: out}, nil
	}
	aligner, reducer := agg.GetPerSeriesAligner(), agg.GetCrossSeriesReducer()
	if reducer != monitoringpb.Aggregation_REDUCE_NONE && aligner == monitoringpb.Aggregation_ALIGN_NONE {
		return nil, status.Error(codes.InvalidArgument, "The aligner cannot be ALIGN_NONE if cross series reduction is requested.")
	}
	if agg.GetAlignmentPeriod().AsDuration() < time.Minute {
		return nil, status.Error(codes.InvalidArgument, "The alignment period must be at least 60 seconds.")
	}
	if aligner != monitoringpb.Aggregation_ALIGN_NONE {
		for _, ts := range out {
			var vals []float64
			for _, p := range ts.Points {
				vals = append(vals, p.GetValue().GetDoubleValue())
			}
			v, ok := combine(strings.TrimPrefix(aligner.String(), "ALIGN_"), vals)
			if !ok {
				return nil, status.Errorf(codes.InvalidArgument, "this fake does not implement %s", aligner)
			}
			ts.Points = []*monitoringpb.Point{{Interval: &monitoringpb.TimeInterval{EndTime: req.GetInterval().GetEndTime()},
				Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: v}}}}
		}
	}
	if reducer != monitoringpb.Aggregation_REDUCE_NONE && len(out) > 0 {
		var vals []float64
		for _, ts := range out {
			vals = append(vals, ts.Points[0].GetValue().GetDoubleValue())
		}
		v, ok := combine(strings.TrimPrefix(reducer.String(), "REDUCE_"), vals)
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "this fake does not implement %s", reducer)
		}
		out = []*monitoringpb.TimeSeries{{Metric: out[0].Metric, Points: []*monitoringpb.Point{{Interval: out[0].Points[0].Interval,
			Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: v}}}}}}
	}
	return &monitoringpb.ListTimeSeriesResponse{TimeSeries: out}, nil
}

func combine(op string, vals []float64) (float64, bool) {
	var sum, hi float64
	for i, v := range vals {
		sum += v
		if i == 0 || v > hi {
			hi = v
		}
	}
	switch op {
	case "SUM":
		return sum, true
	case "MEAN":
		return sum / float64(len(vals)), true
	case "MAX":
		return hi, true
	}
	return 0, false
}

func (e *env) put(metricType string, labels map[string]string, pts ...point) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.data {
		if s.metricType == metricType && s.labels["instance_id"] == labels["instance_id"] {
			s.points = append(s.points, pts...)
			return
		}
	}
	e.data = append(e.data, &series{metricType: metricType, labels: labels, points: pts})
}

func (e *env) lastRequest() *monitoringpb.ListTimeSeriesRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

const cpu = "compute.googleapis.com/instance/cpu/utilization"

func (e *env) trigger(md map[string]string) *scalers.TriggerConfig {
	base := map[string]string{"projectId": project, "filter": `metric.type = "` + cpu + `"`, "targetValue": "50"}
	return &scalers.TriggerConfig{Type: Type, Index: 4, Metadata: scalertest.With(base, md),
		AuthParams: map[string]string{"GoogleApplicationCredentials": e.mon.Credentials}}
}

func (e *env) scaler(t testing.TB, cfg *scalers.TriggerConfig) *Scaler {
	t.Helper()
	return scalertest.New[*Scaler](t, func(ctx context.Context, cfg *scalers.TriggerConfig) (*Scaler, error) {
		return newScaler(ctx, cfg, func() time.Time { return now }, e.mon.ClientOptions()...)
	}, cfg)
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"projectId": "p1", "filter": `metric.type = "x"`}
	auth, credCases := monitoringfake.CredentialCases[Metadata](t, project, defaults)
	scalertest.ParseTableFunc(t, Type, ParseMetadata, append(credCases, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: defaults, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.TargetValue != 5 || m.ActivationTargetValue != 0 || m.ValueIfNull != nil || m.aggregation != nil ||
				m.AlignmentAligner != "none" || m.AlignmentReducer != "none" || m.ProjectID != "p1" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: scalertest.WithPairs(defaults, "targetValue", "7.5", "activationTargetValue", "1.5", "valueIfNull", "0",
			"alignmentPeriodSeconds", "120", "alignmentAligner", "percentile_99", "alignmentReducer", "sum"), Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				a := m.aggregation
				if m.TargetValue != 7.5 || m.ActivationTargetValue != 1.5 || m.ValueIfNull == nil || *m.ValueIfNull != 0 || a == nil ||
					a.GetAlignmentPeriod().AsDuration() != 2*time.Minute || a.GetPerSeriesAligner() != monitoringpb.Aggregation_ALIGN_PERCENTILE_99 ||
					a.GetCrossSeriesReducer() != monitoringpb.Aggregation_REDUCE_SUM {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "every aligner and reducer maps", MD: defaults, Auth: auth, Check: func(t *testing.T, _ Metadata) {
			for _, f := range scalers.Fields(Metadata{}) {
				for _, v := range f.Enum {
					md := scalertest.WithPairs(defaults, "alignmentPeriodSeconds", "60", f.Name, v)
					if f.Name == "alignmentReducer" && v != "none" {
						md["alignmentAligner"] = "mean"
					}
					m, err := ParseMetadata(&scalers.TriggerConfig{Type: Type, Metadata: md, AuthParams: auth})
					if err != nil {
						t.Fatalf("%s=%s: %v", f.Name, v, err)
					}
					got := m.aggregation.GetPerSeriesAligner().String()
					if f.Name == "alignmentReducer" {
						got = m.aggregation.GetCrossSeriesReducer().String()
					}
					if !strings.HasSuffix(got, "_"+strings.ToUpper(v)) {
						t.Errorf("%s=%s became %s", f.Name, v, got)
					}
				}
			}
		}},
		{Name: "projectIdFromEnv", MD: map[string]string{"projectIdFromEnv": "PROJ", "filter": "f"}, Env: map[string]string{"PROJ": "p2"}, Auth: auth},
		{Name: "missing projectId", MD: scalertest.WithPairs(defaults, "projectId", scalertest.Delete), Auth: auth, WantErr: `"projectId"`},
		{Name: "bad projectId", MD: scalertest.WithPairs(defaults, "projectId", "projects/p1"), Auth: auth, WantErr: "projectId: want a project ID"},
		{Name: "missing filter", MD: scalertest.WithPairs(defaults, "filter", scalertest.Delete), Auth: auth, WantErr: `"filter"`},
		{Name: "blank filter", MD: scalertest.WithPairs(defaults, "filter", " "), Auth: auth, WantErr: "filter: must not be empty"},
		{Name: "targetValue text", MD: scalertest.WithPairs(defaults, "targetValue", "five"), Auth: auth, WantErr: "targetValue: want a finite number"},
		{Name: "targetValue zero", MD: scalertest.WithPairs(defaults, "targetValue", "0"), Auth: auth, WantErr: "targetValue: a metric target must be at least"},
		{Name: "activationTargetValue text", MD: scalertest.WithPairs(defaults, "activationTargetValue", "x"), Auth: auth, WantErr: "activationTargetValue"},
		{Name: "valueIfNull text", MD: scalertest.WithPairs(defaults, "valueIfNull", "none"), Auth: auth, WantErr: "valueIfNull"},
		{Name: "alignmentPeriodSeconds too short", MD: scalertest.WithPairs(defaults, "alignmentPeriodSeconds", "30"), Auth: auth, WantErr: "alignmentPeriodSeconds"},
		{Name: "alignmentPeriodSeconds text", MD: scalertest.WithPairs(defaults, "alignmentPeriodSeconds", "1m"), Auth: auth, WantErr: "alignmentPeriodSeconds"},
		{Name: "alignmentAligner unknown", MD: scalertest.WithPairs(defaults, "alignmentPeriodSeconds", "60", "alignmentAligner", "median"), Auth: auth, WantErr: "alignmentAligner"},
		{Name: "alignmentReducer unknown", MD: scalertest.WithPairs(defaults, "alignmentPeriodSeconds", "60", "alignmentReducer", "REDUCE_SUM"), Auth: auth, WantErr: "alignmentReducer"},
		{Name: "aligner without period", MD: scalertest.WithPairs(defaults, "alignmentAligner", "mean"), Auth: auth, WantErr: "alignmentAligner: needs alignmentPeriodSeconds"},
		{Name: "reducer without period", MD: scalertest.WithPairs(defaults, "alignmentReducer", "sum"), Auth: auth, WantErr: "alignmentReducer: needs alignmentPeriodSeconds"},
	}...), "PRIVATE KEY", "not-json-secret")
}

func TestSample(t *testing.T) {
	e := newEnv(t)
	vm := map[string]string{"instance_id": "1", "zone": "europe-west1-b"}
	s := e.scaler(t, e.trigger(map[string]string{"activationTargetValue": "10",
		"filter": `metric.type = "` + cpu + `" AND resource.labels.instance_id = "1"`}))
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External.Metric.Name != "s4-gcp-stackdriver-"+project || specs[0].External.Target.AverageValue.Value() != 50 {
		t.Fatalf("specs = %+v", specs)
	}
	e.put(cpu, vm, point{now.Add(-90 * time.Second), 0})
	if v, active := scalertest.Sample(t, s, specs[0].External.Metric.Name); v != 0 || active {
		t.Errorf("at 0: %v %v, want 0 false", v, active)
	}
	req := e.lastRequest()
	if req.GetName() != "projects/"+project || req.GetAggregation() != nil ||
		req.GetFilter() != `metric.type = "`+cpu+`" AND resource.labels.instance_id = "1" AND resource.labels.project_id="`+project+`"` ||
		!req.GetInterval().GetEndTime().AsTime().Equal(now) || !req.GetInterval().GetStartTime().AsTime().Equal(now.Add(-2*time.Minute)) {
		t.Errorf("request = %v", req)
	}
	e.put(cpu, vm, point{now.Add(-60 * time.Second), 10})
	if v, active := scalertest.Sample(t, s, ""); v != 10 || active {
		t.Errorf("at activation: %v %v, want 10 false", v, active)
	}
	// The newest point in the window wins; points outside it do not count.
	e.put(cpu, vm, point{now.Add(-30 * time.Second), 72.5}, point{now.Add(time.Minute), 999}, point{now.Add(-3 * time.Minute), 888})
	e.put(cpu, map[string]string{"instance_id": "2"}, point{now.Add(-10 * time.Second), 555})
	if v, active := scalertest.Sample(t, s, ""); v != 72.5 || !active {
		t.Errorf("above target: %v %v, want 72.5 true", v, active)
	}
}

func TestAggregation(t *testing.T) {
	e := newEnv(t)
	e.put(cpu, map[string]string{"instance_id": "1"}, point{now.Add(-4 * time.Minute), 10}, point{now.Add(-time.Minute), 30})
	e.put(cpu, map[string]string{"instance_id": "2"}, point{now.Add(-2 * time.Minute), 40})
	s := e.scaler(t, e.trigger(map[string]string{"alignmentPeriodSeconds": "300", "alignmentAligner": "mean", "alignmentReducer": "sum"}))
	// mean per series over five minutes (20 and 40), summed across the two: 60.
	if v, active := scalertest.Sample(t, s, ""); v != 60 || !active {
		t.Errorf("mean then sum: %v %v, want 60 true", v, active)
	}
	agg := e.lastRequest().GetAggregation()
	if agg.GetAlignmentPeriod().AsDuration() != 5*time.Minute || agg.GetPerSeriesAligner() != monitoringpb.Aggregation_ALIGN_MEAN ||
		agg.GetCrossSeriesReducer() != monitoringpb.Aggregation_REDUCE_SUM ||
		!e.lastRequest().GetInterval().GetStartTime().AsTime().Equal(now.Add(-5*time.Minute)) {
		t.Errorf("aggregation = %v, interval %v", agg, e.lastRequest().GetInterval())
	}
	// Monitoring refuses what the fake does not model; the error names the call.
	s = e.scaler(t, e.trigger(map[string]string{"alignmentPeriodSeconds": "60", "alignmentAligner": "stddev"}))
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "InvalidArgument") || !strings.Contains(err.Error(), "ListTimeSeries") {
		t.Errorf("refused aggregation: %v", err)
	}
}

func TestNoData(t *testing.T) {
	e := newEnv(t)
	s := e.scaler(t, e.trigger(nil))
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "no point in the last 2m0s") {
		t.Errorf("no data: %v, want an error (never a silent 0)", err)
	}
	s = e.scaler(t, e.trigger(map[string]string{"valueIfNull": "3", "activationTargetValue": "2"}))
	if v, active := scalertest.Sample(t, s, ""); v != 3 || !active {
		t.Errorf("valueIfNull: %v %v, want 3 true", v, active)
	}
}

func TestAuthFailure(t *testing.T) {
	e := newEnv(t)
	other, _ := monitoringfake.ServiceAccount(t, project, "http://127.0.0.1:1/token")
	log, logs := scalertest.ObservedLogger()
	cfg := e.trigger(nil)
	cfg.AuthParams["GoogleApplicationCredentials"], cfg.Logger = other, log
	_, _, err := e.scaler(t, cfg).Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Unauthenticated") || !strings.Contains(err.Error(), "gcp-stackdriver trigger #4") {
		t.Fatalf("wrong key: %v, want Unauthenticated naming the trigger", err)
	}
	scalertest.AssertNoSecret(t, monitoringfake.PrivateKeyLine(t, other), err.Error(), logs.All())

	// Credentials read from a variable are redacted too, and another project is refused.
	cfg = e.trigger(map[string]string{"projectId": "someone-else", "credentialsFromEnv": "GCP_JSON"})
	cfg.AuthParams, cfg.ResolvedEnv, cfg.Logger = nil, map[string]string{"GCP_JSON": e.mon.Credentials}, log
	_, _, err = e.scaler(t, cfg).Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("other project: %v, want PermissionDenied", err)
	}
	scalertest.AssertNoSecret(t, monitoringfake.PrivateKeyLine(t, e.mon.Credentials), err.Error(), logs.All())
}

func TestServerDown(t *testing.T) {
	e := newEnv(t)
	e.put(cpu, map[string]string{"instance_id": "1"}, point{now.Add(-time.Minute), 1})
	scalertest.SourceDown(t, e.scaler(t, e.trigger(nil)), e.mon.Stop, "ListTimeSeries")
}

// BenchmarkSample measures one ListTimeSeries over TLS gRPC with a self-signed JWT against the fake Monitoring
// service.
func BenchmarkSample(b *testing.B) {
	e := newEnv(b)
	e.put(cpu, map[string]string{"instance_id": "1"}, point{now.Add(-time.Minute), 42})
	scalertest.BenchmarkSample(b, e.scaler(b, e.trigger(nil)))
}
