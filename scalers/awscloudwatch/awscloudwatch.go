// Package awscloudwatch implements the aws-cloudwatch trigger: KEDA's AWS CloudWatch scaler. It reads one
// CloudWatch metric, or the result of a metric math / Metrics Insights expression, with GetMetricData and scales
// on the newest datapoint.
//
// Metadata (KEDA names):
//
//	namespace, metricName        the metric (both required unless expression is given)
//	dimensionName, dimensionValue  semicolon-separated lists of the same length (optional)
//	expression                   a metric math or Metrics Insights query; replaces namespace/metricName/dimensions
//	targetMetricValue            target per replica (required)
//	activationTargetMetricValue  default 0; active when the value is above it
//	minMetricValue               value when CloudWatch returns no datapoint, default 0
//	ignoreNullValues             default true; false makes "no datapoint" an error instead of minMetricValue
//	metricStat                   statistic, default Average (SampleCount, Sum, Minimum, Maximum, or pNN / tmNN...)
//	metricStatPeriod             seconds, default 300: 1, 5, 10, 30 or a multiple of 60
//	metricCollectionTime         seconds looked back, default 300; a multiple of metricStatPeriod
//	metricEndTimeOffset          seconds the window ends before now, default 0
//	metricUnit                   a CloudWatch standard unit (optional)
//	awsRegion, awsEndpoint, identityOwner and the credentials: see scalers/awsauth
//
// The query window is KEDA's: end = now - metricEndTimeOffset truncated to metricStatPeriod, start = end -
// metricCollectionTime; the datapoints are scanned newest first. The metric is s<index>-aws-cloudwatch, as in
// KEDA. CloudWatch cannot notify, so this trigger polls.
package awscloudwatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth"
	"github.com/tidalscale/tidal/scalers/onemetric"
)

// Type is the trigger type served by this package.
const Type = "aws-cloudwatch"

// Register adds the aws-cloudwatch trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the aws-cloudwatch trigger's metadata.
type Metadata struct {
	awsauth.Metadata

	Namespace      string `tidal:"name=namespace,optional"`
	MetricName     string `tidal:"name=metricName,optional"`
	DimensionName  string `tidal:"name=dimensionName,optional"`
	DimensionValue string `tidal:"name=dimensionValue,optional"`
	Expression     string `tidal:"name=expression,optional"`

	TargetMetricValue           float64 `tidal:"name=targetMetricValue,target"`
	ActivationTargetMetricValue float64 `tidal:"name=activationTargetMetricValue,default=0"`
	MinMetricValue              float64 `tidal:"name=minMetricValue,default=0"`
	IgnoreNullValues            bool    `tidal:"name=ignoreNullValues,default=true"`

	MetricStat           string `tidal:"name=metricStat,default=Average"`
	MetricStatPeriod     int64  `tidal:"name=metricStatPeriod,default=300,range=1;"`
	MetricCollectionTime int64  `tidal:"name=metricCollectionTime,default=300,range=1;"`
	MetricEndTimeOffset  int64  `tidal:"name=metricEndTimeOffset,default=0,range=0;"`
	MetricUnit           string `tidal:"name=metricUnit,optional"`

	dimensions []types.Dimension
}

// Validate applies KEDA's cross-field rules and builds the dimensions.
func (m *Metadata) Validate() error {
	errs := []error{m.Metadata.Validate()}
	if strings.TrimSpace(m.Expression) == "" {
		m.Expression = ""
		if strings.TrimSpace(m.Namespace) == "" {
			errs = append(errs, errors.New("namespace: required unless expression is given"))
		}
		if strings.TrimSpace(m.MetricName) == "" {
			errs = append(errs, errors.New("metricName: required unless expression is given"))
		}
		if err := m.buildDimensions(); err != nil {
			errs = append(errs, err)
		}
	}
	if !validStat(m.MetricStat) {
		errs = append(errs, fmt.Errorf("metricStat: want SampleCount, Average, Sum, Minimum, Maximum or an extended statistic such as p99, got %q", m.MetricStat))
	}
	if p := m.MetricStatPeriod; p < 60 && !slices.Contains([]int64{1, 5, 10, 30}, p) || p >= 60 && p%60 != 0 {
		errs = append(errs, fmt.Errorf("metricStatPeriod: want 1, 5, 10, 30 or a multiple of 60, got %d", p))
	} else if m.MetricCollectionTime%p != 0 {
		errs = append(errs, fmt.Errorf("metricCollectionTime: must be a multiple of metricStatPeriod (%d), got %d", p, m.MetricCollectionTime))
	}
	if m.MetricUnit != "" && !slices.Contains(types.StandardUnit("").Values(), types.StandardUnit(m.MetricUnit)) {
		errs = append(errs, fmt.Errorf("metricUnit: %q is not a CloudWatch standard unit", m.MetricUnit))
	}
	return errors.Join(errs...)
}

func (m *Metadata) buildDimensions() error {
	names, values := splitList(m.DimensionName), splitList(m.DimensionValue)
	if len(names) != len(values) {
		return fmt.Errorf("dimensionName, dimensionValue: want lists of the same length, got %d names and %d values", len(names), len(values))
	}
	m.dimensions = nil
	for i, n := range names {
		if n == "" || values[i] == "" {
			return fmt.Errorf("dimensionName, dimensionValue: entry %d is empty", i+1)
		}
		m.dimensions = append(m.dimensions, types.Dimension{Name: aws.String(n), Value: aws.String(values[i])})
	}
	return nil
}

func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ";")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// validStat accepts CloudWatch's statistics: the five basic ones and the extended (percentile and trimmed)
// ones such as p99, p99.9, tm90, wm(10%:90%), TC(0.005:0.030), PR(:300).
func validStat(s string) bool {
	if slices.Contains(types.Statistic("").Values(), types.Statistic(s)) {
		return true
	}
	for _, prefix := range []string{"p", "tm", "wm", "tc", "ts", "TM", "WM", "TC", "TS", "PR", "IQM"} {
		rest, ok := strings.CutPrefix(s, prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return prefix == "IQM"
		}
		return strings.IndexFunc(rest, func(r rune) bool { return !strings.ContainsRune("0123456789.:%()", r) }) < 0
	}
	return false
}

// ParseMetadata parses and validates an aws-cloudwatch trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	return awsauth.ParseMetadata[Metadata](cfg)
}

// Scaler is an aws-cloudwatch trigger.
type Scaler struct {
	onemetric.Base
	meta   Metadata
	client *cloudwatch.Client
	now    func() time.Time
}

// New builds an aws-cloudwatch trigger: one External metric, s<index>-aws-cloudwatch, targeting
// targetMetricValue and active above activationTargetMetricValue. Nothing is sent to AWS until the first Sample.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return newScaler(ctx, cfg, time.Now)
}

// newScaler lets tests set the clock that places the query window.
func newScaler(ctx context.Context, cfg *scalers.TriggerConfig, now func() time.Time) (*Scaler, error) {
	meta, awsCfg, err := awsauth.Build[Metadata](ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Scaler{meta: meta, client: cloudwatch.NewFromConfig(awsCfg), now: now}
	s.Base = onemetric.New(cfg, cfg.MetricName("aws-cloudwatch", ""), meta.TargetMetricValue, meta.ActivationTargetMetricValue, s.read)
	return s, nil
}

// input builds KEDA's GetMetricData request for the window ending at now.
func (s *Scaler) input(now time.Time) *cloudwatch.GetMetricDataInput {
	period := time.Duration(s.meta.MetricStatPeriod) * time.Second
	end := now.Add(-time.Duration(s.meta.MetricEndTimeOffset) * time.Second).Truncate(period)
	start := end.Add(-time.Duration(s.meta.MetricCollectionTime) * time.Second)
	q := types.MetricDataQuery{Period: aws.Int32(int32(s.meta.MetricStatPeriod))}
	if s.meta.Expression != "" {
		q.Id, q.Expression = aws.String("q1"), aws.String(s.meta.Expression)
	} else {
		q.Id, q.Period, q.ReturnData = aws.String("c1"), nil, aws.Bool(true)
		q.MetricStat = &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String(s.meta.Namespace), MetricName: aws.String(s.meta.MetricName),
				Dimensions: s.meta.dimensions},
			Period: aws.Int32(int32(s.meta.MetricStatPeriod)),
			Stat:   aws.String(s.meta.MetricStat),
			Unit:   types.StandardUnit(s.meta.MetricUnit),
		}
	}
	return &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end),
		ScanBy:            types.ScanByTimestampDescending,
		MetricDataQueries: []types.MetricDataQuery{q},
	}
}

func (s *Scaler) read(ctx context.Context) (float64, error) {
	out, err := s.client.GetMetricData(ctx, s.input(s.now()))
	if err != nil {
		if msg := s.meta.Redact(err.Error()); msg != err.Error() {
			return 0, s.Cfg.Errorf("%s: GetMetricData: %s", s.query(), msg)
		}
		return 0, s.Cfg.Errorf("%s: GetMetricData: %w", s.query(), err)
	}
	if len(out.MetricDataResults) > 0 {
		r := out.MetricDataResults[0]
		if r.StatusCode == types.StatusCodeForbidden || r.StatusCode == types.StatusCodeInternalError {
			return 0, s.Cfg.Errorf("%s: GetMetricData status %s", s.query(), r.StatusCode)
		}
		if len(r.Values) > 0 {
			return r.Values[0], nil // ScanBy TimestampDescending: the newest first
		}
	}
	if !s.meta.IgnoreNullValues {
		return 0, s.Cfg.Errorf("%s: CloudWatch returned no datapoint and ignoreNullValues is false", s.query())
	}
	return s.meta.MinMetricValue, nil
}

// query names what is read, for errors.
func (s *Scaler) query() string {
	if s.meta.Expression != "" {
		return fmt.Sprintf("expression %q", s.meta.Expression)
	}
	return fmt.Sprintf("metric %s/%s", s.meta.Namespace, s.meta.MetricName)
}
