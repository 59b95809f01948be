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

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure"
	"github.com/tidalscale/tidal/scalers/onemetric"
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
	onemetric.Base
	meta   Metadata
	client *azqueue.QueueClient
}

// Register adds the azure-queue scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger and builds the queue client; nothing is sent until Sample. The one External metric
// targets queueLength; the trigger is active when the count exceeds activationQueueLength.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	client, release, err := azure.NewClient(cfg, TriggerType, &meta.Storage, meta.QueueName,
		azqueue.NewQueueClientFromConnectionString, azqueue.NewQueueClient,
		func(o policy.ClientOptions) *azqueue.ClientOptions { return &azqueue.ClientOptions{ClientOptions: o} })
	if err != nil {
		return nil, err
	}
	s := &Scaler{meta: meta, client: client}
	s.Base = onemetric.New(cfg, cfg.MetricName("azure-queue", meta.QueueName), float64(meta.QueueLength), float64(meta.ActivationQueueLength), s.count)
	s.Source, s.Release = fmt.Sprintf("queue %q", meta.QueueName), release
	return s, nil
}

// count reads the message count.
func (s *Scaler) count(ctx context.Context) (float64, error) {
	if s.meta.QueueLengthStrategy == "visibleonly" {
		peeked, err := s.client.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to(int32(maxPeek))})
		if err != nil {
			return 0, fmt.Errorf("peeking messages: %w", azure.Describe(err))
		}
		if len(peeked.Messages) < maxPeek {
			return float64(len(peeked.Messages)), nil
		}
	}
	props, err := s.client.GetProperties(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("reading queue properties: %w", azure.Describe(err))
	}
	if props.ApproximateMessagesCount == nil {
		return 0, errors.New("the service returned no approximate message count")
	}
	return float64(*props.ApproximateMessagesCount), nil
}

func to[T any](v T) *T { return &v }
