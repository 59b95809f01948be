// Package kafka is Tidal's Kafka consumer-lag scaler: trigger type "kafka", with KEDA's metadata names, defaults
// and lag semantics, built on github.com/segmentio/kafka-go's Client (Metadata, OffsetFetch, ListOffsets).
//
// The metric is the consumer group's total lag over the topic's partitions (or over every topic the group has
// committed offsets for when topic is omitted), capped so the HPA never asks for more consumers than there are
// partitions (unless allowIdleConsumers). The scaler is a PushScaler: Watch polls the partitions' latest offsets
// at a short interval (watchInterval, a Tidal extension, default 250ms) and signals when they move.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "kafka"

// requestTimeout bounds every round trip to the brokers when the caller's context has a later deadline (or none).
const requestTimeout = 10 * time.Second

// Offset reset policies, as in KEDA.
const (
	policyLatest   = "latest"
	policyEarliest = "earliest"
)

// SASL mechanisms, as KEDA names them.
const (
	saslNone        = "none"
	saslPlaintext   = "plaintext"
	saslScramSHA256 = "scram_sha256"
	saslScramSHA512 = "scram_sha512"
	saslOAuthBearer = "oauthbearer"
	saslGSSAPI      = "gssapi"
)

// Metadata is the kafka trigger's metadata and authentication, with KEDA's names and defaults.
type Metadata struct {
	BootstrapServers []string `tidal:"name=bootstrapServers,order=triggerMetadata;resolvedEnv"`
	ConsumerGroup    string   `tidal:"name=consumerGroup,order=triggerMetadata;resolvedEnv"`
	// Topic is optional: without it the scaler sums the lag of every topic the group has committed offsets for.
	Topic string `tidal:"name=topic,order=triggerMetadata;resolvedEnv,optional"`
	// PartitionLimitation restricts the partitions considered: "0,1,4-6". Ignored without a topic, as in KEDA.
	PartitionLimitation string `tidal:"name=partitionLimitation,optional"`

	LagThreshold           int64 `tidal:"name=lagThreshold,default=10,target"`
	ActivationLagThreshold int64 `tidal:"name=activationLagThreshold,default=0,range=0;"`

	OffsetResetPolicy                  string `tidal:"name=offsetResetPolicy,default=latest,enum=latest;earliest"`
	AllowIdleConsumers                 bool   `tidal:"name=allowIdleConsumers,default=false"`
	ExcludePersistentLag               bool   `tidal:"name=excludePersistentLag,default=false"`
	ScaleToZeroOnInvalidOffset         bool   `tidal:"name=scaleToZeroOnInvalidOffset,default=false"`
	LimitToPartitionsWithLag           bool   `tidal:"name=limitToPartitionsWithLag,default=false"`
	EnsureEvenDistributionOfPartitions bool   `tidal:"name=ensureEvenDistributionOfPartitions,default=false"`

	// Version is accepted for KEDA compatibility and ignored: kafka-go negotiates API versions with the broker.
	Version string `tidal:"name=version,optional"`

	TLS         string `tidal:"name=tls,order=triggerMetadata;authParams,default=disable,enum=enable;disable"`
	UnsafeSsl   bool   `tidal:"name=unsafeSsl,order=triggerMetadata;authParams,default=false"`
	CA          string `tidal:"name=ca,order=authParams,optional"`
	Cert        string `tidal:"name=cert,order=authParams,optional"`
	Key         string `tidal:"name=key,order=authParams,optional"`
	KeyPassword string `tidal:"name=keyPassword,order=authParams,optional"`

	SASL     string `tidal:"name=sasl,order=triggerMetadata;authParams,default=none,enum=none;plaintext;scram_sha256;scram_sha512;oauthbearer;gssapi"`
	Username string `tidal:"name=username,order=authParams,optional"`
	Password string `tidal:"name=password,order=authParams,optional"`

	// WatchInterval is how often Watch lists the latest offsets (Tidal extension; not a KEDA key).
	WatchInterval time.Duration `tidal:"name=watchInterval,default=250ms,range=0.001;"`

	// partitions is PartitionLimitation parsed by Validate; nil means every partition.
	partitions map[int32]struct{}
}

// Validate checks the cross-field rules KEDA checks, and a few more that KEDA leaves to the first connection.
func (m *Metadata) Validate() error {
	var errs []error
	if len(m.BootstrapServers) == 0 {
		errs = append(errs, errors.New("bootstrapServers: want a comma-separated list of host:port, got none"))
	}
	for _, b := range m.BootstrapServers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("bootstrapServers: want host:port, got %q", b))
		}
	}
	if strings.TrimSpace(m.ConsumerGroup) == "" {
		errs = append(errs, errors.New("consumerGroup: must not be empty"))
	}
	if m.LagThreshold <= 0 {
		errs = append(errs, fmt.Errorf("lagThreshold: must be a positive number, got %d", m.LagThreshold))
	}
	if m.ActivationLagThreshold < 0 {
		errs = append(errs, fmt.Errorf("activationLagThreshold: must be a non-negative number, got %d", m.ActivationLagThreshold))
	}
	if strings.TrimSpace(m.PartitionLimitation) != "" {
		parts, err := parsePartitionLimitation(m.PartitionLimitation)
		if err != nil {
			errs = append(errs, fmt.Errorf("partitionLimitation: %w", err))
		}
		m.partitions = parts
	}
	if m.Topic == "" {
		m.partitions = nil
	}
	if m.AllowIdleConsumers && m.LimitToPartitionsWithLag {
		errs = append(errs, errors.New("allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously"))
	}
	if m.Topic == "" && m.LimitToPartitionsWithLag {
		errs = append(errs, errors.New("limitToPartitionsWithLag: topic must be specified when using limitToPartitionsWithLag"))
	}
	if m.LimitToPartitionsWithLag && m.EnsureEvenDistributionOfPartitions {
		errs = append(errs, errors.New("limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set simultaneously"))
	}
	if m.Topic == "" && m.EnsureEvenDistributionOfPartitions {
		errs = append(errs, errors.New("ensureEvenDistributionOfPartitions: topic must be specified when using ensureEvenDistributionOfPartitions"))
	}
	if m.TLS == "enable" {
		if m.Cert != "" && m.Key == "" {
			errs = append(errs, errors.New("key: must be provided with cert"))
		}
		if m.Key != "" && m.Cert == "" {
			errs = append(errs, errors.New("cert: must be provided with key"))
		}
	}
	switch m.SASL {
	case saslPlaintext, saslScramSHA256, saslScramSHA512:
		if m.Username == "" {
			errs = append(errs, errors.New("username: no username given for sasl "+m.SASL))
		}
		if m.Password == "" {
			errs = append(errs, errors.New("password: no password given for sasl "+m.SASL))
		}
	case saslOAuthBearer, saslGSSAPI:
		errs = append(errs, fmt.Errorf("sasl: %q is not supported by Tidal yet (use plaintext, scram_sha256 or scram_sha512)", m.SASL))
	}
	if m.WatchInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("watchInterval: must be at least 10ms, got %s", m.WatchInterval))
	}
	return errors.Join(errs...)
}

// parsePartitionLimitation parses "0,1,4-6" into a set of partition ids.
func parsePartitionLimitation(s string) (map[int32]struct{}, error) {
	out := map[int32]struct{}{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		start, err := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
		if err != nil || start < 0 {
			return nil, fmt.Errorf("want partition ids or ranges such as 0,2,4-6, got %q", part)
		}
		end := start
		if isRange {
			end, err = strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
			if err != nil || end < start {
				return nil, fmt.Errorf("want a range low-high with low <= high, got %q", part)
			}
			if end-start > 1<<16 {
				return nil, fmt.Errorf("range %q spans more than 65536 partitions", part)
			}
		}
		for p := start; p <= end; p++ {
			out[int32(p)] = struct{}{}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("want partition ids or ranges such as 0,2,4-6, got %q", s)
	}
	return out, nil
}

// kedaNormalize is KEDA's NormalizeString: the characters it turns into dashes in metric names. Tidal's
// SanitizeMetricName keeps dots, so they are replaced here to keep KEDA's metric names (kafka-my-topic).
func kedaNormalize(s string) string {
	return strings.NewReplacer("/", "-", ".", "-", ":", "-", "%", "-", "(", "-", ")", "-", "\"", "-", " ", "-", "<", "-", ">", "-", "$", "-", "'", "-", "`", "-", "@", "-").Replace(s)
}

// Scaler reads a consumer group's lag. It is safe for concurrent use.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	conn       *conn
	release    func() error

	mu sync.Mutex
	// previousOffsets are the committed offsets seen by the last Sample, for excludePersistentLag.
	previousOffsets map[string]map[int32]int64
}

var _ scalers.PushScaler = (*Scaler)(nil)

// Register adds the kafka scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger and prepares a client shared by triggers that use the same brokers and credentials. It
// does not connect: an unreachable broker is a Sample error.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	if meta.Version != "" {
		cfg.Logger.Info("kafka trigger: version is ignored; kafka-go negotiates API versions with the brokers",
			zap.String("version", meta.Version))
	}
	opts := connOptions{
		BootstrapServers: meta.BootstrapServers,
		SASL:             meta.SASL,
		Username:         meta.Username,
		Password:         meta.Password,
		TLS:              meta.TLS == "enable",
		TLSFiles: tlsauth.Options{
			CA: meta.CA, Cert: meta.Cert, Key: meta.Key, KeyPassword: meta.KeyPassword, UnsafeSsl: meta.UnsafeSsl,
		},
	}
	c, release, err := scalers.Acquire(cfg.Shared, opts.key(), func() (*conn, error) { return newConn(opts) },
		func(c *conn) error { c.close(); return nil })
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	name := "kafka-" + meta.Topic
	if meta.Topic == "" {
		name = "kafka-" + meta.ConsumerGroup + "-topics"
	}
	name = kedaNormalize(name)
	return &Scaler{
		cfg:             cfg,
		meta:            meta,
		metricName:      cfg.MetricName(name, ""),
		conn:            c,
		release:         release,
		previousOffsets: map[string]map[int32]int64{},
	}, nil
}

// MetricSpecs returns one External metric, the (capped) total lag, with lagThreshold as its target.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, float64(s.meta.LagThreshold))}
}

// Sample reads the committed and latest offsets and returns the total lag. The trigger is active when the total
// lag, persistent lag included, exceeds activationLagThreshold.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	snap, err := s.conn.snapshot(ctx, snapshotRequest{
		Group:      s.meta.ConsumerGroup,
		Topic:      s.meta.Topic,
		Partitions: s.meta.partitions,
	})
	if err != nil {
		return nil, false, s.cfg.Errorf("consumer group %q: %w", s.meta.ConsumerGroup, err)
	}
	s.mu.Lock()
	totals := computeLag(snap, s.policy(), s.previousOffsets)
	s.mu.Unlock()
	lag := capLag(totals, capOptions{
		LagThreshold:       s.meta.LagThreshold,
		AllowIdleConsumers: s.meta.AllowIdleConsumers,
		LimitToWithLag:     s.meta.LimitToPartitionsWithLag,
		EvenDistribution:   s.meta.EnsureEvenDistributionOfPartitions,
	})
	if ce := s.cfg.Logger.Check(zap.DebugLevel, "kafka lag"); ce != nil {
		ce.Write(zap.String("consumerGroup", s.meta.ConsumerGroup), zap.Int64("totalLag", totals.Lag),
			zap.Int64("totalLagWithPersistent", totals.LagWithPersistent), zap.Int64("partitions", totals.Partitions),
			zap.Int64("metric", lag))
	}
	return []scalers.Sample{{MetricName: s.metricName, Value: float64(lag)}},
		totals.LagWithPersistent > s.meta.ActivationLagThreshold, nil
}

func (s *Scaler) policy() lagPolicy {
	return lagPolicy{
		Earliest:             s.meta.OffsetResetPolicy == policyEarliest,
		ScaleToZeroOnInvalid: s.meta.ScaleToZeroOnInvalidOffset,
		ExcludePersistentLag: s.meta.ExcludePersistentLag,
	}
}

// Close releases the shared client.
func (s *Scaler) Close(context.Context) error {
	if s.release == nil {
		return nil
	}
	return s.release()
}
