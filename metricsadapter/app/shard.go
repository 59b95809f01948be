package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/internal/shard"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/stream"
	"github.com/tidalscale/tidal/scalers"
)

// ShardGroup labels the adapter replicas' member Leases and prefixes their names.
const ShardGroup = "tidal-metrics-adapter"

// AnnotationStreamAddress, on an adapter replica's member Lease, is the address its peers reach its stream at.
const AnnotationStreamAddress = "tidal.dev/stream-address"

// ShardOptions shard the adapter's replicas (docs/sharding.md): each polls only the objects it owns by
// consistent hashing over the replicas' Leases (internal/shard, group ShardGroup, in Options.Namespace), and
// streams from every other replica what that one polls, so that each replica answers external.metrics.k8s.io
// for every object and streams every object to its operators. Requires Options.Stream.
type ShardOptions struct {
	// Identity of this replica; default the hostname (the pod name).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in leader election (internal/shard's defaults when 0).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Advertise is the host:port of this replica's stream for its peers (the pod IP and the stream port).
	Advertise string
	// PeerTLS is the client side of mutual TLS for the peers' streams (stream.ClientTLSConfig): a client
	// certificate the stream's client CA signed, and the CA and name that verify the peers' serving certificate.
	PeerTLS *tls.Config
}

// sourcer is what both the local poller and a peer's stream client answer.
type sourcer interface {
	Lookup(key samples.Key, metricName string) (scalers.Sample, samples.TriggerState, error)
	State(key samples.Key) (samples.ObjectState, error)
	MetricSpecs(key samples.Key) []autoscalingv2.MetricSpec
	Snapshot() []samples.ObjectState
}

// peer is the stream client to one other replica.
type peer struct {
	addr   string
	client *stream.Client
	stop   func()
}

// sharded is a sharded replica's view of every object: its own poller's and, through a stream client to each
// other live member, theirs. A key is read from its owner first, then from this replica, then from any other
// (during a hand-over the previous owner's last state answers until the new owner's first sample), except that
// a state older than another source's (samples.TriggerState.OlderThan) is never chosen, and no update older
// than one already relayed for its trigger is relayed: across a hand-over a consumer never goes back in time.
// It is the external metrics provider's cache and the stream's Source for operators; peers receive the poller
// alone.
type sharded struct {
	local   *poller.Poller
	members *shard.Membership
	self    string
	tls     *tls.Config
	log     *zap.Logger
	hub     *poller.Hub // every source's updates, for operators' streams

	// relayMu serialises the relay's check and publish; relayed stamps (Generation, SampledAt, Active) the
	// newest state published per trigger of each object.
	relayMu sync.Mutex
	relayed map[samples.Key]map[int]samples.TriggerState

	mu    sync.Mutex
	ctx   context.Context // set by run; peers started before are started by run
	peers map[string]*peer
	wg    sync.WaitGroup
}

func newSharded(local *poller.Poller, members *shard.Membership, peerTLS *tls.Config, log *zap.Logger) *sharded {
	return &sharded{local: local, members: members, self: members.Identity(), tls: peerTLS, log: log,
		hub: poller.NewHub(nil), peers: map[string]*peer{}, relayed: map[samples.Key]map[int]samples.TriggerState{}}
}

// run forwards the local poller's updates and keeps a stream client to every live peer until ctx is done.
func (s *sharded) run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	s.forward(ctx, s.local)
	s.syncPeers()
	<-ctx.Done()
	s.mu.Lock()
	for id, p := range s.peers {
		p.stop()
		delete(s.peers, id)
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.hub.CloseAll()
}

// forward publishes src's updates into the hub until ctx is done or src closes its subscription.
func (s *sharded) forward(ctx context.Context, src interface {
	Subscribe(int) (<-chan samples.Update, func())
}) {
	ch, cancel := src.Subscribe(4096)
	s.wg.Go(func() {
		defer cancel()
		samples.Consume(ctx, ch, func(u samples.Update) { s.relay(u) })
	})
}

// relay publishes u into the hub unless it is older than the state already published for its trigger: the
// previous owner's last samples, still in flight on its stream or replayed by a peer stream that reconnects,
// must not overwrite the new owner's. Every source's updates pass here. ActivityChanged is recomputed against
// the state published before, which may have come from another source.
func (s *sharded) relay(u samples.Update) bool {
	// Held over Publish (which never blocks), so two sources' updates cannot pass each other after the check.
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	held := s.relayed[u.Key]
	prev, ok := held[u.Trigger.Index]
	if ok && u.Trigger.OlderThan(&prev) {
		return false
	}
	stamp := samples.TriggerState{Generation: u.Trigger.Generation, SampledAt: u.Trigger.SampledAt,
		AttemptedAt: u.Trigger.Latest(), Active: u.Trigger.Active}
	if ok && prev.Generation == stamp.Generation {
		u.ActivityChanged = prev.Active != stamp.Active
		// An update without a time (a build error) keeps the last ones.
		if prev.SampledAt.After(stamp.SampledAt) {
			stamp.SampledAt = prev.SampledAt
		}
		if prev.AttemptedAt.After(stamp.AttemptedAt) {
			stamp.AttemptedAt = prev.AttemptedAt
		}
	}
	if held == nil {
		held = map[int]samples.TriggerState{}
		s.relayed[u.Key] = held
	}
	held[u.Trigger.Index] = stamp
	s.hub.Publish(u)
	return true
}

// ObjectChanged does nothing: a new generation is not ordered by time against the old one.
func (s *sharded) ObjectChanged(samples.Key) {}

// ObjectDeleted forgets the relay's stamps of a deleted object.
func (s *sharded) ObjectDeleted(key samples.Key) {
	s.relayMu.Lock()
	delete(s.relayed, key)
	s.relayMu.Unlock()
}

// syncPeers starts a stream client to each live peer that advertises an address and stops those of peers gone.
func (s *sharded) syncPeers() {
	want := map[string]string{}
	for id, annots := range s.members.Peers() {
		if addr := annots[AnnotationStreamAddress]; addr != "" {
			want[id] = addr
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		return
	}
	for id, p := range s.peers {
		if want[id] != p.addr {
			p.stop()
			delete(s.peers, id)
			s.log.Info("stopped streaming from a peer", zap.String("peer", id), zap.String("address", p.addr))
		}
	}
	for id, addr := range want {
		if s.peers[id] != nil {
			continue
		}
		c, err := stream.NewClient(stream.ClientOptions{Address: addr, TLS: s.tls, Name: ShardGroup + "/" + s.self, Peer: true,
			Logger: s.log.With(zap.String("peer", id)), MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second})
		if err != nil {
			s.log.Error("cannot stream from a peer", zap.String("peer", id), zap.Error(err))
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		done := make(chan struct{})
		s.wg.Go(func() {
			defer close(done)
			if err := c.Run(ctx); err != nil {
				s.log.Error("peer stream failed", zap.String("peer", id), zap.Error(err))
			}
		})
		s.forward(ctx, c)
		s.peers[id] = &peer{addr: addr, client: c, stop: func() { cancel(); <-done }}
		s.log.Info("streaming from a peer", zap.String("peer", id), zap.String("address", addr))
	}
}

// sources are the sources to read key from, best first: its owner, this replica, the other peers.
func (s *sharded) sources(key samples.Key) []sourcer {
	owner := s.members.Owner(key.Namespace + "/" + key.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sourcer, 0, len(s.peers)+1)
	if p := s.peers[owner]; p != nil && owner != s.self {
		out = append(out, p.client)
	}
	out = append(out, s.local)
	for id, p := range s.peers {
		if id != owner {
			out = append(out, p.client)
		}
	}
	return out
}

// Lookup answers from the first source that knows the metric, unless a later one holds a newer state of it.
func (s *sharded) Lookup(key samples.Key, metricName string) (scalers.Sample, samples.TriggerState, error) {
	type answer struct {
		sample scalers.Sample
		st     samples.TriggerState
		err    error
	}
	var best *answer
	var firstErr error
	for _, src := range s.sources(key) {
		sample, st, err := src.Lookup(key, metricName)
		if err != nil && errors.Is(err, poller.ErrNotFound) {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if best == nil || best.st.OlderThan(&st) {
			best = &answer{sample, st, err}
		}
	}
	if best == nil {
		return scalers.Sample{}, samples.TriggerState{}, firstErr
	}
	return best.sample, best.st, best.err
}

// State is the first source's state of the object, unless a later one holds a newer state of it.
func (s *sharded) State(key samples.Key) (samples.ObjectState, error) {
	var best *samples.ObjectState
	for _, src := range s.sources(key) {
		if st, err := src.State(key); err == nil && (best == nil || objectOlder(best, &st)) {
			best = &st
		}
	}
	if best == nil {
		return samples.ObjectState{}, fmt.Errorf("%s %s: %w", key.Kind, key, poller.ErrNotFound)
	}
	return *best, nil
}

// objectOlder reports whether a is older than b: of the same generation, with its newest sample (successful or
// failed) taken before b's newest.
func objectOlder(a, b *samples.ObjectState) bool {
	newest := func(o *samples.ObjectState) samples.TriggerState {
		st := samples.TriggerState{Generation: o.Generation}
		for i := range o.Triggers {
			if l := o.Triggers[i].Latest(); l.After(st.AttemptedAt) {
				st.AttemptedAt = l
			}
		}
		return st
	}
	na, nb := newest(a), newest(b)
	return na.OlderThan(&nb)
}

// MetricSpecs are the first source's metric specs of the object.
func (s *sharded) MetricSpecs(key samples.Key) []autoscalingv2.MetricSpec {
	for _, src := range s.sources(key) {
		if specs := src.MetricSpecs(key); specs != nil {
			return specs
		}
	}
	return nil
}

// Snapshot merges every source's objects, each from its best source: the newest (objectOlder), then the owner,
// then this replica.
func (s *sharded) Snapshot() []samples.ObjectState {
	s.mu.Lock()
	all := []sourcer{s.local}
	ids := []string{s.self}
	for id, p := range s.peers {
		all = append(all, p.client)
		ids = append(ids, id)
	}
	s.mu.Unlock()
	type pick struct {
		st   samples.ObjectState
		rank int // 2 the owner, 1 this replica, 0 another
	}
	best := map[samples.Key]pick{}
	var order []samples.Key
	for i, src := range all {
		for _, st := range src.Snapshot() {
			rank := 0
			if ids[i] == s.members.Owner(st.Key.Namespace+"/"+st.Key.Name) {
				rank = 2
			} else if i == 0 {
				rank = 1
			}
			cur, ok := best[st.Key]
			if !ok {
				order = append(order, st.Key)
			}
			if !ok || objectOlder(&cur.st, &st) || (rank > cur.rank && !objectOlder(&st, &cur.st)) {
				best[st.Key] = pick{st, rank}
			}
		}
	}
	out := make([]samples.ObjectState, 0, len(order))
	for _, k := range order {
		out = append(out, best[k].st)
	}
	return out
}

// Subscribe streams every source's updates.
func (s *sharded) Subscribe(buffer int) (<-chan samples.Update, func()) {
	return s.hub.Subscribe(buffer)
}
