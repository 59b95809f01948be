// Package gcpstackdriver implements the gcp-stackdriver trigger: KEDA's Google Cloud Platform Stackdriver
// scaler. It reads any Cloud Monitoring time series selected by a filter with ListTimeSeries, optionally aligned
// and reduced to one series, and scales on its newest point.
//
// Metadata (KEDA names):
//
//	projectId               the project whose time series are read (required)
//	filter                  a Monitoring filter, e.g. metric.type="storage.googleapis.com/network/received_bytes_count"
//	targetValue             target per replica, default 5
//	activationTargetValue   default 0; active when the value is above it
//	alignmentPeriodSeconds  optional, at least 60: align the points of each series over that period; with it,
//	alignmentAligner        the per-series aligner (default none) and
//	alignmentReducer        the cross-series reducer (default none), lower-case as in KEDA (mean, sum, max,
//	                        percentile_99, ...)
//	valueIfNull             value when Monitoring has no point in the window; without it that is an error, so a
//	                        metric gap never scales a workload to zero
//	credentials             authParams GoogleApplicationCredentials, credentialsFromEnv or credentialsFromEnvFile:
//	                        see scalers/gcp
//
// The window is the last two minutes, or the alignment period when that is longer. As in KEDA, the filter is
// narrowed to the project's resources (AND resource.labels.project_id="<projectId>") and the first series
// returned is read (give a filter or a reducer that selects one); of its points the newest counts. Monitoring
// cannot notify, so this trigger polls. The metric is s<index>-gcp-stackdriver-<projectId>, as in KEDA.
package gcpstackdriver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/gcp"
	"github.com/tidalscale/tidal/scalers/onemetric"
)

// Type is the trigger type served by this package.
const Type = "gcp-stackdriver"

// window is how far back a query without a longer alignment period looks (KEDA's two minutes).
const window = 2 * time.Minute

// Register adds the gcp-stackdriver trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the gcp-stackdriver trigger's metadata.
type Metadata struct {
	ProjectID             string   `tidal:"name=projectId"`
	Filter                string   `tidal:"name=filter"`
	TargetValue           float64  `tidal:"name=targetValue,default=5,target"`
	ActivationTargetValue float64  `tidal:"name=activationTargetValue,default=0"`
	ValueIfNull           *float64 `tidal:"name=valueIfNull,optional"`

	AlignmentPeriodSeconds int64  `tidal:"name=alignmentPeriodSeconds,optional,range=60;"`
	AlignmentAligner       string `tidal:"name=alignmentAligner,default=none,enum=none;delta;interpolate;next_older;min;max;mean;count;sum;stddev;count_true;count_false;fraction_true;percentile_99;percentile_95;percentile_50;percentile_05;percent_change;rate"`
	AlignmentReducer       string `tidal:"name=alignmentReducer,default=none,enum=none;mean;min;max;sum;stddev;count;count_true;count_false;fraction_true;percentile_99;percentile_95;percentile_50;percentile_05"`

	gcp.Credentials

	aggregation *monitoringpb.Aggregation
}

// Validate applies the cross-field rules, builds the aggregation and loads the credentials.
func (m *Metadata) Validate() error {
	var errs []error
	if strings.TrimSpace(m.ProjectID) == "" || strings.ContainsAny(m.ProjectID, "/ ") {
		errs = append(errs, fmt.Errorf("projectId: want a project ID, got %q", m.ProjectID))
	}
	if strings.TrimSpace(m.Filter) == "" {
		errs = append(errs, errors.New("filter: must not be empty"))
	}
	if m.AlignmentPeriodSeconds == 0 {
		if m.AlignmentAligner != "none" {
			errs = append(errs, errors.New("alignmentAligner: needs alignmentPeriodSeconds"))
		}
		if m.AlignmentReducer != "none" {
			errs = append(errs, errors.New("alignmentReducer: needs alignmentPeriodSeconds"))
		}
	} else {
		m.aggregation = &monitoringpb.Aggregation{
			AlignmentPeriod: durationpb.New(time.Duration(m.AlignmentPeriodSeconds) * time.Second),
			// KEDA's names are Monitoring's without the prefix, in lower case (the enum tags list them).
			PerSeriesAligner:   monitoringpb.Aggregation_Aligner(monitoringpb.Aggregation_Aligner_value["ALIGN_"+strings.ToUpper(m.AlignmentAligner)]),
			CrossSeriesReducer: monitoringpb.Aggregation_Reducer(monitoringpb.Aggregation_Reducer_value["REDUCE_"+strings.ToUpper(m.AlignmentReducer)]),
		}
	}
	if err := m.Load(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParseMetadata parses and validates a gcp-stackdriver trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	return gcp.ParseMetadata[Metadata](cfg)
}

// Scaler is a gcp-stackdriver trigger.
type Scaler struct {
	gcp.Monitor
	meta   Metadata
	filter string
}

// New builds a gcp-stackdriver trigger with a Cloud Monitoring client: one External metric,
// s<index>-gcp-stackdriver-<projectId>, targeting targetValue and active above activationTargetValue. The
// connection opens lazily.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return newScaler(ctx, cfg, time.Now)
}

// newScaler lets tests add client options (the fake Monitoring endpoint) and a clock.
func newScaler(ctx context.Context, cfg *scalers.TriggerConfig, now func() time.Time, opts ...option.ClientOption) (*Scaler, error) {
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return nil, err
	}
	// As KEDA does: only the project's own resources.
	s := &Scaler{meta: meta, filter: fmt.Sprintf(`%s AND resource.labels.project_id=%q`, meta.Filter, meta.ProjectID)}
	base := onemetric.New(cfg, cfg.MetricName("gcp-stackdriver", meta.ProjectID), meta.TargetValue, meta.ActivationTargetValue, s.read)
	if s.Monitor, err = meta.NewMonitor(ctx, base, now, opts...); err != nil {
		return nil, err
	}
	return s, nil
}

// request builds the ListTimeSeries request for the window ending at now.
func (s *Scaler) request(now time.Time) *monitoringpb.ListTimeSeriesRequest {
	back := max(window, time.Duration(s.meta.AlignmentPeriodSeconds)*time.Second)
	return &monitoringpb.ListTimeSeriesRequest{
		Name:        "projects/" + s.meta.ProjectID,
		Filter:      s.filter,
		Interval:    &monitoringpb.TimeInterval{StartTime: timestamppb.New(now.Add(-back)), EndTime: timestamppb.New(now)},
		Aggregation: s.meta.aggregation,
		View:        monitoringpb.ListTimeSeriesRequest_FULL,
	}
}

// read returns the newest point of the first series in the window.
func (s *Scaler) read(ctx context.Context) (float64, error) {
	ts, err := s.Client.ListTimeSeries(ctx, s.request(s.Now())).Next()
	if errors.Is(err, iterator.Done) || (err == nil && len(ts.GetPoints()) == 0) {
		if s.meta.ValueIfNull != nil {
			return *s.meta.ValueIfNull, nil
		}
		return 0, s.Cfg.Errorf("filter %s: Monitoring has no point in the last %v (set valueIfNull to use a default)",
			s.meta.Filter, max(window, time.Duration(s.meta.AlignmentPeriodSeconds)*time.Second))
	}
	if err != nil {
		if msg := s.Redact(err.Error()); msg != err.Error() {
			return 0, s.Cfg.Errorf("projectId %s: Monitoring ListTimeSeries: %s", s.meta.ProjectID, msg)
		}
		return 0, s.Cfg.Errorf("projectId %s: Monitoring ListTimeSeries: %w", s.meta.ProjectID, err)
	}
	var newest gcp.Newest
	if bad := newest.Add(ts.GetPoints()); bad != nil {
		return 0, s.Cfg.Errorf("filter %s: the metric is not a number (%T); align it (alignmentPeriodSeconds, alignmentAligner) to read one", s.meta.Filter, bad.GetValue())
	}
	return newest.Value, nil
}
