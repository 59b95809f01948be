// Package stream carries the metrics adapter's poller state to the operator over a server-streaming gRPC call
// with mutual TLS. Server runs in the adapter next to the poller; Client runs in the operator and implements its
// SampleSource, so the operator's controllers see the same Updates, Snapshot and MetricSpecs as with an
// in-process poller.
//
// Protocol (streampb/stream.proto): on connect the server subscribes to the poller, then sends one Snapshot of
// every object (with its generation and metric specs), then every Update as it arrives, an ObjectInfo whenever
// the adapter installs a new generation of an object (so the operator learns its metric specs before the first
// sample), and a deletion when an object goes away. A client that falls behind so far that its control queue
// overflows is disconnected and resynchronises from a fresh snapshot.
package stream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/stream/streampb"
)

// Source is the part of *poller.Poller the server streams.
type Source interface {
	Subscribe(buffer int) (<-chan samples.Update, func())
	Snapshot() []samples.ObjectState
	MetricSpecs(key samples.Key) []autoscalingv2.MetricSpec
	State(key samples.Key) (samples.ObjectState, error)
}

// peerHeader is the gRPC metadata key by which another adapter replica asks for PeerSource (ClientOptions.Peer).
const peerHeader = "tidal-stream-peer"

// ServerOptions configures a Server. Source is required.
type ServerOptions struct {
	// Source is what operators receive: with sharded adapters, every object (the replica's own and those
	// relayed from its peers).
	Source Source
	// PeerSource, when set, is what other adapter replicas receive (ClientOptions.Peer): this replica's own
	// objects only, so no sample is relayed twice or back to where it came from. Source when nil.
	PeerSource Source
	Logger     *zap.Logger
	// Buffer is each stream's poller subscription buffer (default 4096); beyond it the poller coalesces.
	Buffer int
	// ControlBuffer bounds queued object installs and deletions per stream (default 4096); a stream that
	// overflows it is closed and the client resynchronises.
	ControlBuffer int
	// Metrics receives the server's collectors; nil registers nothing.
	Metrics prometheus.Registerer
}

// Server implements streampb.SampleStreamServer.
type Server struct {
	streampb.UnimplementedSampleStreamServer
	opts    ServerOptions
	log     *zap.Logger
	metrics *serverMetrics

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// conn is one Watch call's queue of object events.
type conn struct {
	control  chan *streampb.WatchResponse
	overflow chan struct{}
	once     sync.Once
}

func (c *conn) offer(msg *streampb.WatchResponse) {
	select {
	case c.control <- msg:
	default:
		c.once.Do(func() { close(c.overflow) })
	}
}

// NewServer validates opts and builds a Server; register it on a grpc.Server with
// streampb.RegisterSampleStreamServer.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Source == nil {
		return nil, errors.New("stream server: options: source is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	if opts.ControlBuffer <= 0 {
		opts.ControlBuffer = 4096
	}
	m, err := newServerMetrics(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("stream server: options: metrics: %w", err)
	}
	return &Server{opts: opts, log: opts.Logger, metrics: m, conns: map[*conn]struct{}{}}, nil
}

// ObjectChanged tells every stream about an object's new generation and metric specs.
func (s *Server) ObjectChanged(key samples.Key) {
	st, err := s.opts.Source.State(key)
	if err != nil {
		return // deleted meanwhile
	}
	info, err := s.objectInfo(s.opts.Source, key, st.Generation)
	if err != nil {
		s.log.Error("cannot encode object", zap.String("object", key.String()), zap.Error(err))
		return
	}
	s.broadcast(&streampb.WatchResponse{Event: &streampb.WatchResponse_Object{Object: info}})
	// A trigger whose scaler could not be built never samples, so no Update would ever carry its error: send
	// its state now, as the in-process poller's Upsert would have returned it.
	for i := range st.Triggers {
		if t := &st.Triggers[i]; IsBuildError(t) {
			s.broadcast(&streampb.WatchResponse{Event: &streampb.WatchResponse_Update{Update: &streampb.TriggerUpdate{
				Key: keyToPB(key), Trigger: triggerToPB(t),
			}}})
		}
	}
}

// ObjectDeleted tells every stream an object is gone.
func (s *Server) ObjectDeleted(key samples.Key) {
	s.broadcast(&streampb.WatchResponse{Event: &streampb.WatchResponse_Deleted{Deleted: keyToPB(key)}})
}

func (s *Server) broadcast(msg *streampb.WatchResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		// Each stream stamps its message's send time: one copy per stream.
		c.offer(proto.CloneOf(msg))
	}
}

func (s *Server) objectInfo(src Source, key samples.Key, gen int64) (*streampb.ObjectInfo, error) {
	specs, err := specsToPB(src.MetricSpecs(key))
	if err != nil {
		return nil, err
	}
	return &streampb.ObjectInfo{Key: keyToPB(key), Generation: gen, MetricSpecs: specs}, nil
}

// Watch streams the snapshot and then every event until the client goes away or falls too far behind.
func (s *Server) Watch(req *streampb.WatchRequest, stream streampb.SampleStream_WatchServer) error {
	ctx := stream.Context()
	log := s.log.With(zap.String("client", req.GetClient()))
	src := s.opts.Source
	if md, _ := metadata.FromIncomingContext(ctx); s.opts.PeerSource != nil && len(md.Get(peerHeader)) > 0 {
		src = s.opts.PeerSource
	}
	c := &conn{control: make(chan *streampb.WatchResponse, s.opts.ControlBuffer), overflow: make(chan struct{})}
	// Subscribe (and register for object events) before taking the snapshot, so nothing falls in between.
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	updates, cancel := src.Subscribe(s.opts.Buffer)
	defer func() {
		cancel()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.metrics.clients.Dec()
	}()
	s.metrics.clients.Inc()

	// sent is the generation of each object whose ObjectInfo this stream has carried: an update of a newer
	// generation goes after its object's info, and one of an older generation is dropped, so the client stamps
	// every sample with the generation it belongs to.
	sent := map[samples.Key]int64{}
	snap, err := s.snapshot(src, sent)
	if err != nil {
		return status.Errorf(codes.Internal, "snapshot: %v", err)
	}
	if err := s.send(stream, snap, "snapshot"); err != nil {
		return err
	}
	log.Info("stream client connected", zap.Int("objects", len(snap.GetSnapshot().GetObjects())))
	for {
		select {
		case <-ctx.Done():
			log.Info("stream client gone", zap.Error(ctx.Err()))
			return nil
		case <-c.overflow:
			log.Warn("stream client too slow, closing its stream so it resynchronises")
			return status.Error(codes.ResourceExhausted, "client too slow: reconnect for a fresh snapshot")
		case msg := <-c.control:
			kind := "object"
			if d := msg.GetDeleted(); d != nil {
				kind = "deleted"
				delete(sent, keyFromPB(d))
			} else if o := msg.GetObject(); o != nil {
				key := keyFromPB(o.GetKey())
				if o.GetGeneration() < sent[key] {
					continue // an info overtaken by the one sent ahead of a newer sample
				}
				sent[key] = o.GetGeneration()
			}
			if err := s.send(stream, msg, kind); err != nil {
				return err
			}
		case u, ok := <-updates:
			if !ok {
				return status.Error(codes.Unavailable, "adapter shutting down")
			}
			if g := u.Trigger.Generation; g < sent[u.Key] {
				continue // a late sample of a replaced generation
			} else if g > sent[u.Key] {
				info, err := s.objectInfo(src, u.Key, g)
				if err != nil {
					return status.Errorf(codes.Internal, "%s %s: %v", u.Key.Kind, u.Key, err)
				}
				if err := s.send(stream, &streampb.WatchResponse{Event: &streampb.WatchResponse_Object{Object: info}}, "object"); err != nil {
					return err
				}
				sent[u.Key] = g
			}
			msg := &streampb.WatchResponse{Event: &streampb.WatchResponse_Update{Update: &streampb.TriggerUpdate{
				Key: keyToPB(u.Key), Trigger: triggerToPB(&u.Trigger), ActivityChanged: u.ActivityChanged,
			}}}
			if err := s.send(stream, msg, "update"); err != nil {
				return err
			}
		}
	}
}

func (s *Server) send(stream streampb.SampleStream_WatchServer, msg *streampb.WatchResponse, kind string) error {
	msg.SentAtUnixNano = time.Now().UnixNano()
	if err := stream.Send(msg); err != nil {
		return err
	}
	s.metrics.sent.WithLabelValues(kind).Inc()
	return nil
}

// snapshot encodes every object with the triggers that have reported for its generation; a trigger not yet
// sampled is left out, so a client never mistakes "no sample yet" for an inactive trigger. It records each
// object's generation in sent.
func (s *Server) snapshot(src Source, sent map[samples.Key]int64) (*streampb.WatchResponse, error) {
	states := src.Snapshot()
	snap := &streampb.Snapshot{Objects: make([]*streampb.ObjectState, 0, len(states))}
	for i := range states {
		st := &states[i]
		info, err := s.objectInfo(src, st.Key, st.Generation)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", st.Key.Kind, st.Key, err)
		}
		obj := &streampb.ObjectState{Info: info, Triggers: make([]*streampb.TriggerState, 0, len(st.Triggers))}
		for j := range st.Triggers {
			if t := &st.Triggers[j]; t.Reported() && t.Generation == st.Generation {
				obj.Triggers = append(obj.Triggers, triggerToPB(t))
			}
		}
		snap.Objects = append(snap.Objects, obj)
		sent[st.Key] = st.Generation
	}
	return &streampb.WatchResponse{Event: &streampb.WatchResponse_Snapshot{Snapshot: snap}}, nil
}

// serverMetrics are one Server's collectors.
type serverMetrics struct {
	clients prometheus.Gauge
	sent    *prometheus.CounterVec // kind
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "tidal", Subsystem: "metrics_adapter", Name: "stream_clients",
			Help: "Operators connected to the sample stream.",
		}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tidal", Subsystem: "metrics_adapter", Name: "stream_messages_sent_total",
			Help: "Messages sent on the sample stream, by kind (snapshot, update, object, deleted).",
		}, []string{"kind"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.clients, m.sent} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// ensure the poller satisfies Source.
var _ Source = (*poller.Poller)(nil)

// NewGRPCServer returns a gRPC server with the adapter's mutual-TLS config and keepalive policy, serving srv.
func NewGRPCServer(tlsConfig *tls.Config, srv *Server) *grpc.Server {
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConfig)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	)
	streampb.RegisterSampleStreamServer(g, srv)
	return g
}
