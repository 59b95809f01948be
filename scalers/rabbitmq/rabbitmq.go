// Package rabbitmq is the Tidal scaler for RabbitMQ queues (trigger type "rabbitmq").
//
// It speaks KEDA's metadata: host (amqp://, amqps://, http:// or https://, also hostFromEnv or authParams),
// protocol (auto|amqp|http), queueName, mode (QueueLength|MessageRate) with value and activationValue, vhostName,
// useRegex with operation (sum|max|avg), excludeUnacknowledged, pageSize, timeout (milliseconds, http only in
// KEDA; Tidal applies it to AMQP calls too), unsafeSsl, and the authParams username, password, tls (enable|
// disable), ca, cert, key and keyPassword; over http also OAuth2 client credentials (oauthTokenURI, clientID,
// clientSecret, optional scopes and endpointParams; exclusive with username/password), whose token is cached
// until shortly before it expires and shared by the triggers of the same client.
//
// Protocol amqp reads the queue with a passive queue.declare: the metric is the number of messages ready for
// delivery. Protocol http reads RabbitMQ's management API (the rabbitmq_management plugin): QueueLength is
// "messages" (ready + unacknowledged, or only ready with excludeUnacknowledged) and MessageRate is
// message_stats.publish_details.rate. With useRegex, queueName is a regular expression matched by the
// management API and the queues' values are combined with operation.
//
// Push: core AMQP has no notification for "a message arrived in a queue you do not consume". Watch is therefore
// a fast broker-side poll: it re-reads the queue every watchInterval (a Tidal addition; default 200ms over AMQP,
// 1s over HTTP whose statistics refresh every ~5s) and signals when the trigger turns active. It costs one
// queue.declare round trip per interval and trigger, and keeps scale-from-zero latency near watchInterval
// instead of pollingInterval.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/onemetric"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "rabbitmq"

// Modes and protocols, as KEDA spells them.
const (
	ModeQueueLength = "QueueLength"
	ModeMessageRate = "MessageRate"

	ProtocolAuto = "auto"
	ProtocolAMQP = "amqp"
	ProtocolHTTP = "http"
)

const (
	// defaultQueueLength is KEDA's target when neither mode/value nor the deprecated queueLength is given.
	defaultQueueLength = 20
	defaultTimeout     = 5 * time.Second
	defaultWatchAMQP   = 200 * time.Millisecond
	defaultWatchHTTP   = time.Second
	minWatchInterval   = 10 * time.Millisecond
	maxWatchBackoff    = 5 * time.Second
)

// Metadata is the rabbitmq trigger's metadata and authentication.
type Metadata struct {
	Host      string `tidal:"name=host,order=triggerMetadata;authParams"`
	Protocol  string `tidal:"name=protocol,order=triggerMetadata;authParams,default=auto,enum=auto;amqp;http"`
	QueueName string `tidal:"name=queueName"`
	Mode      string `tidal:"name=mode,optional,enum=QueueLength;MessageRate"`
	// Value is the target per replica (messages, or messages per second for MessageRate).
	Value *float64 `tidal:"name=value,optional,target"`
	// QueueLength is KEDA's deprecated spelling of mode=QueueLength + value.
	QueueLength     *float64 `tidal:"name=queueLength,optional,target"`
	ActivationValue float64  `tidal:"name=activationValue,default=0,range=0;"`
	VhostName       *string  `tidal:"name=vhostName,optional"`

	UseRegex              bool   `tidal:"name=useRegex,default=false"`
	Operation             string `tidal:"name=operation,default=sum,enum=sum;max;avg"`
	ExcludeUnacknowledged bool   `tidal:"name=excludeUnacknowledged,default=false"`
	PageSize              int64  `tidal:"name=pageSize,default=100,range=1;"`
	// TimeoutMillis is KEDA's timeout: milliseconds.
	TimeoutMillis int64 `tidal:"name=timeout,optional,range=1;"`
	UnsafeSsl     bool  `tidal:"name=unsafeSsl,default=false"`

	Username    string `tidal:"name=username,order=authParams;triggerMetadata,optional"`
	Password    string `tidal:"name=password,order=authParams;triggerMetadata,optional"`
	TLS         string `tidal:"name=tls,order=authParams,default=disable,enum=enable;disable"`
	CA          string `tidal:"name=ca,order=authParams,optional"`
	Cert        string `tidal:"name=cert,order=authParams,optional"`
	Key         string `tidal:"name=key,order=authParams,optional"`
	KeyPassword string `tidal:"name=keyPassword,order=authParams,optional"`

	// WatchInterval is a Tidal addition: how often Watch re-reads the queue.
	WatchInterval time.Duration `tidal:"name=watchInterval,optional,range=0.001;"`

	// OAuth2 client credentials (KEDA's oauthTokenURI, clientID, clientSecret, scopes, endpointParams), for the
	// management API behind an OAuth2 gateway: on when any of the three is given.
	httpauth.OAuth

	// Resolved by Validate.
	hostURL *url.URL
}

// Validate applies KEDA's cross-field rules and resolves protocol, mode and value. Errors never repeat the host,
// which may carry a password.
func (m *Metadata) Validate() error {
	u, err := url.Parse(m.Host)
	if err != nil || u.Host == "" {
		return fmt.Errorf("host: want a URL such as amqp://host:5672/vhost or http://host:15672/vhost")
	}
	scheme := strings.ToLower(u.Scheme)
	var schemeProtocol string
	switch scheme {
	case "amqp", "amqps":
		schemeProtocol = ProtocolAMQP
	case "http", "https":
		schemeProtocol = ProtocolHTTP
	default:
		return fmt.Errorf("host: scheme must be amqp, amqps, http or https, got %q", u.Scheme)
	}
	switch m.Protocol {
	case ProtocolAuto:
		m.Protocol = schemeProtocol
	case schemeProtocol:
	default:
		return fmt.Errorf("protocol: %s does not match the host's %s:// scheme", m.Protocol, scheme)
	}
	m.hostURL = u

	switch {
	case m.QueueLength != nil && (m.Mode != "" || m.Value != nil):
		return fmt.Errorf("queueLength: deprecated; configure only mode and value")
	case m.QueueLength != nil:
		m.Mode, m.Value = ModeQueueLength, m.QueueLength
	case m.Mode == "" && m.Value == nil:
		v := float64(defaultQueueLength)
		m.Mode, m.Value = ModeQueueLength, &v
	case m.Mode == "":
		return fmt.Errorf("mode: must be specified together with value")
	case m.Value == nil:
		return fmt.Errorf("value: must be specified together with mode")
	}
	if *m.Value <= 0 {
		return fmt.Errorf("value: must be > 0, got %v", *m.Value)
	}
	if m.ActivationValue < 0 {
		return fmt.Errorf("activationValue: must be >= 0, got %v", m.ActivationValue)
	}
	if strings.TrimSpace(m.QueueName) == "" {
		return fmt.Errorf("queueName: must not be empty")
	}
	if m.Protocol == ProtocolAMQP {
		switch {
		case m.Mode != ModeQueueLength:
			return fmt.Errorf("mode: %s needs protocol http (the management API); amqp only reads QueueLength", m.Mode)
		case m.UseRegex:
			return fmt.Errorf("useRegex: only supported with protocol http")
		case m.ExcludeUnacknowledged:
			return fmt.Errorf("excludeUnacknowledged: only supported with protocol http")
		}
	}
	if (m.Username == "") != (m.Password == "") {
		return fmt.Errorf("username: username and password must be given together")
	}
	if m.oauth() {
		switch {
		case m.Protocol == ProtocolAMQP:
			return fmt.Errorf("oauthTokenURI: OAuth2 needs protocol http (the management API)")
		case m.Username != "" || u.User != nil:
			return fmt.Errorf("oauthTokenURI: OAuth2 and username/password cannot be combined")
		case m.ClientSecret == "":
			return fmt.Errorf("clientSecret: required by OAuth2 (oauthTokenURI, clientID)")
		}
		if errs := m.OAuth.Validate("OAuth2 client credentials"); len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	if m.TLS == "enable" {
		if (m.Cert == "") != (m.Key == "") {
			return fmt.Errorf("cert: cert and key must be given together")
		}
		if scheme != "amqps" && scheme != "https" {
			return fmt.Errorf("tls: enable needs an amqps:// or https:// host, got %s://", scheme)
		}
	}
	if m.WatchInterval != 0 && m.WatchInterval < minWatchInterval {
		return fmt.Errorf("watchInterval: must be >= %v, got %v", minWatchInterval, m.WatchInterval)
	}
	return nil
}

// oauth reports whether the trigger authenticates with OAuth2 client credentials, as KEDA decides it: any of
// oauthTokenURI, clientID and clientSecret given.
func (m *Metadata) oauth() bool {
	return m.TokenURL != "" || m.ClientID != "" || m.ClientSecret != ""
}

func (m *Metadata) timeout() time.Duration {
	if m.TimeoutMillis > 0 {
		return time.Duration(m.TimeoutMillis) * time.Millisecond
	}
	return defaultTimeout
}

func (m *Metadata) watchInterval() time.Duration {
	switch {
	case m.WatchInterval > 0:
		return m.WatchInterval
	case m.Protocol == ProtocolHTTP:
		return defaultWatchHTTP
	default:
		return defaultWatchAMQP
	}
}

// ParseMetadata parses and validates a trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (*Metadata, error) {
	var m Metadata
	if err := scalers.Parse(cfg, &m); err != nil {
		return nil, err
	}
	// A password written in clear in metadata would be logged with the object; KEDA only reads it from
	// authentication or passwordFromEnv, and so does Tidal.
	if _, plain := cfg.Metadata["password"]; plain {
		return nil, cfg.Errorf("password: set it in a TriggerAuthentication or with passwordFromEnv, not in metadata")
	}
	return &m, nil
}

// reader reads the current value of a trigger's queue(s) from one protocol.
type reader interface {
	read(ctx context.Context) (float64, error)
	close() error
}

// Scaler is the rabbitmq scaler.
type Scaler struct {
	onemetric.Base
	meta   *Metadata
	log    *zap.Logger
	reader reader
}

var _ scalers.PushScaler = (*Scaler)(nil)

// New builds a rabbitmq scaler. It does not connect: an unreachable broker is a Sample error.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	cfg.Normalize()
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := buildTLS(meta)
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	s := &Scaler{meta: meta, log: cfg.Logger.With(zap.String("queue", meta.QueueName))}
	s.Base = onemetric.New(cfg, cfg.MetricName("rabbitmq", url.QueryEscape(meta.QueueName)), *meta.Value, meta.ActivationValue, s.read)
	s.Timeout, s.Release, s.Source = meta.timeout(), s.release, fmt.Sprintf("queue %q", meta.QueueName)
	switch meta.Protocol {
	case ProtocolAMQP:
		s.reader = newAMQPReader(cfg, meta, tlsCfg)
	default:
		r, err := newHTTPReader(cfg, meta, tlsCfg)
		if err != nil {
			return nil, cfg.Errorf("%w", err)
		}
		s.reader = r
	}
	return s, nil
}

// Register adds the rabbitmq scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// read reads the queue: its length or publish rate. Sample (onemetric.Base) bounds it with the trigger's timeout
// and reports it active above activationValue.
func (s *Scaler) read(ctx context.Context) (float64, error) { return s.reader.read(ctx) }

// Watch re-reads the queue every watchInterval and signals on changed when the trigger turns active (for
// QueueLength: the queue went from empty to non-empty). It is a fast broker-side poll, not a broker push; see the
// package doc. Read errors are logged once and retried with a backoff up to maxWatchBackoff; Watch returns only
// when ctx is done.
func (s *Scaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	interval := s.meta.watchInterval()
	wait := interval
	timer := time.NewTimer(0)
	defer timer.Stop()
	wasActive, failing := false, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.meta.timeout())
		v, err := s.reader.read(rctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing {
				s.log.Warn("rabbitmq watch read failed; retrying with backoff",
					zap.String("error", s.Cfg.Redact(err.Error())), zap.Duration("interval", interval))
				failing = true
			}
			wait = min(2*wait, maxWatchBackoff)
		default:
			if failing {
				s.log.Info("rabbitmq watch read recovered")
				failing = false
			}
			wait = interval
			active := v > s.meta.ActivationValue
			if active && !wasActive {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
			wasActive = active
		}
		timer.Reset(wait)
	}
}

// release closes the connection or HTTP client (Close calls it once).
func (s *Scaler) release() error {
	if err := s.reader.close(); err != nil {
		return s.Cfg.Errorf("close: %w", err)
	}
	return nil
}
