// Package awskinesis implements the aws-kinesis-stream trigger: KEDA's AWS Kinesis Stream scaler. It scales on
// a stream's open shard count (DescribeStreamSummary), one consumer replica per shardCount shards.
//
// Metadata (KEDA names):
//
//	streamName            required
//	shardCount            target shards per replica, default 2
//	activationShardCount  default 0; active when the open shard count is above it
//	awsRegion, awsEndpoint, identityOwner and the credentials: see scalers/awsauth
//
// The metric is s<index>-aws-kinesis-<streamName>. Kinesis cannot notify about resharding, so this trigger polls.
package awskinesis

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth"
)

// Type is the trigger type served by this package.
const Type = "aws-kinesis-stream"

// Register adds the aws-kinesis-stream trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the aws-kinesis-stream trigger's metadata.
type Metadata struct {
	awsauth.Metadata

	StreamName           string `tidal:"name=streamName"`
	ShardCount           int64  `tidal:"name=shardCount,default=2,range=1;"`
	ActivationShardCount int64  `tidal:"name=activationShardCount,default=0,range=0;"`
}

// Validate checks the stream name and the AWS parameters.
func (m *Metadata) Validate() error {
	errs := []error{m.Metadata.Validate()}
	if strings.TrimSpace(m.StreamName) == "" {
		errs = append(errs, errors.New("streamName: must not be empty"))
	}
	return errors.Join(errs...)
}

// ParseMetadata parses and validates an aws-kinesis-stream trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	return awsauth.ParseMetadata[Metadata](cfg)
}

// Scaler is an aws-kinesis-stream trigger.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	client     *kinesis.Client
	log        *zap.Logger
}

// New builds an aws-kinesis-stream trigger. Nothing is sent to AWS until the first Sample.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return nil, err
	}
	awsCfg, err := meta.TriggerConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Scaler{
		cfg:        cfg,
		meta:       meta,
		metricName: cfg.MetricName("aws-kinesis", meta.StreamName),
		client:     kinesis.NewFromConfig(awsCfg),
		log:        cfg.Logger.With(zap.String("trigger", cfg.ID())),
	}, nil
}

// MetricSpecs returns one External metric, s<index>-aws-kinesis-<stream>, targeting shardCount.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, float64(s.meta.ShardCount))}
}

// Sample reads the open shard count; active above activationShardCount.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, scalers.CallTimeout)
	defer cancel()
	out, err := s.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.meta.StreamName)})
	if err != nil {
		err = s.cfg.Errorf("streamName %s: DescribeStreamSummary: %s", s.meta.StreamName, s.meta.Redact(err.Error()))
		s.log.Debug("aws-kinesis-stream sample failed", zap.String("error", err.Error()))
		return nil, false, err
	}
	if out.StreamDescriptionSummary == nil || out.StreamDescriptionSummary.OpenShardCount == nil {
		return nil, false, s.cfg.Errorf("streamName %s: DescribeStreamSummary returned no OpenShardCount", s.meta.StreamName)
	}
	n := int64(*out.StreamDescriptionSummary.OpenShardCount)
	return []scalers.Sample{{MetricName: s.metricName, Value: float64(n)}}, n > s.meta.ActivationShardCount, nil
}

// Close releases nothing: the SDK client holds idle connections only.
func (s *Scaler) Close(context.Context) error { return nil }
