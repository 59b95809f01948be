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

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth"
	"github.com/tidalscale/tidal/scalers/onemetric"
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
	onemetric.Base
	meta   Metadata
	client *kinesis.Client
}

// New builds an aws-kinesis-stream trigger: one External metric, s<index>-aws-kinesis-<stream>, targeting
// shardCount and active above activationShardCount. Nothing is sent to AWS until the first Sample.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, awsCfg, err := awsauth.Build[Metadata](ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Scaler{meta: meta, client: kinesis.NewFromConfig(awsCfg)}
	s.Base = onemetric.New(cfg, cfg.MetricName("aws-kinesis", meta.StreamName), float64(meta.ShardCount), float64(meta.ActivationShardCount), s.read)
	return s, nil
}

// read returns the stream's open shard count.
func (s *Scaler) read(ctx context.Context) (float64, error) {
	out, err := s.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.meta.StreamName)})
	if err != nil {
		return 0, s.Cfg.Errorf("streamName %s: DescribeStreamSummary: %s", s.meta.StreamName, s.meta.Redact(err.Error()))
	}
	if out.StreamDescriptionSummary == nil || out.StreamDescriptionSummary.OpenShardCount == nil {
		return 0, s.Cfg.Errorf("streamName %s: DescribeStreamSummary returned no OpenShardCount", s.meta.StreamName)
	}
	return float64(*out.StreamDescriptionSummary.OpenShardCount), nil
}
