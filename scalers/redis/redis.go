// Package redis implements the Redis scalers with KEDA's trigger types and metadata:
//
//   - lists: "redis", "redis-cluster", "redis-sentinel" — the length of listName (LLEN; SCARD, ZCARD or HLEN
//     when the key holds a set, sorted set or hash, as in KEDA);
//   - streams: "redis-streams", "redis-cluster-streams", "redis-sentinel-streams" — a consumer group's pending
//     entries (XPENDING), its lag (XINFO GROUPS) or the stream length (XLEN), chosen like KEDA.
//
// Triggers that talk to the same server(s) with the same database, credentials and TLS settings share one
// go-redis client through scalers.Acquire.
//
// Push: every scaler here is a scalers.PushScaler whose Watch subscribes to the key's keyspace notifications
// (__keyspace@<db>__:<key>); in a cluster, on the master that owns the key's slot, following the slot when it
// moves. All watches through one shared client share one subscriber connection per server (hub.go).
//
// Keyspace notifications are off by default in Redis, and notify-keyspace-events is a server-wide setting that is
// not Tidal's to change unasked. Push is therefore governed per trigger by enableKeyspaceNotifications:
//
//   - unset (the default): Watch reads notify-keyspace-events (CONFIG GET) and subscribes only when the server
//     already publishes what the watch needs (K plus l for lists, or s/z/h when the key is a set/sorted
//     set/hash; K plus t for streams). Otherwise Watch returns an error saying so and the trigger is polled at
//     its pollingInterval. Tidal never changes the server.
//   - "true": as above, but when classes are missing Watch adds them with CONFIG SET, merging with the flags
//     already on and never removing any. The setting stays after Tidal stops (Redis then publishes an event for
//     each write of those classes, a small CPU cost). A running watch re-checks every Options.WatchRecheck,
//     since a restart or a sentinel failover loses it.
//   - "false": no push at all; the scaler is not a PushScaler and is polled at its pollingInterval.
//
// Where CONFIG is refused (managed Redis that disables the command, ACL users without +config), Watch can neither
// check nor change the setting: it returns an error and the caller keeps polling that trigger.
package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
)

// Trigger types, as in KEDA.
const (
	TypeList                = "redis"
	TypeClusterList         = "redis-cluster"
	TypeSentinelList        = "redis-sentinel"
	TypeStreams             = "redis-streams"
	TypeClusterStreams      = "redis-cluster-streams"
	TypeSentinelStreams     = "redis-sentinel-streams"
	defaultWatchRecheckTime = 30 * time.Second
)

// Options tunes a scaler beyond its trigger metadata. The zero value means the defaults.
type Options struct {
	// WatchRecheck is how often a running Watch re-checks that keyspace notifications are still enabled (a
	// restarted or failed-over server loses a CONFIG SET) and, in a cluster, that it listens on the node that
	// owns the key now. Default 30s.
	WatchRecheck time.Duration
}

func (o Options) withDefaults() Options {
	if o.WatchRecheck <= 0 {
		o.WatchRecheck = defaultWatchRecheckTime
	}
	return o
}

// Register adds the Redis list and stream scalers under all six KEDA trigger types.
func Register(r *scalers.Registry) {
	r.Register(New, TypeList, TypeClusterList, TypeSentinelList, TypeStreams, TypeClusterStreams, TypeSentinelStreams)
	r.Describe(listMeta{}, TypeList, TypeClusterList, TypeSentinelList)
	r.Describe(streamMeta{}, TypeStreams, TypeClusterStreams, TypeSentinelStreams)
}

// New builds the scaler for cfg.Type with default Options. It is a scalers.Builder.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return NewWithOptions(ctx, cfg, Options{})
}

// NewWithOptions builds the scaler for cfg.Type. It does not connect: an unreachable server is a Sample error.
// With enableKeyspaceNotifications "false" the scaler does not implement scalers.PushScaler. On error the Scaler is a
// nil interface.
func NewWithOptions(_ context.Context, cfg *scalers.TriggerConfig, opts Options) (scalers.Scaler, error) {
	cfg.Normalize()
	s, err := newScaler(cfg, opts.withDefaults())
	if err != nil {
		return nil, err
	}
	if s.notifyPolicy() == notifyNever {
		return pollOnly{s}, nil
	}
	return s, nil
}

// redisScaler is what every scaler of this package is.
type redisScaler interface {
	scalers.PushScaler
	notifyPolicy() notifyPolicy
}

// pollOnly hides Watch: the trigger asked for no push.
type pollOnly struct{ scalers.Scaler }

func newScaler(cfg *scalers.TriggerConfig, opts Options) (redisScaler, error) {
	switch cfg.Type {
	case TypeList:
		return newListScaler(cfg, modeStandalone, opts)
	case TypeClusterList:
		return newListScaler(cfg, modeCluster, opts)
	case TypeSentinelList:
		return newListScaler(cfg, modeSentinel, opts)
	case TypeStreams:
		return newStreamScaler(cfg, modeStandalone, opts)
	case TypeClusterStreams:
		return newStreamScaler(cfg, modeCluster, opts)
	case TypeSentinelStreams:
		return newStreamScaler(cfg, modeSentinel, opts)
	}
	return nil, cfg.Errorf("%w: the redis package has no scaler for it", scalers.ErrUnknownType)
}

// listMeta is the metadata of a list trigger.
type listMeta struct {
	connMeta
	ListName             string `tidal:"name=listName"`
	ListLength           int64  `tidal:"name=listLength,default=5,range=1;,target"`
	ActivationListLength int64  `tidal:"name=activationListLength,default=0,range=0;"`
}

// Validate checks the cross-field rules; scalers.Parse calls it.
func (m *listMeta) Validate() error {
	if m.ListName == "" {
		return errors.New("listName: must not be empty")
	}
	return m.validate()
}

// parseListMeta parses and validates a list trigger's metadata without connecting.
func parseListMeta(cfg *scalers.TriggerConfig, md mode) (*listMeta, error) {
	m := &listMeta{connMeta: connMeta{mode: md}}
	if err := scalers.Parse(cfg, m); err != nil {
		return nil, err
	}
	return m, nil
}

// lengthScript counts the elements of the key whatever its type, as KEDA's redis scaler does; a missing key is 0.
var lengthScript = goredis.NewScript(`
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'set' then return redis.call('SCARD', KEYS[1]) end
if t == 'zset' then return redis.call('ZCARD', KEYS[1]) end
if t == 'hash' then return redis.call('HLEN', KEYS[1]) end
return redis.call('LLEN', KEYS[1])
`)

// listScaler reports the length of one Redis list.
type listScaler struct {
	cfg     *scalers.TriggerConfig
	meta    *listMeta
	metric  string
	client  goredis.UniversalClient
	release func() error
	keys    []string
	watch   watchTarget
}

var _ scalers.PushScaler = (*listScaler)(nil)

func newListScaler(cfg *scalers.TriggerConfig, md mode, opts Options) (*listScaler, error) {
	meta, err := parseListMeta(cfg, md)
	if err != nil {
		return nil, err
	}
	conn, release, err := meta.acquire(cfg)
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	s := &listScaler{
		cfg:     cfg,
		meta:    meta,
		metric:  cfg.MetricName("redis", meta.ListName),
		client:  conn.client,
		release: release,
		keys:    []string{meta.ListName},
	}
	s.watch = watchTarget{
		cfg:     cfg,
		conn:    conn,
		mode:    md,
		db:      meta.DatabaseIndex,
		key:     meta.ListName,
		classes: s.listClasses,
		recheck: opts.WatchRecheck,
		policy:  meta.notifyPolicy(),
	}
	return s, nil
}

func (s *listScaler) notifyPolicy() notifyPolicy { return s.watch.policy }

// MetricSpecs returns one External metric named like KEDA's (s<index>-redis-<listName>) with target listLength.
func (s *listScaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metric, float64(s.meta.ListLength))}
}

// Sample reads the list length; active means it is above activationListLength.
func (s *listScaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	n, err := lengthScript.Run(ctx, s.client, s.keys).Int64()
	if err != nil {
		return nil, false, s.cfg.Errorf("listName %q: reading length from redis %s: %w", s.meta.ListName, s.meta.mode, err)
	}
	return []scalers.Sample{{MetricName: s.metric, Value: float64(n)}}, n > s.meta.ActivationListLength, nil
}

// Watch wakes the caller on every change to the list; see the package documentation for the notification
// settings it needs. It returns an error (the caller then polls) when notifications cannot be enabled.
func (s *listScaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	return s.watch.run(ctx, changed)
}

// listClasses picks the keyspace event classes for the key: l (list commands), or the class of the key's type
// when KEDA's set/sorted set/hash support is in use, plus g and x so that a DEL or an expiry of the key (the
// queue emptied at once) wakes the caller too and a scale-down does not wait for the polling interval.
func (s *listScaler) listClasses(ctx context.Context, c goredis.Cmdable) string {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	t, err := c.Type(ctx, s.meta.ListName).Result()
	if err != nil {
		return "lgx"
	}
	switch t {
	case "set":
		return "lsgx"
	case "zset":
		return "lzgx"
	case "hash":
		return "lhgx"
	}
	return "lgx"
}

// Close releases the shared client.
func (s *listScaler) Close(context.Context) error {
	if err := s.release(); err != nil {
		return s.cfg.Errorf("closing redis client: %w", err)
	}
	return nil
}
