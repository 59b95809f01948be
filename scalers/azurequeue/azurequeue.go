// Package azurequeue is Tidal's Azure Storage Queue scaler: trigger type "azure-queue", with KEDA's metadata
// names, defaults and semantics. The metric is the queue's approximate message count (queue properties); with
// queueLengthStrategy visibleonly it is the number of visible messages, peeked up to 32, falling back to the
// approximate count when 32 or more are visible.
//
// Authentication: a storage connection string (authParams connection, or connectionFromEnv), or accountName
// (with cloud / endpointSuffix) and the workload identity of the Tidal pod.
package azurequeue

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "azure-queue"

// maxPeek is how many messages the visibleonly strategy peeks, the service's maximum.
const maxPeek = 32

// Metadata is the azure-queue trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	QueueName             string `tidal:"name=queueName"`
	QueueLength           int64  `tidal:"name=queueLength,default=5,target"`
	ActivationQueueLength int64  `tidal:"name=activationQueueLength,default=0,range=0;"`
	QueueLengthStrategy   string `tidal:"name=queueLengthStrategy,default=all,enum=all;visibleonly"`
	azure.Storage
}

// Validate checks the queue name and the connection.
func (m *Metadata) Validate() error {
	var errs []error
	if m.QueueName == "" {
		errs = append(errs, errors.New("queueName: must not be empty"))
	}
	if err := m.Resolve("queue"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Scaler reads one queue's length.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	client     *azqueue.QueueClient
	release    func() error
}

var _ scalers.Scaler = (*Scaler)(nil)

// Register adds the azure-queue scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger and builds the queue client; nothing is sent until Sample.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	client, release, err := azure.NewClient(cfg, TriggerType, &meta.Storage, meta.QueueName,
		func(conn, name string, o policy.ClientOptions) (*azqueue.QueueClient, error) {
			return azqueue.NewQueueClientFromConnectionString(conn, name, &azqueue.ClientOptions{ClientOptions: o})
		},
		func(url string, cred azcore.TokenCredential, o policy.ClientOptions) (*azqueue.QueueClient, error) {
			return azqueue.NewQueueClient(url, cred, &azqueue.ClientOptions{ClientOptions: o})
		})
	if err != nil {
		return nil, err
	}
	return &Scaler{cfg: cfg, meta: meta, metricName: cfg.MetricName("azure-queue", meta.QueueName), client: client, release: release}, nil
}

// MetricSpecs returns one External metric with queueLength as its target.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, float64(s.meta.QueueLength))}
}

// Sample reads the message count; the trigger is active when it exceeds activationQueueLength.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	n, err := s.count(ctx)
	if err != nil {
		return nil, false, s.cfg.Errorf("queue %q: %w", s.meta.QueueName, err)
	}
	return []scalers.Sample{{MetricName: s.metricName, Value: float64(n)}}, n > s.meta.ActivationQueueLength, nil
}

func (s *Scaler) count(ctx context.Context) (int64, error) {
	if s.meta.QueueLengthStrategy == "visibleonly" {
		peeked, err := s.client.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to(int32(maxPeek))})
		if err != nil {
			return 0, fmt.Errorf("peeking messages: %w", azure.Describe(err))
		}
		if len(peeked.Messages) < maxPeek {
			return int64(len(peeked.Messages)), nil
		}
	}
	props, err := s.client.GetProperties(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("reading queue properties: %w", azure.Describe(err))
	}
	if props.ApproximateMessagesCount == nil {
		return 0, errors.New("the service returned no approximate message count")
	}
	return *props.ApproximateMessagesCount, nil
}

func to[T any](v T) *T { return &v }

// Close releases the shared transport.
func (s *Scaler) Close(context.Context) error { return s.release() }
