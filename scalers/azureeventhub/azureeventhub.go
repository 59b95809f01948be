// Package azureeventhub is Tidal's Azure Event Hubs scaler: trigger type "azure-eventhub", with KEDA's metadata
// names, defaults and semantics. The metric is the consumer group's unprocessed events: for each partition, the
// last enqueued sequence number (read over AMQP from the hub's $management node with the Azure SDK) minus the
// sequence number of the consumer group's checkpoint (a blob in Azure Storage), summed over the partitions.
//
// Where the checkpoint is, by checkpointStrategy:
//   - azureFunction (also the default when blobContainer is empty): container azure-webjobs-eventhub, blob
//     <namespace>/<hub>/<consumerGroup>/<partition>, JSON {"SequenceNumber": n};
//   - blobMetadata (the Event Hubs SDKs' checkpoint store): blob <namespace>/<hub>/<consumer group, lower
//     case>/checkpoint/<partition> in blobContainer, the sequencenumber blob metadata;
//   - goSdk: blob <partition> in blobContainer, JSON {"checkpoint": {"sequenceNumber": n}};
//   - dapr: blob dapr-<hub>-<consumerGroup>-<partition> in blobContainer, the goSdk JSON;
//   - none given, with blobContainer: blob <consumerGroup>/<partition>, JSON {"SequenceNumber": n} or the older
//     Python SDK's {"sequence_number": n}.
//
// An empty partition counts 0. A partition with no checkpoint blob (or container) yet counts every retained
// event (last − beginning + 1), as KEDA does. The sequence number is a circular buffer: a checkpoint ahead of
// the last enqueued number wraps around, and a lag within stalePartitionInfoThreshold of the maximum is taken
// for stale partition information and counts 0. The metric is capped at partition count ×
// unprocessedEventThreshold (more replicas than partitions would sit idle); activation compares the uncapped
// total with activationUnprocessedEventThreshold.
//
// Authentication: an Event Hubs connection string (authParams connection, or connectionFromEnv; its EntityPath
// or eventHubName names the hub) and a storage connection string (storageConnection, or
// storageConnectionFromEnv); or eventHubNamespace with eventHubName (cloud / endpointSuffix), and
// storageAccountName (cloud / storageEndpointSuffix), reached with the workload identity of the Tidal pod.
package azureeventhub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "azure-eventhub"

// azureFunctionContainer is the container the Azure Functions Event Hubs extension checkpoints in.
const azureFunctionContainer = "azure-webjobs-eventhub"

// Metadata is the azure-eventhub trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	UnprocessedEventThreshold           int64 `tidal:"name=unprocessedEventThreshold,default=64,target"`
	ActivationUnprocessedEventThreshold int64 `tidal:"name=activationUnprocessedEventThreshold,default=0,range=0;"`
	StalePartitionInfoThreshold         int64 `tidal:"name=stalePartitionInfoThreshold,default=10000,range=0;"`

	Connection        string `tidal:"name=connection,order=authParams;triggerMetadata,optional"`
	EventHubNamespace string `tidal:"name=eventHubNamespace,optional"`
	EventHubName      string `tidal:"name=eventHubName,optional"`
	ConsumerGroup     string `tidal:"name=consumerGroup,default=$Default"`

	StorageConnection  string `tidal:"name=storageConnection,order=authParams;triggerMetadata,optional"`
	StorageAccountName string `tidal:"name=storageAccountName,optional"`
	BlobContainer      string `tidal:"name=blobContainer,optional"`
	CheckpointStrategy string `tidal:"name=checkpointStrategy,optional,enum=azureFunction;blobMetadata;goSdk;dapr"`

	Cloud                 string `tidal:"name=cloud,optional"`
	EndpointSuffix        string `tidal:"name=endpointSuffix,optional"`
	StorageEndpointSuffix string `tidal:"name=storageEndpointSuffix,optional"`

	// namespace is the fully qualified namespace and hub the event hub's name, as the checkpoint paths use them;
	// entityPath tells that the connection string names the hub itself; blobURL is the storage account's blob
	// endpoint when no storage connection string is given.
	namespace, hub string
	entityPath     bool
	blobURL        string
}

// Validate checks the event hub and storage connections and the checkpoint location.
func (m *Metadata) Validate() error {
	var errs []error
	if strings.TrimSpace(m.ConsumerGroup) == "" {
		errs = append(errs, errors.New("consumerGroup: must not be empty"))
	}
	if err := m.resolveHub(); err != nil {
		errs = append(errs, err)
	}
	if err := m.resolveStorage(); err != nil {
		errs = append(errs, err)
	}
	if m.BlobContainer == "" && m.CheckpointStrategy != "" && m.CheckpointStrategy != "azureFunction" {
		errs = append(errs, fmt.Errorf("blobContainer: required with checkpointStrategy %s", m.CheckpointStrategy))
	}
	return errors.Join(errs...)
}

func (m *Metadata) resolveHub() error {
	suffix, err := azure.ServiceBusEndpointSuffix(m.Cloud, m.EndpointSuffix)
	if err != nil {
		return err
	}
	switch {
	case m.Connection != "":
		props, err := azeventhubs.ParseConnectionString(m.Connection)
		if err != nil {
			// The SDK's error may quote the connection string: keep it out.
			return errors.New("connection: want an Event Hubs connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...[;EntityPath=...])")
		}
		m.namespace = props.FullyQualifiedNamespace
		if props.EntityPath != nil && *props.EntityPath != "" {
			m.hub, m.entityPath = *props.EntityPath, true
			return nil
		}
		if m.EventHubName == "" {
			return errors.New("eventHubName: required when the connection string has no EntityPath")
		}
		m.hub = m.EventHubName
		return nil
	case m.EventHubNamespace != "":
		if strings.ContainsAny(m.EventHubNamespace, "/:@ ;") {
			return fmt.Errorf("eventHubNamespace: want an Event Hubs namespace name, got %q", m.EventHubNamespace)
		}
		if m.EventHubName == "" {
			return errors.New("eventHubName: required with eventHubNamespace")
		}
		m.namespace, m.hub = m.EventHubNamespace+"."+suffix, m.EventHubName
		return nil
	}
	return errors.New("connection: missing: set connection in the TriggerAuthentication (or connectionFromEnv), or eventHubNamespace and eventHubName for workload identity")
}

func (m *Metadata) resolveStorage() error {
	switch {
	case m.StorageConnection != "":
		if !strings.Contains(m.StorageConnection, "=") {
			return errors.New("storageConnection: want a storage connection string (AccountName=...;AccountKey=... or BlobEndpoint=...;SharedAccessSignature=...)")
		}
		return nil
	case m.StorageAccountName != "":
		if strings.ContainsAny(m.StorageAccountName, "/:@ .;") {
			return fmt.Errorf("storageAccountName: want a storage account name, got %q", m.StorageAccountName)
		}
		suffix, err := azure.StorageEndpointSuffixFrom(m.Cloud, m.StorageEndpointSuffix, "storageEndpointSuffix", "blob")
		if err != nil {
			return err
		}
		m.blobURL = "https://" + m.StorageAccountName + "." + suffix
		return nil
	}
	return errors.New("storageConnection: missing: set storageConnection in the TriggerAuthentication (or storageConnectionFromEnv), or storageAccountName for workload identity")
}

// checkpointBlob returns where the consumer group's checkpoint of a partition is.
func (m *Metadata) checkpointBlob(partition string) (container, blob string) {
	switch {
	case m.CheckpointStrategy == "goSdk":
		return m.BlobContainer, partition
	case m.CheckpointStrategy == "dapr":
		return m.BlobContainer, fmt.Sprintf("dapr-%s-%s-%s", m.hub, m.ConsumerGroup, partition)
	case m.CheckpointStrategy == "blobMetadata":
		return m.BlobContainer, fmt.Sprintf("%s/%s/%s/checkpoint/%s", m.namespace, m.hub, strings.ToLower(m.ConsumerGroup), partition)
	case m.CheckpointStrategy == "azureFunction" || m.BlobContainer == "":
		return azureFunctionContainer, fmt.Sprintf("%s/%s/%s/%s", m.namespace, m.hub, m.ConsumerGroup, partition)
	}
	return m.BlobContainer, m.ConsumerGroup + "/" + partition
}

// Scaler reads the unprocessed events of one consumer group of one event hub.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	blobs      *azblob.Client
	release    func() error

	// newHub builds the Event Hubs client; hub is the current one (nil after a Sample gave up on it). mu
	// serializes Samples and Close over them.
	newHub func() (*azeventhubs.ProducerClient, error)
	mu     sync.Mutex
	hub    *azeventhubs.ProducerClient
}

var _ scalers.Scaler = (*Scaler)(nil)

// Register adds the azure-eventhub scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// retryOptions bound the SDK's retries of an AMQP operation so that an unreachable namespace fails within a
// polling interval, as azure.ClientOptions does for HTTP.
var retryOptions = azeventhubs.RetryOptions{MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: time.Second}

// New parses the trigger and builds the Event Hubs and blob clients; nothing is sent until Sample.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	s := &Scaler{cfg: cfg, meta: meta, metricName: cfg.MetricName(TriggerType, meta.ConsumerGroup)}
	release, err := azure.Connect(cfg, TriggerType, s.connect)
	if err != nil {
		return nil, err
	}
	s.release = release
	return s, nil
}

func (s *Scaler) connect(opts policy.ClientOptions) error {
	m := s.meta
	blobOpts := &azblob.ClientOptions{ClientOptions: opts}
	var err error
	if m.StorageConnection != "" {
		if s.blobs, err = azblob.NewClientFromConnectionString(m.StorageConnection, blobOpts); err != nil {
			// The SDK's parse error may quote the connection string: keep it out.
			return errors.New("storageConnection: not a valid storage connection string")
		}
	} else {
		cred, err := azure.WorkloadIdentity(s.cfg.PodIdentity, opts)
		if err != nil {
			return fmt.Errorf("storageAccountName: %w", err)
		}
		if s.blobs, err = azblob.NewClient(m.blobURL, cred, blobOpts); err != nil {
			return fmt.Errorf("storageAccountName: %w", err)
		}
	}
	hubOpts := &azeventhubs.ProducerClientOptions{RetryOptions: retryOptions}
	if m.Connection != "" {
		name := m.hub
		if m.entityPath {
			name = "" // the SDK refuses a name beside the connection string's EntityPath
		}
		s.newHub = func() (*azeventhubs.ProducerClient, error) {
			c, err := azeventhubs.NewProducerClientFromConnectionString(m.Connection, name, hubOpts)
			if err != nil {
				return nil, errors.New("connection: not a valid Event Hubs connection string")
			}
			return c, nil
		}
	} else {
		cred, err := azure.WorkloadIdentity(s.cfg.PodIdentity, opts)
		if err != nil {
			return fmt.Errorf("eventHubNamespace: %w", err)
		}
		s.newHub = func() (*azeventhubs.ProducerClient, error) {
			c, err := azeventhubs.NewProducerClient(m.namespace, m.hub, cred, hubOpts)
			if err != nil {
				return nil, fmt.Errorf("eventHubNamespace: %w", err)
			}
			return c, nil
		}
	}
	s.hub, err = s.newHub()
	return err
}

// MetricSpecs returns one External metric with unprocessedEventThreshold as its target.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, float64(s.meta.UnprocessedEventThreshold))}
}

// Sample sums the unprocessed events of every partition; the metric is capped at partition count ×
// unprocessedEventThreshold and the trigger is active when the uncapped sum exceeds
// activationUnprocessedEventThreshold.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hub == nil {
		hub, err := s.newHub()
		if err != nil {
			return nil, false, s.cfg.Errorf("%w", err)
		}
		s.hub = hub
	}
	hub := s.hub
	props, err := hub.GetEventHubProperties(ctx, nil)
	if err != nil {
		return nil, false, s.cfg.Errorf("event hub %q: reading its properties: %w", s.meta.hub, err)
	}
	// The partitions are read concurrently, at most parallelPartitions at a time.
	counts := make([]int64, len(props.PartitionIDs))
	errs := make([]error, len(props.PartitionIDs))
	var abandoned atomic.Bool
	sem := make(chan struct{}, parallelPartitions)
	var wg sync.WaitGroup
	for i, id := range props.PartitionIDs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			counts[i], errs[i] = s.partitionLag(ctx, hub, id, &abandoned)
		}()
	}
	wg.Wait()
	if abandoned.Load() {
		s.hub = nil
		go func() {
			closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			defer cancel()
			_ = hub.Close(closeCtx)
		}()
	}
	var total int64
	for i, id := range props.PartitionIDs {
		if errs[i] != nil {
			return nil, false, s.cfg.Errorf("event hub %q partition %s: %w", s.meta.hub, id, errs[i])
		}
		total = addSaturating(total, counts[i])
	}
	lag := capToPartitions(total, int64(len(props.PartitionIDs)), s.meta.UnprocessedEventThreshold)
	return []scalers.Sample{{MetricName: s.metricName, Value: float64(lag)}}, total > s.meta.ActivationUnprocessedEventThreshold, nil
}

// parallelPartitions bounds the partitions one Sample reads at once.
const parallelPartitions = 8

// partitionLag reads a partition's properties and checkpoint and returns its unprocessed events.
func (s *Scaler) partitionLag(ctx context.Context, hub *azeventhubs.ProducerClient, id string, abandoned *atomic.Bool) (int64, error) {
	p, err := partition(ctx, hub, id)
	if err != nil {
		if ctx.Err() != nil {
			abandoned.Store(true)
		}
		return 0, fmt.Errorf("reading its properties: %w", err)
	}
	n, checkpoint, err := s.unprocessed(ctx, p)
	if err != nil {
		return 0, err
	}
	if ce := s.cfg.Logger.Check(zap.DebugLevel, "azure-eventhub partition lag"); ce != nil {
		ce.Write(zap.String("partition", id), zap.Int64("lastEnqueuedSequenceNumber", p.LastEnqueuedSequenceNumber),
			zap.Int64p("checkpointSequenceNumber", checkpoint), zap.Int64("unprocessed", n))
	}
	return n, nil
}

// partition reads a partition's properties within ctx. The SDK (azeventhubs v2.0.2) sends that request without
// the caller's context, so a namespace that takes it and never answers would hold Sample forever: at ctx's end
// partition returns ctx's error, and Sample closes the client in the background (which ends the request) so that
// the next Sample connects again.
func partition(ctx context.Context, hub *azeventhubs.ProducerClient, id string) (azeventhubs.PartitionProperties, error) {
	type result struct {
		p   azeventhubs.PartitionProperties
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := hub.GetPartitionProperties(ctx, id, nil)
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		return r.p, r.err
	case <-ctx.Done():
		return azeventhubs.PartitionProperties{}, ctx.Err()
	}
}

// closeTimeout bounds closing an AMQP connection.
const closeTimeout = 5 * time.Second

// unprocessed returns a partition's unprocessed events and its checkpoint's sequence number (nil when there is
// none).
func (s *Scaler) unprocessed(ctx context.Context, p azeventhubs.PartitionProperties) (int64, *int64, error) {
	if p.LastEnqueuedSequenceNumber == -1 { // an empty partition
		return 0, nil, nil
	}
	container, blob := s.meta.checkpointBlob(p.PartitionID)
	seq, err := s.checkpoint(ctx, container, blob)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return withoutCheckpoint(p), nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("reading the checkpoint %s/%s: %w", container, blob, azure.Describe(err))
	}
	return lag(p.LastEnqueuedSequenceNumber, seq, s.meta.StalePartitionInfoThreshold), &seq, nil
}

// maxCheckpoint bounds the checkpoint blob read (they are a few hundred bytes).
const maxCheckpoint = 1 << 20

// checkpoint reads the sequence number of a checkpoint blob, in the checkpointStrategy's format.
func (s *Scaler) checkpoint(ctx context.Context, container, blob string) (int64, error) {
	resp, err := s.blobs.DownloadStream(ctx, container, blob, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if s.meta.CheckpointStrategy == "blobMetadata" {
		for k, v := range resp.Metadata {
			if strings.EqualFold(k, "sequencenumber") && v != nil {
				n, err := strconv.ParseInt(*v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("sequencenumber metadata %q is not an integer", *v)
				}
				return n, nil
			}
		}
		return 0, errors.New("the blob has no sequencenumber metadata")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckpoint))
	if err != nil {
		return 0, err
	}
	switch s.meta.CheckpointStrategy {
	case "goSdk", "dapr":
		var c struct {
			Checkpoint struct {
				SequenceNumber int64 `json:"sequenceNumber"`
			} `json:"checkpoint"`
		}
		if err := json.Unmarshal(body, &c); err != nil {
			return 0, fmt.Errorf("decoding the checkpoint: %w", err)
		}
		return c.Checkpoint.SequenceNumber, nil
	}
	var c struct {
		SequenceNumber int64 `json:"SequenceNumber"`
		// PythonSequenceNumber is the older Python SDK's field, read by the default strategy when the other is 0.
		PythonSequenceNumber int64 `json:"sequence_number"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return 0, fmt.Errorf("decoding the checkpoint: %w", err)
	}
	if c.SequenceNumber == 0 && s.meta.CheckpointStrategy == "" && s.meta.BlobContainer != "" {
		return c.PythonSequenceNumber, nil
	}
	return c.SequenceNumber, nil
}

// lag is a partition's unprocessed events after a checkpoint. Sequence numbers wrap around: a checkpoint ahead
// of the last enqueued number counts the way around the buffer, and a lag within stale of the maximum means the
// partition information is stale (0).
func lag(last, checkpoint, stale int64) int64 {
	var n int64
	if last >= checkpoint {
		n = last - checkpoint
	} else {
		n = (math.MaxInt64 - checkpoint) + last
	}
	if n > math.MaxInt64-stale {
		return 0
	}
	return n
}

// withoutCheckpoint counts a partition's retained events when its consumer group has not checkpointed yet: a
// single event when both numbers are 0 (the first event after creation), none when they are equal otherwise.
func withoutCheckpoint(p azeventhubs.PartitionProperties) int64 {
	if (p.BeginningSequenceNumber == 0 && p.LastEnqueuedSequenceNumber == 0) || p.BeginningSequenceNumber != p.LastEnqueuedSequenceNumber {
		return p.LastEnqueuedSequenceNumber - p.BeginningSequenceNumber + 1
	}
	return 0
}

// capToPartitions keeps the metric at most partitions × threshold: each partition is read by one consumer.
func capToPartitions(total, partitions, threshold int64) int64 {
	if total/threshold > partitions {
		return partitions * threshold
	}
	return total
}

func addSaturating(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Close closes the AMQP connection and releases the shared transport.
func (s *Scaler) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.hub != nil {
		err = s.hub.Close(ctx)
		s.hub = nil
	}
	return errors.Join(err, s.release())
}
