package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/bench/scenario"
	redisscaler "github.com/tidalscale/tidal/scalers/redis"
)

// Source is the event source a scenario drives: the queue the trigger measures.
type Source interface {
	// Name describes it in metric labels ("redis RPUSH").
	Name() string
	// Trigger is the ScaledObject trigger for it, target items per replica.
	Trigger(target int) tidalv1alpha1.ScaleTriggers
	// Push appends n items and returns the queue length it left (as the source reported it, or as counted).
	Push(ctx context.Context, n int) (int64, error)
	// Pop consumes up to n items, as workers would, and returns how many it took.
	Pop(ctx context.Context, n int) (int, error)
	// Len is the current queue length.
	Len(ctx context.Context) (int64, error)
	// Drain consumes everything.
	Drain(ctx context.Context) error
	Close()
}

// newSource builds a fresh, empty, uniquely named queue of the given kind.
func newSource(ctx context.Context, kind, redisAddr string) (Source, error) {
	switch kind {
	case scenario.SourceRedis:
		return newRedisSource(ctx, redisAddr)
	case scenario.SourceKafka:
		return newKafkaSource(ctx)
	default:
		return nil, fmt.Errorf("source: want redis or kafka, got %q", kind)
	}
}

// redisSource is a Redis list on a real server.
type redisSource struct {
	addr, list string
	rc         *goredis.Client
}

func newRedisSource(ctx context.Context, addr string) (*redisSource, error) {
	rc := goredis.NewClient(&goredis.Options{Addr: addr})
	if err := rc.Ping(ctx).Err(); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("redis source at %s: %w", addr, err)
	}
	return &redisSource{addr: addr, list: fmt.Sprintf("tidal-bench-%x", rand.Uint64()), rc: rc}, nil
}

// requirePush fails, naming the fix, when the server publishes no keyspace events: scale-from-zero measures
// push-driven activation (its polling interval is long on purpose) and Tidal never turns the events on unasked,
// so without them each iteration would wait for a poll and time out.
func (s *redisSource) requirePush(ctx context.Context) error {
	cfg, err := s.rc.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return fmt.Errorf("redis source at %s: read notify-keyspace-events: %w", s.addr, err)
	}
	if v := cfg["notify-keyspace-events"]; !redisscaler.ListEventsPublished(v) {
		return fmt.Errorf("redis source at %s publishes no keyspace events for lists (notify-keyspace-events %q, need K and l or A): this scenario measures push activation; "+
			"run `redis-cli -h <host> -p <port> config set notify-keyspace-events KEA` or pass --redis with a server that has them", s.addr, v)
	}
	return nil
}

func (s *redisSource) Name() string { return "redis RPUSH" }

func (s *redisSource) Trigger(target int) tidalv1alpha1.ScaleTriggers {
	return tidalv1alpha1.ScaleTriggers{Type: "redis", Name: "queue",
		Metadata: map[string]string{"address": s.addr, "listName": s.list, "listLength": fmt.Sprint(target)}}
}

func (s *redisSource) Push(ctx context.Context, n int) (int64, error) {
	items := make([]any, n)
	for i := range items {
		items[i] = "job"
	}
	l, err := s.rc.RPush(ctx, s.list, items...).Result()
	if err != nil {
		return 0, fmt.Errorf("redis source %s: RPUSH: %w", s.list, err)
	}
	return l, nil
}

func (s *redisSource) Pop(ctx context.Context, n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	got, err := s.rc.LPopCount(ctx, s.list, n).Result()
	if err == goredis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis source %s: LPOP: %w", s.list, err)
	}
	return len(got), nil
}

func (s *redisSource) Len(ctx context.Context) (int64, error) {
	n, err := s.rc.LLen(ctx, s.list).Result()
	if err != nil {
		return 0, fmt.Errorf("redis source %s: LLEN: %w", s.list, err)
	}
	return n, nil
}

func (s *redisSource) Drain(ctx context.Context) error {
	if err := s.rc.Del(ctx, s.list).Err(); err != nil {
		return fmt.Errorf("redis source %s: DEL: %w", s.list, err)
	}
	return nil
}

func (s *redisSource) Close() {
	_ = s.rc.Del(context.Background(), s.list).Err()
	_ = s.rc.Close()
}

// kafkaSource is a one-partition topic on an in-process Kafka broker (kfake) and a consumer group whose
// committed offset is the queue's head: lag = produced - committed.
type kafkaSource struct {
	cluster      *kfake.Cluster
	client       *kafkago.Client
	transport    *kafkago.Transport
	addr         string
	topic, group string

	mu        sync.Mutex
	produced  int64 // the partition's end offset
	committed int64
}

func newKafkaSource(ctx context.Context) (*kafkaSource, error) {
	topic := fmt.Sprintf("tidal-bench-%x", rand.Uint64())
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		return nil, fmt.Errorf("kafka source: kfake: %w", err)
	}
	tr := &kafkago.Transport{}
	s := &kafkaSource{cluster: c, transport: tr, addr: c.ListenAddrs()[0], topic: topic, group: topic + "-workers"}
	s.client = &kafkago.Client{Addr: kafkago.TCP(s.addr), Timeout: 10 * time.Second, Transport: tr}
	// The group starts with a committed offset at 0, so its lag is exactly what was produced and not consumed.
	if err := s.commit(ctx, 0); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *kafkaSource) Name() string { return "kafka produce" }

func (s *kafkaSource) Trigger(target int) tidalv1alpha1.ScaleTriggers {
	return tidalv1alpha1.ScaleTriggers{Type: "kafka", Name: "topic", Metadata: map[string]string{
		"bootstrapServers": s.addr, "consumerGroup": s.group, "topic": s.topic,
		"lagThreshold": fmt.Sprint(target), "offsetResetPolicy": "earliest",
	}}
}

func (s *kafkaSource) Push(ctx context.Context, n int) (int64, error) {
	recs := make([]kafkago.Record, n)
	for i := range recs {
		recs[i] = kafkago.Record{Value: kafkago.NewBytes([]byte("job"))}
	}
	resp, err := s.client.Produce(ctx, &kafkago.ProduceRequest{Topic: s.topic, Partition: 0, RequiredAcks: kafkago.RequireAll, Records: kafkago.NewRecordReader(recs...)})
	if err != nil {
		return 0, fmt.Errorf("kafka source %s: produce: %w", s.topic, err)
	}
	if resp.Error != nil {
		return 0, fmt.Errorf("kafka source %s: produce: %w", s.topic, resp.Error)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.produced = max(s.produced, resp.BaseOffset+int64(n))
	return s.produced - s.committed, nil
}

func (s *kafkaSource) Pop(ctx context.Context, n int) (int, error) {
	s.mu.Lock()
	take := min(int64(n), s.produced-s.committed)
	to := s.committed + take
	s.mu.Unlock()
	if take <= 0 {
		return 0, nil
	}
	if err := s.commit(ctx, to); err != nil {
		return 0, err
	}
	return int(take), nil
}

func (s *kafkaSource) Len(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.produced - s.committed, nil
}

func (s *kafkaSource) Drain(ctx context.Context) error {
	s.mu.Lock()
	to := s.produced
	s.mu.Unlock()
	return s.commit(ctx, to)
}

// commit commits offset for the group (a simple, memberless commit, generation -1).
func (s *kafkaSource) commit(ctx context.Context, offset int64) error {
	resp, err := s.client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{
		GroupID: s.group, GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{s.topic: {{Partition: 0, Offset: offset}}},
	})
	if err != nil {
		return fmt.Errorf("kafka source %s: commit group %s: %w", s.topic, s.group, err)
	}
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return fmt.Errorf("kafka source %s: commit group %s: %w", s.topic, s.group, p.Error)
			}
		}
	}
	s.mu.Lock()
	s.committed = max(s.committed, offset)
	s.mu.Unlock()
	return nil
}

func (s *kafkaSource) Close() {
	s.transport.CloseIdleConnections()
	s.cluster.Close()
}
