package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcdStartAttempts bounds retries when a reserved port was taken by another process between reservation and
// etcd binding it (two dev clusters starting at the same moment).
const etcdStartAttempts = 5

// etcdServer is an embedded single-member etcd.
type etcdServer struct {
	etcd      *embed.Etcd
	ClientURL string
}

// etcdOptions configures startEtcd.
type etcdOptions struct {
	Dir    string
	Logger *zap.Logger
}

// startEtcd starts an embedded etcd on free loopback ports and waits until it serves. fsync is disabled: the dev
// cluster favours speed over durability, and a crash loses at most the last moments of a throwaway cluster.
func startEtcd(ctx context.Context, opts etcdOptions) (*etcdServer, error) {
	var lastErr error
	for attempt := 0; attempt < etcdStartAttempts; attempt++ {
		srv, err := tryStartEtcd(ctx, opts)
		if err == nil {
			return srv, nil
		}
		lastErr = err
		if !isAddrInUse(err) {
			break
		}
		opts.Logger.Debug("etcd port taken, retrying", zap.Error(err), zap.Int("attempt", attempt+1))
	}
	return nil, fmt.Errorf("etcd: %w", lastErr)
}

func tryStartEtcd(ctx context.Context, opts etcdOptions) (*etcdServer, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}

	cfg := embed.NewConfig()
	cfg.Name = "tidal-dev"
	cfg.Dir = opts.Dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(opts.Logger)
	// No metrics listener, no auto-compaction beyond the apiserver's own compaction requests.
	cfg.ListenMetricsUrls = nil

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return &etcdServer{etcd: e, ClientURL: clientURL.String()}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd failed while starting: %w", err)
	case <-time.After(time.Minute):
		e.Close()
		return nil, errors.New("etcd not ready after 1m")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}

// Err reports a fatal etcd error after start.
func (s *etcdServer) Err() <-chan error { return s.etcd.Err() }

// Close stops etcd and waits until its listeners are closed.
func (s *etcdServer) Close() { s.etcd.Close() }

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// freePorts reserves n distinct free loopback TCP ports by binding them all at once and then releasing them.
// For components that accept a net.Listener, prefer listenLoopback, which has no reuse window.
func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listenLoopback opens a listener on a free 127.0.0.1 port and returns it with its port.
// listenLoopbackPreferring listens on the loopback port recorded in file when it is free, else on a free one,
// and records the port in file.
func listenLoopbackPreferring(file string) (net.Listener, int, error) {
	if raw, err := os.ReadFile(file); err == nil {
		if port, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && port > 0 && port < 65536 {
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				return l, port, nil
			}
		}
	}
	l, port, err := listenLoopback()
	if err != nil {
		return nil, 0, err
	}
	if err := os.WriteFile(file, []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		_ = l.Close()
		return nil, 0, fmt.Errorf("record the port in %s: %w", file, err)
	}
	return l, port, nil
}

func listenLoopback() (net.Listener, int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, fmt.Errorf("listen on loopback: %w", err)
	}
	return l, l.Addr().(*net.TCPAddr).Port, nil
}
