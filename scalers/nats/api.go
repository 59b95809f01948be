package nats

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
)

// natsConn is one NATS connection shared by every trigger that reads the same servers with the same
// credentials. It connects lazily; nats.go reconnects by itself after that.
type natsConn struct {
	servers string // may hold a password: never log or wrap it
	opts    []natsgo.Option

	mu sync.Mutex
	nc *natsgo.Conn
}

func (c *natsConn) conn(ctx context.Context) (*natsgo.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil && !c.nc.IsClosed() {
		return c.nc, nil
	}
	timeout := defaultTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("connect: %w", context.DeadlineExceeded)
	}
	opts := append([]natsgo.Option{natsgo.Timeout(timeout)}, c.opts...)
	type result struct {
		nc  *natsgo.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := natsgo.Connect(c.servers, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect: %w", r.err)
		}
		c.nc = r.nc
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect: %w", ctx.Err())
	}
}

func (c *natsConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
	return nil
}

// apiError is the error object of a JetStream API response.
type apiError struct {
	Code        int                 `json:"code"`
	ErrorCode   jetstream.ErrorCode `json:"err_code"`
	Description string              `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("jetstream API error %d (%d): %s", e.Code, e.ErrorCode, e.Description)
}

// consumerInfo is the part of $JS.API.CONSUMER.INFO's answer the scaler reads.
type consumerInfo struct {
	Error  *apiError `json:"error"`
	Config struct {
		FilterSubject  string   `json:"filter_subject"`
		FilterSubjects []string `json:"filter_subjects"`
	} `json:"config"`
	NumAckPending int64  `json:"num_ack_pending"`
	NumPending    uint64 `json:"num_pending"`
}

// streamInfo is the part of $JS.API.STREAM.INFO's answer the scaler reads.
type streamInfo struct {
	Error  *apiError `json:"error"`
	Config struct {
		Subjects []string `json:"subjects"`
	} `json:"config"`
	State struct {
		LastSeq uint64 `json:"last_seq"`
	} `json:"state"`
}

// apiReader reads a consumer's lag through the JetStream API.
type apiReader struct {
	cfg    *scalers.TriggerConfig
	meta   *Metadata
	key    string
	open   func() (*natsConn, error)
	prefix string // "$JS.API" or "$JS.<domain>.API"

	mu      sync.Mutex
	shared  *natsConn
	release func() error
}

func newAPIReader(cfg *scalers.TriggerConfig, meta *Metadata, tlsCfg *tls.Config) *apiReader {
	opts := []natsgo.Option{
		natsgo.Name("tidal-scaler"),
		natsgo.MaxReconnects(-1),
		natsgo.NoCallbacksAfterClientClose(),
	}
	switch {
	case meta.Username != "":
		opts = append(opts, natsgo.UserInfo(meta.Username, meta.Password))
	case meta.Token != "":
		opts = append(opts, natsgo.Token(meta.Token))
	}
	if tlsCfg != nil {
		opts = append(opts, natsgo.Secure(tlsCfg))
	}
	prefix := "$JS.API"
	if meta.JSDomain != "" {
		prefix = "$JS." + meta.JSDomain + ".API"
	}
	servers := strings.Join(meta.servers, ",")
	key := scalers.ClientKey("nats", map[string]string{
		"servers": servers, "user": meta.Username, "password": meta.Password, "token": meta.Token, "tls": tlsKey(meta),
	})
	return &apiReader{
		cfg: cfg, meta: meta, key: key, prefix: prefix,
		open: func() (*natsConn, error) { return &natsConn{servers: servers, opts: opts}, nil },
	}
}

func (r *apiReader) conn(ctx context.Context) (*natsgo.Conn, error) {
	r.mu.Lock()
	if r.shared == nil {
		c, release, err := scalers.Acquire(r.cfg.Shared, r.key, r.open, func(c *natsConn) error { return c.close() })
		if err != nil {
			r.mu.Unlock()
			return nil, err
		}
		r.shared, r.release = c, release
	}
	c := r.shared
	r.mu.Unlock()
	return c.conn(ctx)
}

// request sends one JetStream API request and decodes its JSON answer into out.
func (r *apiReader) request(ctx context.Context, subject string, out any) error {
	nc, err := r.conn(ctx)
	if err != nil {
		return err
	}
	msg, err := nc.RequestWithContext(ctx, subject, nil)
	if err != nil {
		if errors.Is(err, natsgo.ErrNoResponders) {
			return fmt.Errorf("%s: no responders: JetStream is not enabled for this account or domain", subject)
		}
		return fmt.Errorf("%s: %w", subject, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return fmt.Errorf("%s: decode: %w", subject, err)
	}
	return nil
}

func (r *apiReader) consumerInfo(ctx context.Context) (*consumerInfo, error) {
	var ci consumerInfo
	if err := r.request(ctx, r.prefix+".CONSUMER.INFO."+r.meta.Stream+"."+r.meta.Consumer, &ci); err != nil {
		return nil, err
	}
	if ci.Error != nil {
		return nil, ci.Error
	}
	return &ci, nil
}

func (r *apiReader) streamInfo(ctx context.Context) (*streamInfo, error) {
	var si streamInfo
	if err := r.request(ctx, r.prefix+".STREAM.INFO."+r.meta.Stream, &si); err != nil {
		return nil, err
	}
	if si.Error != nil {
		if si.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound {
			return nil, errors.New("stream not found")
		}
		return nil, si.Error
	}
	return &si, nil
}

// lag is KEDA's: num_pending + num_ack_pending of the consumer, or the stream's last sequence when the
// consumer does not exist (yet): every message is then still to be processed.
func (r *apiReader) lag(ctx context.Context) (int64, error) {
	ci, err := r.consumerInfo(ctx)
	if err == nil {
		return clampAdd(ci.NumPending, ci.NumAckPending), nil
	}
	var ae *apiError
	if !errors.As(err, &ae) || ae.ErrorCode != jetstream.JSErrCodeConsumerNotFound {
		return 0, err
	}
	si, err := r.streamInfo(ctx)
	if err != nil {
		return 0, err
	}
	return clampAdd(si.State.LastSeq, 0), nil
}

func clampAdd(pending uint64, ackPending int64) int64 {
	const maxInt64 = 1<<63 - 1
	if pending > maxInt64 {
		return maxInt64
	}
	v := int64(pending)
	if ackPending > 0 && v > maxInt64-ackPending {
		return maxInt64
	}
	return v + ackPending
}

// subjects returns what a publish that adds lag is sent to: the consumer's filter subjects, or the stream's
// subjects when the consumer filters nothing or does not exist yet.
func (r *apiReader) subjects(ctx context.Context) ([]string, error) {
	ci, err := r.consumerInfo(ctx)
	if err == nil {
		if len(ci.Config.FilterSubjects) > 0 {
			return ci.Config.FilterSubjects, nil
		}
		if ci.Config.FilterSubject != "" {
			return []string{ci.Config.FilterSubject}, nil
		}
	} else {
		var ae *apiError
		if !errors.As(err, &ae) || ae.ErrorCode != jetstream.JSErrCodeConsumerNotFound {
			return nil, err
		}
	}
	si, err := r.streamInfo(ctx)
	if err != nil {
		return nil, err
	}
	return si.Config.Subjects, nil
}

func (r *apiReader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.release == nil {
		return nil
	}
	err := r.release()
	r.release, r.shared = nil, nil
	return err
}

// Watch subscribes (a plain core subscription, no server-side state) to the subjects whose publishes add to the
// consumer's lag and signals on changed for a publish while the last Sample was inactive; while active the
// trigger is polled anyway, so a busy stream does not cause a Sample per message. It needs natsServer; with only
// the monitoring endpoint, or a stream without subjects (a mirror or sourced stream), it returns an error and the
// caller polls. Watch returns nil when ctx is done and an error if the subscription dies.
func (s *Scaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	if s.api == nil {
		return s.Cfg.Errorf("natsServer: push needs natsServer (the JetStream API); natsServerMonitoringEndpoint alone is polled")
	}
	sctx, cancel := context.WithTimeout(ctx, s.meta.Timeout)
	subjects, err := s.api.subjects(sctx)
	if err == nil && len(subjects) == 0 {
		err = errors.New("stream has no subjects (mirror or sourced stream): nothing to subscribe to")
	}
	var nc *natsgo.Conn
	if err == nil {
		nc, err = s.api.conn(sctx)
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return s.Cfg.Errorf("watch stream %q consumer %q: %w", s.meta.Stream, s.meta.Consumer, err)
	}
	notify := func(*natsgo.Msg) {
		if s.active.Load() {
			return
		}
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	subs := make([]*natsgo.Subscription, 0, len(subjects))
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	for _, subj := range subjects {
		sub, err := nc.Subscribe(subj, notify)
		if err != nil {
			return s.Cfg.Errorf("watch subscribe %q: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	// The subscription is live once the server has processed it; a flush makes that so before we report it.
	fctx, fcancel := context.WithTimeout(ctx, s.meta.Timeout)
	err = nc.FlushWithContext(fctx)
	fcancel()
	if err != nil && ctx.Err() == nil {
		s.log.Warn("nats watch flush failed; the subscription is retried by the client", zap.String("error", s.Cfg.Redact(err.Error())))
	}
	s.log.Debug("nats watch subscribed", zap.Strings("subjects", subjects))
	check := time.NewTicker(5 * time.Second)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-check.C:
			for _, sub := range subs {
				if !sub.IsValid() {
					return s.Cfg.Errorf("watch: subscription to %q closed", sub.Subject)
				}
			}
		}
	}
}
