package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
)

// streamMode is what a stream trigger measures, chosen from its metadata as KEDA does.
type streamMode int

const (
	// streamPending: consumerGroup set, no lagCount — entries delivered to the group but not acknowledged.
	streamPending streamMode = iota
	// streamLength: no consumerGroup — the number of entries in the stream.
	streamLength
	// streamLag: consumerGroup and lagCount set — entries not yet delivered to the group (Redis 7+).
	streamLag
)

func (m streamMode) String() string {
	switch m {
	case streamLength:
		return "streamLength"
	case streamLag:
		return "lagCount"
	default:
		return "pendingEntriesCount"
	}
}

// streamMeta is the metadata of a stream trigger.
type streamMeta struct {
	connMeta
	Stream              string `tidal:"name=stream"`
	ConsumerGroup       string `tidal:"name=consumerGroup,optional"`
	PendingEntriesCount int64  `tidal:"name=pendingEntriesCount,default=5,range=1;,target"`
	StreamLength        int64  `tidal:"name=streamLength,default=5,range=1;,target"`
	LagCount            int64  `tidal:"name=lagCount,default=0,range=0;"`
	ActivationLagCount  int64  `tidal:"name=activationLagCount,default=0,range=0;"`

	measure streamMode
	target  int64
}

// Validate picks the measure like KEDA: with a consumerGroup, lag when lagCount is non-zero, pending entries
// otherwise; without one, the stream length.
func (m *streamMeta) Validate() error {
	if m.Stream == "" {
		return errors.New("stream: must not be empty")
	}
	switch {
	case m.ConsumerGroup != "" && m.LagCount != 0:
		m.measure, m.target = streamLag, m.LagCount
	case m.ConsumerGroup != "":
		m.measure, m.target = streamPending, m.PendingEntriesCount
	default:
		m.measure, m.target = streamLength, m.StreamLength
	}
	return m.validate()
}

// parseStreamMeta parses and validates a stream trigger's metadata without connecting.
func parseStreamMeta(cfg *scalers.TriggerConfig, md mode) (*streamMeta, error) {
	m := &streamMeta{connMeta: connMeta{mode: md}}
	if err := scalers.Parse(cfg, m); err != nil {
		return nil, err
	}
	if m.ConsumerGroup == "" && m.LagCount != 0 {
		// KEDA ignores lagCount without a consumer group; keep manifests working but say so.
		cfg.Logger.Warn("lagCount has no effect without consumerGroup; scaling on streamLength",
			zap.String("trigger", cfg.ID()), zap.String("stream", m.Stream))
	}
	return m, nil
}

// streamScaler reports pending entries, lag or length of one Redis stream.
type streamScaler struct {
	cfg     *scalers.TriggerConfig
	meta    *streamMeta
	metric  string
	client  goredis.UniversalClient
	release func() error
	watch   watchTarget
	// lagSupported caches a successful Redis 7+ check for lagCount.
	lagSupported atomic.Bool
}

var _ scalers.PushScaler = (*streamScaler)(nil)

func newStreamScaler(cfg *scalers.TriggerConfig, md mode, opts Options) (*streamScaler, error) {
	meta, err := parseStreamMeta(cfg, md)
	if err != nil {
		return nil, err
	}
	conn, release, err := meta.acquire(cfg)
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	s := &streamScaler{
		cfg:     cfg,
		meta:    meta,
		metric:  cfg.MetricName("redis-streams", meta.Stream),
		client:  conn.client,
		release: release,
	}
	s.watch = watchTarget{
		cfg:     cfg,
		conn:    conn,
		mode:    md,
		db:      meta.DatabaseIndex,
		key:     meta.Stream,
		classes: func(context.Context, goredis.Cmdable) string { return "t" },
		recheck: opts.WatchRecheck,
		policy:  meta.notifyPolicy(),
	}
	return s, nil
}

func (s *streamScaler) notifyPolicy() notifyPolicy { return s.watch.policy }

// MetricSpecs returns one External metric named like KEDA's (s<index>-redis-streams-<stream>) whose target is
// pendingEntriesCount, lagCount or streamLength, whichever the trigger measures.
func (s *streamScaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metric, float64(s.meta.target))}
}

// Sample reads the measure; active means it is above activationLagCount (KEDA uses that one threshold for all
// three measures).
func (s *streamScaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var n int64
	var err error
	switch s.meta.measure {
	case streamPending:
		n, err = s.pending(ctx)
	case streamLag:
		n, err = s.lag(ctx)
	default:
		n, err = s.client.XLen(ctx, s.meta.Stream).Result()
	}
	if err != nil {
		return nil, false, s.cfg.Errorf("stream %q: reading %s from redis %s: %w", s.meta.Stream, s.meta.measure, s.meta.mode, err)
	}
	return []scalers.Sample{{MetricName: s.metric, Value: float64(n)}}, n > s.meta.ActivationLagCount, nil
}

// pending is the consumer group's count of delivered, unacknowledged entries. A stream or group that does not
// exist yet has none (KEDA reports an error there, which would keep a scaled-to-zero consumer from ever
// starting to create its group).
func (s *streamScaler) pending(ctx context.Context) (int64, error) {
	p, err := s.client.XPending(ctx, s.meta.Stream, s.meta.ConsumerGroup).Result()
	if isNoKey(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return p.Count, nil
}

// lag is the number of entries the consumer group has not been delivered yet (XINFO GROUPS, Redis 7+). As in
// KEDA, a missing stream has lag 0 and a missing group has lag equal to the stream length. When Redis cannot
// compute the lag (it reports it as unknown after entries were deleted from the middle of the stream), the stream
// length is used: an upper bound that errs towards scaling out.
func (s *streamScaler) lag(ctx context.Context) (int64, error) {
	if err := s.checkLagSupport(ctx); err != nil {
		return 0, err
	}
	groups, err := s.client.XInfoGroups(ctx, s.meta.Stream).Result()
	if isNoKey(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	for _, g := range groups {
		if g.Name != s.meta.ConsumerGroup {
			continue
		}
		if g.Lag >= 0 {
			return g.Lag, nil
		}
		break
	}
	return s.client.XLen(ctx, s.meta.Stream).Result()
}

// checkLagSupport fails on servers before Redis 7, whose XINFO GROUPS has no lag field (go-redis would read it
// as 0 and the trigger would never scale). It asks once per scaler, as long as the answer is yes.
func (s *streamScaler) checkLagSupport(ctx context.Context) error {
	if s.lagSupported.Load() {
		return nil
	}
	info, err := s.client.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("reading the redis version (lagCount needs Redis 7+): %w", err)
	}
	version, ok := infoField(info, "redis_version")
	major, convErr := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	if !ok || convErr != nil {
		return fmt.Errorf("lagCount needs Redis 7+, and the server did not report its version (%q)", version)
	}
	if major < 7 {
		return fmt.Errorf("lagCount needs Redis 7+ (XINFO GROUPS lag), the server runs %s; use pendingEntriesCount", version)
	}
	s.lagSupported.Store(true)
	return nil
}

// infoField finds "name:value" in INFO output.
func infoField(info, name string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v, true
		}
	}
	return "", false
}

// Watch wakes the caller on every change to the stream (XADD, XTRIM, XDEL, group changes); see the package
// documentation for the notification settings it needs.
func (s *streamScaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	return s.watch.run(ctx, changed)
}

// Close releases the shared client.
func (s *streamScaler) Close(context.Context) error {
	if err := s.release(); err != nil {
		return s.cfg.Errorf("closing redis client: %w", err)
	}
	return nil
}
