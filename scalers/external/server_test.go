package external

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/tidalscale/tidal/scalers/external/externalscaler"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// queueServer is a tiny external scaler over in-memory queues, speaking KEDA's externalscaler protocol.
//
// Metadata it understands: queueName (required), targetSize (a number; sent as targetSizeFloat when it has a
// fraction, else as targetSize), twoMetrics=true (adds "<queue>-x2" = 2×depth, sent as metricValueFloat).
type queueServer struct {
	pb.UnimplementedExternalScalerServer
	noStream bool // StreamIsActive answers Unimplemented

	mu       sync.Mutex
	depth    map[string]int
	subs     map[string][]chan struct{}
	lastRef  *pb.ScaledObjectRef
	streams  int // open StreamIsActive streams
	failNext codes.Code
}

func newQueueServer() *queueServer {
	return &queueServer{depth: map[string]int{}, subs: map[string][]chan struct{}{}}
}

func (q *queueServer) push(queue string, n int) {
	q.mu.Lock()
	q.depth[queue] += n
	if q.depth[queue] < 0 {
		q.depth[queue] = 0
	}
	subs := append([]chan struct{}(nil), q.subs[queue]...)
	q.mu.Unlock()
	for _, c := range subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (q *queueServer) openStreams() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.streams
}

func (q *queueServer) ref() *pb.ScaledObjectRef {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lastRef
}

func (q *queueServer) queue(ref *pb.ScaledObjectRef) (string, int, error) {
	name := ref.GetScalerMetadata()["queueName"]
	if name == "" {
		return "", 0, status.Error(codes.InvalidArgument, "queueName is required")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.lastRef = ref
	if c := q.failNext; c != codes.OK {
		q.failNext = codes.OK
		return "", 0, status.Error(c, "injected failure")
	}
	return name, q.depth[name], nil
}

func (q *queueServer) GetMetricSpec(_ context.Context, ref *pb.ScaledObjectRef) (*pb.GetMetricSpecResponse, error) {
	name, _, err := q.queue(ref)
	if err != nil {
		return nil, err
	}
	spec := &pb.MetricSpec{MetricName: name}
	if ts := ref.GetScalerMetadata()["targetSize"]; ts != "" {
		f, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "targetSize")
		}
		if strings.Contains(ts, ".") {
			spec.TargetSizeFloat = f
		} else {
			spec.TargetSize = int64(f)
		}
	}
	resp := &pb.GetMetricSpecResponse{MetricSpecs: []*pb.MetricSpec{spec}}
	if ref.GetScalerMetadata()["twoMetrics"] == "true" {
		resp.MetricSpecs = append(resp.MetricSpecs, &pb.MetricSpec{MetricName: name + "-x2", TargetSizeFloat: 10})
	}
	return resp, nil
}

func (q *queueServer) GetMetrics(_ context.Context, req *pb.GetMetricsRequest) (*pb.GetMetricsResponse, error) {
	name, depth, err := q.queue(req.GetScaledObjectRef())
	if err != nil {
		return nil, err
	}
	switch req.GetMetricName() {
	case name:
		return &pb.GetMetricsResponse{MetricValues: []*pb.MetricValue{{MetricName: name, MetricValue: int64(depth)}}}, nil
	case name + "-x2":
		return &pb.GetMetricsResponse{MetricValues: []*pb.MetricValue{{MetricName: name + "-x2", MetricValueFloat: 2 * float64(depth)}}}, nil
	}
	return nil, status.Errorf(codes.NotFound, "unknown metric %q", req.GetMetricName())
}

func (q *queueServer) IsActive(_ context.Context, ref *pb.ScaledObjectRef) (*pb.IsActiveResponse, error) {
	_, depth, err := q.queue(ref)
	if err != nil {
		return nil, err
	}
	return &pb.IsActiveResponse{Result: depth > 0}, nil
}

func (q *queueServer) StreamIsActive(ref *pb.ScaledObjectRef, stream grpc.ServerStreamingServer[pb.IsActiveResponse]) error {
	if q.noStream {
		return status.Error(codes.Unimplemented, "StreamIsActive not implemented")
	}
	name, depth, err := q.queue(ref)
	if err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	q.mu.Lock()
	q.subs[name] = append(q.subs[name], wake)
	q.streams++
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.streams--
		subs := q.subs[name]
		for i, c := range subs {
			if c == wake {
				q.subs[name] = append(subs[:i], subs[i+1:]...)
				break
			}
		}
		q.mu.Unlock()
	}()
	if err := stream.Send(&pb.IsActiveResponse{Result: depth > 0}); err != nil {
		return err
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case <-wake:
			q.mu.Lock()
			d := q.depth[name]
			q.mu.Unlock()
			if err := stream.Send(&pb.IsActiveResponse{Result: d > 0}); err != nil {
				return err
			}
		}
	}
}

// runningServer is a gRPC server on a real TCP port that can be stopped and restarted on the same address.
type runningServer struct {
	t    testing.TB
	addr string
	impl *queueServer
	opts []grpc.ServerOption
	srv  *grpc.Server
}

func startServer(t testing.TB, impl *queueServer, opts ...grpc.ServerOption) *runningServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &runningServer{t: t, addr: lis.Addr().String(), impl: impl, opts: opts}
	rs.serve(lis)
	t.Cleanup(rs.stop)
	return rs
}

func (rs *runningServer) serve(lis net.Listener) {
	rs.srv = grpc.NewServer(rs.opts...)
	pb.RegisterExternalScalerServer(rs.srv, rs.impl)
	go func() { _ = rs.srv.Serve(lis) }()
}

func (rs *runningServer) stop() {
	if rs.srv != nil {
		rs.srv.Stop()
		rs.srv = nil
	}
}

// restart listens on the same address again, retrying while the port is being released.
func (rs *runningServer) restart() {
	rs.t.Helper()
	rs.stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lis, err := net.Listen("tcp", rs.addr)
		if err == nil {
			rs.serve(lis)
			return
		}
		if time.Now().After(deadline) {
			rs.t.Fatalf("relisten on %s: %v", rs.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mTLSServerOption requires a client certificate signed by the test CA.
func mTLSServerOption(p scalertest.PKI) grpc.ServerOption {
	return grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.Server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.Pool,
	}))
}
