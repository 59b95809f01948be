// Package etcd implements the etcd trigger: KEDA's Etcd scaler. It scales on a number stored under one key and
// pushes: an etcd watch on the key wakes the poller the moment the value changes.
//
// Metadata (KEDA names):
//
//	endpoints                    comma-separated etcd client URLs (http://host:2379); required
//	watchKey                     the key whose value is the metric; required
//	value                        target (float, > 0); required
//	activationValue              default 0; active when the value is above it
//	watchProgressNotifyInterval  seconds between the server's progress notifications on the watch, default 600;
//	                             a watch that hears nothing for two intervals is reopened
//	auth (authParams)            username and password; tls=enable with ca, cert, key, keyPassword (PEM contents)
//
// A missing key is an error (never a silent 0); a value that is not a number is an error naming the key. The
// metric is s<index>-etcd-<watchKey>, as in KEDA.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// Type is the trigger type served by this package.
const Type = "etcd"

const dialTimeout = 5 * time.Second

// Register adds the etcd trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the etcd trigger's metadata.
type Metadata struct {
	Endpoints                   []string `tidal:"name=endpoints"`
	WatchKey                    string   `tidal:"name=watchKey"`
	Value                       float64  `tidal:"name=value,target"`
	ActivationValue             float64  `tidal:"name=activationValue,default=0,range=0;"`
	WatchProgressNotifyInterval int      `tidal:"name=watchProgressNotifyInterval,default=600,range=1;"`

	Username    string `tidal:"name=username,order=authParams,optional"`
	Password    string `tidal:"name=password,order=authParams,optional"`
	TLS         string `tidal:"name=tls,order=authParams,default=disable,enum=enable;disable"`
	CA          string `tidal:"name=ca,order=authParams,optional"`
	Cert        string `tidal:"name=cert,order=authParams,optional"`
	Key         string `tidal:"name=key,order=authParams,optional"`
	KeyPassword string `tidal:"name=keyPassword,order=authParams,optional"`
}

// Validate checks the endpoints, thresholds and auth rules.
func (m *Metadata) Validate() error {
	var errs []error
	if len(m.Endpoints) == 0 {
		errs = append(errs, errors.New("endpoints: must list at least one URL"))
	}
	for _, e := range m.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoints: want http(s)://host:port, got %q", e))
		}
	}
	if strings.TrimSpace(m.WatchKey) == "" {
		errs = append(errs, errors.New("watchKey: must not be empty"))
	}
	if (m.Username == "") != (m.Password == "") {
		errs = append(errs, errors.New("username and password: give both or neither"))
	}
	if m.TLS == "disable" && (m.CA != "" || m.Cert != "" || m.Key != "") {
		errs = append(errs, errors.New("tls: ca, cert and key are given but tls is not enable"))
	}
	return errors.Join(errs...)
}

// Scaler is an etcd trigger.
type Scaler struct {
	scalers.OneMetric
	cfg       *scalers.TriggerConfig
	meta      Metadata
	clientCfg clientv3.Config
	log       *zap.Logger

	mu     sync.Mutex
	client *clientv3.Client // opened by conn
}

// New builds an etcd trigger. The client connects lazily: an unreachable cluster is a Sample error.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, err := scalers.ParseExternal[Metadata](cfg)
	if err != nil {
		return nil, err
	}
	cc := clientv3.Config{
		Endpoints: meta.Endpoints, DialTimeout: dialTimeout,
		Username: meta.Username, Password: meta.Password,
		Logger: zap.NewNop(), // the client's own logs may carry endpoints and auth errors verbatim
	}
	if meta.TLS == "enable" {
		tc, err := tlsauth.Config(tlsauth.Options{CA: meta.CA, Cert: meta.Cert, Key: meta.Key, KeyPassword: meta.KeyPassword})
		if err != nil {
			return nil, cfg.Errorf("%w", err)
		}
		cc.TLS = tc
	}
	return &Scaler{
		cfg:       cfg,
		meta:      meta,
		OneMetric: scalers.NewOneMetric(cfg, cfg.MetricName("etcd", meta.WatchKey), meta.Value, meta.ActivationValue),
		clientCfg: cc,
		log:       cfg.Logger.With(zap.String("trigger", cfg.ID())),
	}, nil
}

// conn returns the client, opening it on first use: with username and password, clientv3.New authenticates at
// once, and an unreachable or refusing cluster must be a Sample error, not a build error.
func (s *Scaler) conn() (*clientv3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	c, err := clientv3.New(s.clientCfg)
	if err != nil {
		return nil, s.cfg.Errorf("endpoints: connect: %s", s.cfg.Redact(err.Error()))
	}
	s.client = c
	return c, nil
}

// Sample reads watchKey as a number; active above activationValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, scalers.CallTimeout)
	defer cancel()
	client, err := s.conn()
	if err != nil {
		return nil, false, err
	}
	resp, err := client.Get(ctx, s.meta.WatchKey)
	if err != nil {
		err = s.cfg.Errorf("watchKey %q: get: %s", s.meta.WatchKey, s.cfg.Redact(err.Error()))
		s.log.Debug("etcd sample failed", zap.Error(err))
		return nil, false, err
	}
	if len(resp.Kvs) == 0 {
		return nil, false, s.cfg.Errorf("watchKey %q: key not found", s.meta.WatchKey)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(resp.Kvs[0].Value)), 64)
	if err != nil || v != v {
		return nil, false, s.cfg.Errorf("watchKey %q: value is not a number", s.meta.WatchKey)
	}
	return s.Value(v)
}

// Watch watches watchKey and signals changed on every put or delete. The server sends progress notifications
// every watchProgressNotifyInterval; silence for two intervals, a compaction or a closed channel reopen the watch
// from the next revision. It returns nil when ctx is done, or an error when the watch is refused (auth).
func (s *Scaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	client, err := s.conn()
	if err != nil {
		return err
	}
	interval := time.Duration(s.meta.WatchProgressNotifyInterval) * time.Second
	var rev int64
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		opts := []clientv3.OpOption{clientv3.WithProgressNotify()}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		wch := client.Watch(wctx, s.meta.WatchKey, opts...)
		next, err := s.forward(ctx, wch, changed, interval)
		cancel()
		if err != nil {
			return err
		}
		rev = next
	}
	return nil
}

// forward relays one watch until it goes quiet, ends or fails; it returns the revision to resume from.
func (s *Scaler) forward(ctx context.Context, wch clientv3.WatchChan, changed chan<- struct{}, interval time.Duration) (int64, error) {
	var rev int64
	quiet := time.NewTimer(2 * interval)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return rev, nil
		case <-quiet.C:
			s.log.Debug("etcd watch silent for two progress intervals; reopening")
			return rev, nil
		case resp, ok := <-wch:
			if !ok {
				return rev, nil
			}
			if err := resp.Err(); err != nil {
				if resp.CompactRevision > 0 {
					return 0, nil // resume from now; the next Sample reads the current value
				}
				return rev, s.cfg.Errorf("watchKey %q: watch: %s", s.meta.WatchKey, s.cfg.Redact(err.Error()))
			}
			quiet.Reset(2 * interval)
			rev = resp.Header.Revision + 1
			if len(resp.Events) > 0 {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}
	}
}

// Close closes the client if it was opened.
func (s *Scaler) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	return s.client.Close()
}
