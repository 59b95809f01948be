package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// connOptions identify one connection to a Kafka cluster: triggers with equal options share it.
type connOptions struct {
	BootstrapServers []string
	SASL             string
	Username         string
	Password         string
	TLS              bool
	TLSFiles         tlsauth.Options
}

func (o connOptions) key() string {
	return scalers.ClientKey(TriggerType, map[string]string{
		"bootstrapServers": strings.Join(o.BootstrapServers, ","),
		"sasl":             o.SASL,
		"username":         o.Username,
		"password":         o.Password,
		"tls":              strconv.FormatBool(o.TLS),
		"ca":               o.TLSFiles.CA,
		"cert":             o.TLSFiles.Cert,
		"key":              o.TLSFiles.Key,
		"keyPassword":      o.TLSFiles.KeyPassword,
		"unsafeSsl":        strconv.FormatBool(o.TLSFiles.UnsafeSsl),
	})
}

// conn is a kafka-go client with its transport (connection pools and cached metadata per broker).
type conn struct {
	client    *kafkago.Client
	transport *kafkago.Transport
	cancel    context.CancelFunc
}

func newConn(o connOptions) (*conn, error) {
	// The transport's background goroutines (metadata refresh) live until close, not as long as one request.
	bg, cancel := context.WithCancel(context.Background())
	t := &kafkago.Transport{
		Dial:        (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DialTimeout: 5 * time.Second,
		IdleTimeout: 60 * time.Second,
		MetadataTTL: 6 * time.Second,
		ClientID:    "tidal-kafka-scaler",
		Context:     bg,
	}
	if o.TLS {
		tc, err := tlsauth.Config(o.TLSFiles)
		if err != nil {
			cancel()
			return nil, err
		}
		t.TLS = tc
	}
	mech, err := saslMechanism(o)
	if err != nil {
		cancel()
		return nil, err
	}
	t.SASL = mech
	return &conn{
		client:    &kafkago.Client{Addr: kafkago.TCP(o.BootstrapServers...), Timeout: requestTimeout, Transport: t},
		transport: t,
		cancel:    cancel,
	}, nil
}

func saslMechanism(o connOptions) (sasl.Mechanism, error) {
	switch o.SASL {
	case "", saslNone:
		return nil, nil
	case saslPlaintext:
		return plain.Mechanism{Username: o.Username, Password: o.Password}, nil
	case saslScramSHA256, saslScramSHA512:
		algo := scram.SHA256
		if o.SASL == saslScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, o.Username, o.Password)
		if err != nil {
			// The scram package rejects user names it cannot normalise; its message never repeats the password.
			return nil, fmt.Errorf("sasl %s: %w", o.SASL, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("sasl: unsupported mechanism %q", o.SASL)
}

func (c *conn) close() {
	c.transport.CloseIdleConnections()
	c.cancel()
}

// snapshotRequest says which partitions a snapshot covers.
type snapshotRequest struct {
	Group string
	// Topic is empty for every topic the group has committed offsets for.
	Topic string
	// Partitions limits the topic's partitions; nil means all.
	Partitions map[int32]struct{}
}

// snapshot reads the group's committed offsets and the latest offsets of the partitions the request covers.
func (c *conn) snapshot(ctx context.Context, req snapshotRequest) (snapshot, error) {
	if req.Topic == "" {
		committed, err := c.committedOffsets(ctx, req.Group, nil)
		if err != nil {
			return snapshot{}, err
		}
		topics := make([]string, 0, len(committed))
		for t := range committed {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		if len(topics) == 0 {
			return snapshot{}, nil
		}
		parts, err := c.topicPartitions(ctx, topics, nil)
		if err != nil {
			return snapshot{}, err
		}
		latest, err := c.latestOffsets(ctx, parts)
		if err != nil {
			return snapshot{}, err
		}
		return snapshot{Latest: latest, Committed: committed}, nil
	}

	parts, err := c.topicPartitions(ctx, []string{req.Topic}, req.Partitions)
	if err != nil {
		return snapshot{}, err
	}
	// Committed and latest offsets live on different brokers (coordinator, leaders): ask both at once.
	type committedResult struct {
		offsets map[string]map[int32]int64
		err     error
	}
	ch := make(chan committedResult, 1)
	go func() {
		o, err := c.committedOffsets(ctx, req.Group, parts)
		ch <- committedResult{o, err}
	}()
	latest, lerr := c.latestOffsets(ctx, parts)
	cr := <-ch
	if cr.err != nil {
		return snapshot{}, cr.err
	}
	if lerr != nil {
		return snapshot{}, lerr
	}
	return snapshot{Latest: latest, Committed: cr.offsets}, nil
}

// topicPartitions returns the partitions of topics, restricted to limit when it is not nil.
func (c *conn) topicPartitions(ctx context.Context, topics []string, limit map[int32]struct{}) (map[string][]int32, error) {
	md, err := c.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("describing topics %s: %w", strings.Join(topics, ","), err)
	}
	out := make(map[string][]int32, len(topics))
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("describing topic %q: %w", t.Name, t.Error)
		}
		var parts []int32
		for _, p := range t.Partitions {
			id := int32(p.ID)
			if limit != nil {
				if _, ok := limit[id]; !ok {
					continue
				}
			}
			parts = append(parts, id)
		}
		if len(parts) == 0 {
			return nil, fmt.Errorf("topic %q: expected at least one active partition", t.Name)
		}
		sort.Slice(parts, func(a, b int) bool { return parts[a] < parts[b] })
		out[t.Name] = parts
	}
	for _, name := range topics {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("topic %q: not found in the cluster metadata", name)
		}
	}
	return out, nil
}

// committedOffsets returns the group's committed offsets for parts, or for every topic it has committed to when
// parts is nil. Partitions without a committed offset are -1 or missing.
func (c *conn) committedOffsets(ctx context.Context, group string, parts map[string][]int32) (map[string]map[int32]int64, error) {
	req := &kafkago.OffsetFetchRequest{GroupID: group}
	if parts != nil {
		req.Topics = make(map[string][]int, len(parts))
		for t, ps := range parts {
			ints := make([]int, len(ps))
			for i, p := range ps {
				ints[i] = int(p)
			}
			req.Topics[t] = ints
		}
	}
	resp, err := c.client.OffsetFetch(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("fetching committed offsets: %w", err)
	}
	if errors.Is(resp.Error, kafkago.GroupIdNotFound) {
		// Some brokers answer an unknown group with this error instead of -1 offsets: nothing is committed.
		return map[string]map[int32]int64{}, nil
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("fetching committed offsets: %w", resp.Error)
	}
	out := make(map[string]map[int32]int64, len(resp.Topics))
	for t, ps := range resp.Topics {
		m := make(map[int32]int64, len(ps))
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("fetching committed offset of topic %q partition %d: %w", t, p.Partition, p.Error)
			}
			m[int32(p.Partition)] = p.CommittedOffset
		}
		if parts == nil {
			// Listing every topic: keep only topics with at least one real commit, as KEDA's listing does.
			if !anyCommitted(m) {
				continue
			}
		}
		out[t] = m
	}
	return out, nil
}

func anyCommitted(m map[int32]int64) bool {
	for _, o := range m {
		if o >= 0 {
			return true
		}
	}
	return false
}

// latestOffsets lists the latest (high-water) offset of every partition in parts.
func (c *conn) latestOffsets(ctx context.Context, parts map[string][]int32) (map[string]map[int32]int64, error) {
	req := &kafkago.ListOffsetsRequest{Topics: make(map[string][]kafkago.OffsetRequest, len(parts))}
	for t, ps := range parts {
		rs := make([]kafkago.OffsetRequest, len(ps))
		for i, p := range ps {
			rs[i] = kafkago.LastOffsetOf(int(p))
		}
		req.Topics[t] = rs
	}
	resp, err := c.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("listing latest offsets: %w", err)
	}
	out := make(map[string]map[int32]int64, len(resp.Topics))
	var errs []error
	for t, ps := range resp.Topics {
		m := make(map[int32]int64, len(ps))
		for _, p := range ps {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("listing latest offset of topic %q partition %d: %w", t, p.Partition, p.Error))
				continue
			}
			m[int32(p.Partition)] = p.LastOffset
		}
		out[t] = m
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
