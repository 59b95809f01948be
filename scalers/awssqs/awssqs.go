// Package awssqs implements the aws-sqs-queue trigger: KEDA's AWS SQS Queue scaler. It reads a queue's
// approximate message counts with GetQueueAttributes.
//
// Metadata (KEDA names):
//
//	queueURL               the queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>) or, as in KEDA,
//	                       a bare queue name (resolved once with GetQueueUrl); queueURLFromEnv reads it from the
//	                       target's container
//	queueLength            target messages per replica, default 5
//	activationQueueLength  default 0; active when the count is above it
//	scaleOnInFlight        default true: count ApproximateNumberOfMessagesNotVisible (received, not deleted)
//	scaleOnDelayed         default false: count ApproximateNumberOfMessagesDelayed
//	awsRegion, awsEndpoint, identityOwner and the credentials: see scalers/awsauth
//
// The metric is s<index>-aws-sqs-<queue name>, as in KEDA. SQS cannot notify, so this trigger polls.
package awssqs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth"
	"github.com/tidalscale/tidal/scalers/onemetric"
)

// Type is the trigger type served by this package.
const Type = "aws-sqs-queue"

// Register adds the aws-sqs-queue trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the aws-sqs-queue trigger's metadata.
type Metadata struct {
	awsauth.Metadata

	QueueURL              string `tidal:"name=queueURL"`
	QueueLength           int64  `tidal:"name=queueLength,default=5,range=1;"`
	ActivationQueueLength int64  `tidal:"name=activationQueueLength,default=0,range=0;"`
	ScaleOnInFlight       bool   `tidal:"name=scaleOnInFlight,default=true"`
	ScaleOnDelayed        bool   `tidal:"name=scaleOnDelayed,default=false"`

	// queueName is the last path segment of QueueURL, or QueueURL itself when it is a bare name.
	queueName string
	// isName reports that QueueURL is a bare queue name to resolve with GetQueueUrl.
	isName bool
}

// Validate derives the queue name from queueURL the way KEDA does (the URL's path is /<account>/<name>) and
// checks the AWS parameters.
func (m *Metadata) Validate() error {
	errs := []error{m.Metadata.Validate()}
	u, err := url.ParseRequestURI(m.QueueURL)
	switch {
	case strings.TrimSpace(m.QueueURL) == "":
		errs = append(errs, errors.New("queueURL: must not be empty"))
	case err != nil:
		if strings.ContainsAny(m.QueueURL, "/: ") {
			errs = append(errs, fmt.Errorf("queueURL: want https://sqs.<region>.amazonaws.com/<account>/<name> or a queue name, got %q", m.QueueURL))
		}
		m.queueName, m.isName = m.QueueURL, true
	default:
		parts := strings.Split(u.Path, "/")
		if (u.Scheme != "http" && u.Scheme != "https") || len(parts) != 3 || parts[2] == "" {
			errs = append(errs, fmt.Errorf("queueURL: want https://sqs.<region>.amazonaws.com/<account>/<name>, got %q", m.QueueURL))
		} else {
			m.queueName = parts[2]
		}
	}
	return errors.Join(errs...)
}

// ParseMetadata parses and validates an aws-sqs-queue trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	return awsauth.ParseMetadata[Metadata](cfg)
}

// Scaler is an aws-sqs-queue trigger.
type Scaler struct {
	onemetric.Base
	meta   Metadata
	client *sqs.Client
	attrs  []types.QueueAttributeName

	mu       sync.Mutex
	queueURL string // resolved on first use when the metadata names the queue only
}

// New builds an aws-sqs-queue trigger: one External metric, s<index>-aws-sqs-<queue>, targeting queueLength and
// active above activationQueueLength. Nothing is sent to AWS until the first Sample.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, awsCfg, err := awsauth.Build[Metadata](ctx, cfg)
	if err != nil {
		return nil, err
	}
	attrs := []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}
	if meta.ScaleOnInFlight {
		attrs = append(attrs, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
	}
	if meta.ScaleOnDelayed {
		attrs = append(attrs, types.QueueAttributeNameApproximateNumberOfMessagesDelayed)
	}
	s := &Scaler{meta: meta, client: sqs.NewFromConfig(awsCfg), attrs: attrs}
	s.Base = onemetric.New(cfg, cfg.MetricName("aws-sqs", meta.queueName), float64(meta.QueueLength), float64(meta.ActivationQueueLength), s.length)
	if !meta.isName {
		s.queueURL = meta.QueueURL
	}
	return s, nil
}

// length reads the queue's counts and sums the ones the metadata asks for.
func (s *Scaler) length(ctx context.Context) (float64, error) {
	qURL, err := s.resolve(ctx)
	if err != nil {
		return 0, err
	}
	out, err := s.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(qURL), AttributeNames: s.attrs})
	if err != nil {
		return 0, s.Cfg.Errorf("queueURL %s: GetQueueAttributes: %s", qURL, s.meta.Redact(err.Error()))
	}
	var total int64
	for _, a := range s.attrs {
		raw, ok := out.Attributes[string(a)]
		if !ok {
			return 0, s.Cfg.Errorf("queueURL %s: GetQueueAttributes returned no %s", qURL, a)
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return 0, s.Cfg.Errorf("queueURL %s: %s is not a count: %q", qURL, a, raw)
		}
		total += n
	}
	return float64(total), nil
}

// resolve returns the queue URL, asking GetQueueUrl once when the metadata gave a bare name.
func (s *Scaler) resolve(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queueURL != "" {
		return s.queueURL, nil
	}
	out, err := s.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(s.meta.queueName)})
	if err != nil {
		return "", s.Cfg.Errorf("queueURL: GetQueueUrl for queue %q: %s", s.meta.queueName, s.meta.Redact(err.Error()))
	}
	s.queueURL = aws.ToString(out.QueueUrl)
	return s.queueURL, nil
}
