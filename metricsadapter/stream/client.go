package stream

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/stream/streampb"
	"github.com/tidalscale/tidal/scalers"
)

// ErrUnreachable is what Client.Err wraps while the client has no live stream to the adapter.
var ErrUnreachable = errors.New("metrics adapter unreachable")

// Status is the client's connection state.
type Status struct {
	// Connected is true once a snapshot arrived on the current stream, false before and after it broke.
	Connected bool
	// Since is when Connected last changed (the client's start before the first connection).
	Since time.Time
	// LastError is why the last stream ended or the last attempt failed; nil while connected.
	LastError error
	// Reconnects counts streams established after the first.
	Reconnects int
}

// ClientOptions configures a Client. Address and TLS are required.
type ClientOptions struct {
	// Address is the adapter's gRPC address (host:port).
	Address string
	// TLS is the client side of mutual TLS (see ClientTLSConfig).
	TLS *tls.Config
	// Name identifies this client in the adapter's logs.
	Name   string
	Logger *zap.Logger
	// MinBackoff and MaxBackoff bound the reconnect back-off (defaults 200ms and 10s); it doubles per failed
	// attempt, with jitter, and resets once a stream delivers its snapshot.
	MinBackoff, MaxBackoff time.Duration
	// KeepaliveTime is how often an idle connection is pinged so a vanished adapter is noticed (default 10s).
	KeepaliveTime time.Duration
	// OnStatus, when set, is called (from the client's goroutine; it must not block) whenever Status changes.
	OnStatus func(Status)
	// Peer asks for the adapter's own objects only, not those it relays from its peers: another adapter
	// replica's view of this one (see Server's PeerSource).
	Peer bool
}

// Client streams the adapter's poller state and implements the operator's SampleSource:
//   - Subscribe, Snapshot and MetricSpecs serve the streamed view. After a reconnect the view is rebuilt from
//     the new snapshot (objects missing from it are dropped) and every trigger of the snapshot is published to
//     subscribers, so the operator re-observes the current state.
//   - The view never goes back in time, even when a reconnect reaches another adapter replica (behind a
//     Service): a trigger's state from a snapshot or update that is older than the one held
//     (samples.TriggerState.OlderThan: same generation, an earlier last success) leaves the held state in
//     place, and the snapshot republishes the held one. A newer generation replaces the held state whatever
//     its time. As with the adapters' relay, a failure carries its replica's last success time, so once a newer
//     state is held, another replica's failures are not seen until its next success.
//   - Upsert and Delete only record interest: the adapter builds scalers from the ScaledObjects itself. Upsert
//     returns the build errors the adapter reported for that generation, if it already knows it.
//   - While the adapter is unreachable the view keeps its last state (nothing is dropped or invented); Status
//     and Err report the outage so the operator can hold its decisions and say so in its conditions.
//
// Run drives the connection; the other methods are safe for concurrent use at any time.
type Client struct {
	opts ClientOptions
	log  *zap.Logger
	hub  *poller.Hub

	mu       sync.Mutex
	objects  map[samples.Key]*objectView
	deleted  map[samples.Key]struct{} // tombstones: drop late updates of a deleted object until it reappears
	interest map[samples.Key]int64    // generations the operator upserted
	status   Status
}

type objectView struct {
	gen      int64
	specs    []autoscalingv2.MetricSpec
	triggers map[int]samples.TriggerState
}

// NewClient validates opts and builds a Client; call Run to connect.
func NewClient(opts ClientOptions) (*Client, error) {
	switch {
	case opts.Address == "":
		return nil, errors.New("stream client: options: address is required")
	case opts.TLS == nil:
		return nil, errors.New("stream client: options: TLS is required (the stream is mutual TLS)")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(10*time.Second, opts.MinBackoff)
	}
	if opts.KeepaliveTime <= 0 {
		opts.KeepaliveTime = 10 * time.Second
	}
	return &Client{
		opts:     opts,
		log:      opts.Logger,
		hub:      poller.NewHub(nil),
		objects:  map[samples.Key]*objectView{},
		deleted:  map[samples.Key]struct{}{},
		interest: map[samples.Key]int64{},
		status:   Status{Since: time.Now(), LastError: errors.New("not connected yet")},
	}, nil
}

// Status returns the connection state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Err is nil while connected, otherwise ErrUnreachable wrapping the last error.
func (c *Client) Err() error {
	st := c.Status()
	if st.Connected {
		return nil
	}
	return fmt.Errorf("%w since %s: %w", ErrUnreachable, st.Since.UTC().Format(time.RFC3339), st.LastError)
}

// Upsert records interest in spec's object and returns the build errors the adapter reported for this
// generation, if its state for it has arrived.
func (c *Client) Upsert(_ context.Context, spec samples.ObjectSpec) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.interest[spec.Key] = spec.Generation
	obj := c.objects[spec.Key]
	if obj == nil || obj.gen != spec.Generation {
		return nil
	}
	var errs []error
	for _, idx := range sortedIndexes(obj.triggers) {
		var re *RemoteError
		if errors.As(obj.triggers[idx].Err, &re) && re.Build {
			errs = append(errs, re)
		}
	}
	return errs
}

// Delete forgets the operator's interest; the adapter drops the object when the ScaledObject goes.
func (c *Client) Delete(_ context.Context, key samples.Key) {
	c.mu.Lock()
	delete(c.interest, key)
	c.mu.Unlock()
}

// Subscribe streams every update received (and, after each (re)connect, the snapshot's triggers). A slow
// subscriber gets coalesced updates per trigger, as with the poller.
func (c *Client) Subscribe(buffer int) (<-chan samples.Update, func()) {
	return c.hub.Subscribe(buffer)
}

// Snapshot returns the streamed state of every object, sorted by key.
func (c *Client) Snapshot() []samples.ObjectState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]samples.ObjectState, 0, len(c.objects))
	for k, o := range c.objects {
		st := samples.ObjectState{Key: k, Generation: o.gen}
		for _, idx := range sortedIndexes(o.triggers) {
			st.Triggers = append(st.Triggers, o.triggers[idx])
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b samples.ObjectState) int {
		return cmp.Or(cmp.Compare(a.Key.Kind, b.Key.Kind), cmp.Compare(a.Key.Namespace, b.Key.Namespace),
			cmp.Compare(a.Key.Name, b.Key.Name))
	})
	return out
}

// MetricSpecs returns the object's metric specs as streamed (deep copies); nil when unknown.
func (c *Client) MetricSpecs(key samples.Key) []autoscalingv2.MetricSpec {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[key]
	if o == nil || len(o.specs) == 0 {
		return nil
	}
	out := make([]autoscalingv2.MetricSpec, len(o.specs))
	for i := range o.specs {
		o.specs[i].DeepCopyInto(&out[i])
	}
	return out
}

// Lookup answers as poller.Poller.Lookup from the streamed state: the adapter's cached sample of one metric.
// While the stream is down the state is reported stale.
func (c *Client) Lookup(key samples.Key, metricName string) (scalers.Sample, samples.TriggerState, error) {
	c.mu.Lock()
	connected := c.status.Connected
	var st samples.TriggerState
	found := false
	if o := c.objects[key]; o != nil {
		for _, t := range o.triggers {
			if slices.Contains(t.MetricNames, metricName) {
				st, found = t, true
				break
			}
		}
	}
	c.mu.Unlock()
	if !found {
		return scalers.Sample{}, samples.TriggerState{}, fmt.Errorf("%s %s: metric %q: %w", key.Kind, key, metricName, poller.ErrNotFound)
	}
	stale := ""
	if !connected {
		stale = "its adapter " + c.opts.Address + " unreachable"
	}
	sample, err := poller.Evaluate(key, metricName, st, stale)
	return sample, st, err
}

// State returns the streamed state of one object (poller.ErrNotFound when unknown).
func (c *Client) State(key samples.Key) (samples.ObjectState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[key]
	if o == nil {
		return samples.ObjectState{}, fmt.Errorf("%s %s: %w", key.Kind, key, poller.ErrNotFound)
	}
	st := samples.ObjectState{Key: key, Generation: o.gen}
	for _, idx := range sortedIndexes(o.triggers) {
		st.Triggers = append(st.Triggers, o.triggers[idx])
	}
	return st, nil
}

func sortedIndexes(m map[int]samples.TriggerState) []int {
	idx := make([]int, 0, len(m))
	for i := range m {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	return idx
}

// Run connects and keeps reconnecting with back-off until ctx is done; it returns nil then, or an error if the
// connection cannot even be set up (bad address).
func (c *Client) Run(ctx context.Context) error {
	defer c.hub.CloseAll()
	cc, err := grpc.NewClient(c.opts.Address,
		grpc.WithTransportCredentials(credentials.NewTLS(c.opts.TLS)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: c.opts.KeepaliveTime, Timeout: c.opts.KeepaliveTime / 2, PermitWithoutStream: true}),
		// gRPC's own reconnect back-off defaults to a 120s ceiling; keep the transport as eager as the stream.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: c.opts.MinBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: c.opts.MaxBackoff},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		return fmt.Errorf("stream client: %s: %w", c.opts.Address, err)
	}
	defer func() { _ = cc.Close() }()
	api := streampb.NewSampleStreamClient(cc)
	backoff := c.opts.MinBackoff
	first := true
	for ctx.Err() == nil {
		gotSnapshot, err := c.watch(ctx, api, first)
		if ctx.Err() != nil {
			break
		}
		if gotSnapshot {
			first = false
			backoff = c.opts.MinBackoff
		}
		c.setDisconnected(err)
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Warn("metrics adapter stream broken, reconnecting", zap.String("address", c.opts.Address),
			zap.Duration("in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
	c.setDisconnected(ctx.Err())
	return nil
}

// watch runs one stream until it breaks; it reports whether the snapshot arrived.
func (c *Client) watch(ctx context.Context, api streampb.SampleStreamClient, first bool) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.opts.Peer {
		ctx = metadata.AppendToOutgoingContext(ctx, peerHeader, "true")
	}
	stream, err := api.Watch(ctx, &streampb.WatchRequest{Client: c.opts.Name})
	if err != nil {
		return false, err
	}
	gotSnapshot := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			return gotSnapshot, err
		}
		switch ev := msg.GetEvent().(type) {
		case *streampb.WatchResponse_Snapshot:
			if err := c.applySnapshot(ev.Snapshot); err != nil {
				return gotSnapshot, err
			}
			if !gotSnapshot {
				gotSnapshot = true
				c.setConnected(!first)
			}
		case *streampb.WatchResponse_Update:
			c.applyUpdate(ev.Update)
		case *streampb.WatchResponse_Object:
			if err := c.applyObject(ev.Object); err != nil {
				c.log.Error("bad object info from adapter", zap.Error(err))
			}
		case *streampb.WatchResponse_Deleted:
			c.applyDeleted(keyFromPB(ev.Deleted))
		}
	}
}

func (c *Client) applySnapshot(s *streampb.Snapshot) error {
	objects := make(map[samples.Key]*objectView, len(s.GetObjects()))
	var updates []samples.Update
	for _, o := range s.GetObjects() {
		key := keyFromPB(o.GetInfo().GetKey())
		specs, err := specsFromPB(o.GetInfo().GetMetricSpecs())
		if err != nil {
			return fmt.Errorf("snapshot: %s %s: %w", key.Kind, key, err)
		}
		v := &objectView{gen: o.GetInfo().GetGeneration(), specs: specs, triggers: map[int]samples.TriggerState{}}
		for _, t := range o.GetTriggers() {
			ts := triggerFromPB(t)
			ts.Generation = v.gen
			v.triggers[ts.Index] = ts
			updates = append(updates, samples.Update{Key: key, Trigger: ts})
		}
		objects[key] = v
	}
	c.mu.Lock()
	// Keep a held state newer than the snapshot's (another replica's may be older), and flag activity changes
	// relative to the previous view, so a subscriber reacts as to a live update.
	for i := range updates {
		u := &updates[i]
		if old := c.objects[u.Key]; old != nil {
			if prev, had := old.triggers[u.Trigger.Index]; had {
				if u.Trigger.OlderThan(&prev) {
					u.Trigger = prev
					objects[u.Key].triggers[prev.Index] = prev
				}
				u.ActivityChanged = prev.Active != u.Trigger.Active
			}
		}
	}
	c.objects = objects
	c.deleted = map[samples.Key]struct{}{}
	c.mu.Unlock()
	for _, u := range updates {
		c.hub.Publish(u)
	}
	return nil
}

func (c *Client) applyUpdate(u *streampb.TriggerUpdate) {
	key := keyFromPB(u.GetKey())
	ts := triggerFromPB(u.GetTrigger())
	c.mu.Lock()
	if _, gone := c.deleted[key]; gone {
		c.mu.Unlock()
		return
	}
	o := c.objects[key]
	if o == nil {
		o = &objectView{triggers: map[int]samples.TriggerState{}}
		c.objects[key] = o
	}
	// The server sends an object's info before the first sample of each generation (see Server.Watch).
	ts.Generation = o.gen
	changed := u.GetActivityChanged()
	if prev, had := o.triggers[ts.Index]; had {
		if ts.OlderThan(&prev) {
			c.mu.Unlock()
			return
		}
		// The server flags changes against its own previous state, which a reconnect may not have taken.
		changed = changed || prev.Active != ts.Active
	}
	o.triggers[ts.Index] = ts
	c.mu.Unlock()
	c.hub.Publish(samples.Update{Key: key, Trigger: ts, ActivityChanged: changed})
}

func (c *Client) applyObject(info *streampb.ObjectInfo) error {
	key := keyFromPB(info.GetKey())
	specs, err := specsFromPB(info.GetMetricSpecs())
	if err != nil {
		return fmt.Errorf("%s %s: %w", key.Kind, key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.deleted, key)
	o := c.objects[key]
	if o == nil || o.gen != info.GetGeneration() {
		// A new generation starts with no samples: the old triggers' states belong to the old scalers.
		o = &objectView{gen: info.GetGeneration(), triggers: map[int]samples.TriggerState{}}
		c.objects[key] = o
	}
	o.specs = specs
	return nil
}

func (c *Client) applyDeleted(key samples.Key) {
	c.mu.Lock()
	delete(c.objects, key)
	c.deleted[key] = struct{}{}
	c.mu.Unlock()
}

func (c *Client) setConnected(reconnect bool) {
	c.mu.Lock()
	c.status.Connected = true
	c.status.Since = time.Now()
	c.status.LastError = nil
	if reconnect {
		c.status.Reconnects++
	}
	st := c.status
	c.mu.Unlock()
	c.log.Info("metrics adapter stream connected", zap.String("address", c.opts.Address), zap.Int("reconnects", st.Reconnects))
	if c.opts.OnStatus != nil {
		c.opts.OnStatus(st)
	}
}

func (c *Client) setDisconnected(err error) {
	if err == nil {
		err = errors.New("stream ended")
	}
	c.mu.Lock()
	changed := c.status.Connected
	if changed {
		c.status.Since = time.Now()
	}
	c.status.Connected = false
	c.status.LastError = err
	st := c.status
	c.mu.Unlock()
	if changed && c.opts.OnStatus != nil {
		c.opts.OnStatus(st)
	}
}
