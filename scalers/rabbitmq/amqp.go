package rabbitmq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tidalscale/tidal/scalers"
)

// amqpConn is one AMQP connection shared by every trigger that reads the same broker, vhost and user. It dials
// lazily and redials when the broker closed it, so a broker restart heals on the next read.
type amqpConn struct {
	uri    string // may hold a password: never log or wrap it
	config amqp.Config

	mu   sync.Mutex
	conn *amqp.Connection
}

func (c *amqpConn) channel(ctx context.Context) (*amqp.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.IsClosed() {
		conn, err := c.dial(ctx)
		if err != nil {
			return nil, err
		}
		c.conn = conn
	}
	ch, err := c.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	return ch, nil
}

func (c *amqpConn) dial(ctx context.Context) (*amqp.Connection, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultTimeout)
	}
	cfg := c.config
	// The deadline covers TCP connect, TLS and the AMQP handshake; amqp091 clears it once the connection is open.
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := conn.SetDeadline(deadline); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return conn, nil
	}
	type result struct {
		conn *amqp.Connection
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := amqp.DialConfig(c.uri, cfg)
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect: %w", sanitizeDialError(r.err))
		}
		return r.conn, nil
	case <-ctx.Done():
		// The dial goroutine finishes by its own deadline; close what it may still open.
		go func() {
			if r := <-done; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("connect: %w", ctx.Err())
	}
}

// sanitizeDialError drops url.Error wrappers that would quote the URI; amqp091's own errors never carry it.
func sanitizeDialError(err error) error {
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		return amqpErr
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return netErr
	}
	if errors.Is(err, amqp.ErrCredentials) || errors.Is(err, amqp.ErrVhost) || errors.Is(err, amqp.ErrSASL) {
		return err
	}
	// Unknown error types may come from URI parsing (already validated): keep only a generic text.
	return errors.New("dial failed")
}

func (c *amqpConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.IsClosed() {
		return nil
	}
	return c.conn.Close()
}

// amqpReader reads a queue's ready-message count with a passive queue.declare on its own channel.
type amqpReader struct {
	cfg     *scalers.TriggerConfig
	queue   string
	key     string
	uri     string
	config  amqp.Config
	release func() error

	mu   sync.Mutex
	conn *amqpConn
	ch   *amqp.Channel
}

func newAMQPReader(cfg *scalers.TriggerConfig, meta *Metadata, tlsCfg *tls.Config) *amqpReader {
	u := *meta.hostURL
	config := amqp.Config{
		TLSClientConfig: tlsCfg,
		Properties:      amqp.Table{"connection_name": "tidal-scaler"},
	}
	if meta.Username != "" {
		config.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: meta.Username, Password: meta.Password}}
	}
	// An empty path ("amqp://host:5672/") means the default vhost "/", not a vhost named "".
	if meta.VhostName != nil {
		config.Vhost = *meta.VhostName
	} else if u.Path == "" || u.Path == "/" {
		config.Vhost = "/"
	}
	user, pass := meta.Username, meta.Password
	if user == "" && u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	key := scalers.ClientKey("rabbitmq-amqp", map[string]string{
		"host":  u.Host,
		"path":  u.EscapedPath(),
		"query": u.RawQuery,
		"vhost": config.Vhost,
		"user":  user,
		"pass":  pass,
		"tls":   tlsKey(meta),
	})
	return &amqpReader{cfg: cfg, queue: meta.QueueName, key: key, uri: meta.Host, config: config}
}

// channel returns the reader's open channel, acquiring the shared connection and opening a channel as needed.
func (r *amqpReader) channel(ctx context.Context) (*amqp.Channel, error) {
	if r.ch != nil && !r.ch.IsClosed() {
		return r.ch, nil
	}
	if r.conn == nil {
		conn, release, err := scalers.Acquire(r.cfg.Shared, r.key,
			func() (*amqpConn, error) { return &amqpConn{uri: r.uri, config: r.config}, nil },
			func(c *amqpConn) error { return c.close() })
		if err != nil {
			return nil, err
		}
		r.conn, r.release = conn, release
	}
	ch, err := r.conn.channel(ctx)
	if err != nil {
		return nil, err
	}
	r.ch = ch
	return ch, nil
}

func (r *amqpReader) read(ctx context.Context) (float64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch, err := r.channel(ctx)
	if err != nil {
		return 0, err
	}
	type result struct {
		q   amqp.Queue
		err error
	}
	done := make(chan result, 1)
	go func() {
		q, err := ch.QueueDeclarePassive(r.queue, false, false, false, false, nil)
		done <- result{q, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			// A failed passive declare (404: no such queue) closes the channel; the next read opens another.
			return 0, fmt.Errorf("passive queue.declare: %w", res.err)
		}
		return float64(res.q.Messages), nil
	case <-ctx.Done():
		// Closing the channel unblocks the pending declare; the next read opens a fresh one.
		_ = ch.Close()
		r.ch = nil
		return 0, fmt.Errorf("passive queue.declare: %w", ctx.Err())
	}
}

func (r *amqpReader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if r.ch != nil && !r.ch.IsClosed() {
		if err := r.ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			errs = append(errs, err)
		}
	}
	r.ch = nil
	if r.release != nil {
		if err := r.release(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			errs = append(errs, err)
		}
		r.release, r.conn = nil, nil
	}
	return errors.Join(errs...)
}
