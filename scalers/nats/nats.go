// Package nats is the Tidal scaler for NATS JetStream consumers (trigger type "nats-jetstream").
//
// The metric is the consumer's lag as KEDA defines it: num_pending + num_ack_pending, or the stream's last
// sequence when the consumer does not exist yet. It is read from one of two places:
//
//   - natsServerMonitoringEndpoint (KEDA's key: host:port of the server's HTTP monitoring port) — the /jsz
//     endpoint with acc=<account>&consumers=true&config=true, as KEDA does. account is required here. In a
//     cluster only the consumer leader's numbers are current; like KEDA the reader finds the leader's monitoring
//     port (/varz connect_urls, or server names under the endpoint's domain) and remembers it until it moves.
//   - natsServer (a Tidal addition: nats://[user:pass@]host:4222, comma separated for several) — the JetStream
//     API ($JS.API.CONSUMER.INFO), answered by the consumer's leader. It needs no monitoring port, works for
//     clustered streams, and enables push: Watch subscribes to the consumer's filter subjects (or the stream's
//     subjects) and signals on a publish while the trigger is inactive. Credentials come from the URL or the
//     authParams username/password or token; TLS from tls=enable with ca/cert/key.
//
// When both are set, Sample reads the monitoring endpoint (KEDA-compatible numbers) and Watch uses natsServer.
// With only the monitoring endpoint, Watch returns an error and the trigger is polled.
//
// Other metadata as in KEDA: stream, consumer, lagThreshold (default 10), activationLagThreshold (default 0),
// useHttps. Tidal additions: jsDomain (JetStream domain for natsServer), timeout (per call, default 5s).
package nats

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/onemetric"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "nats-jetstream"

const defaultTimeout = 5 * time.Second

// Metadata is the nats-jetstream trigger's metadata and authentication.
type Metadata struct {
	Account                string `tidal:"name=account,order=authParams;triggerMetadata,optional"`
	Stream                 string `tidal:"name=stream"`
	Consumer               string `tidal:"name=consumer"`
	LagThreshold           int64  `tidal:"name=lagThreshold,default=10,target"`
	ActivationLagThreshold int64  `tidal:"name=activationLagThreshold,default=0,range=0;"`
	MonitoringEndpoint     string `tidal:"name=natsServerMonitoringEndpoint,order=authParams;triggerMetadata,optional"`
	UseHTTPS               bool   `tidal:"name=useHttps,default=false"`

	// Tidal additions.
	Server   string        `tidal:"name=natsServer,order=authParams;triggerMetadata,optional"`
	JSDomain string        `tidal:"name=jsDomain,optional"`
	Timeout  time.Duration `tidal:"name=timeout,default=5s,range=0.001;"`

	Username string `tidal:"name=username,order=authParams;triggerMetadata,optional"`
	Password string `tidal:"name=password,order=authParams;triggerMetadata,optional"`
	Token    string `tidal:"name=token,order=authParams;triggerMetadata,optional"`
	TLS      string `tidal:"name=tls,order=authParams,default=disable,enum=enable;disable"`
	CA       string `tidal:"name=ca,order=authParams,optional"`
	Cert     string `tidal:"name=cert,order=authParams,optional"`
	Key      string `tidal:"name=key,order=authParams,optional"`

	// Resolved by Validate.
	monitoringURL string
	servers       []string
}

// Validate checks cross-field rules. Errors never repeat natsServer, which may carry a password.
func (m *Metadata) Validate() error {
	if m.MonitoringEndpoint == "" && m.Server == "" {
		return fmt.Errorf("natsServerMonitoringEndpoint: one of natsServerMonitoringEndpoint or natsServer is required")
	}
	if err := checkName("stream", m.Stream); err != nil {
		return err
	}
	if err := checkName("consumer", m.Consumer); err != nil {
		return err
	}
	if m.LagThreshold <= 0 {
		return fmt.Errorf("lagThreshold: must be > 0, got %d", m.LagThreshold)
	}
	if m.ActivationLagThreshold < 0 {
		return fmt.Errorf("activationLagThreshold: must be >= 0, got %d", m.ActivationLagThreshold)
	}
	if m.Timeout <= 0 {
		return fmt.Errorf("timeout: must be > 0")
	}
	if m.MonitoringEndpoint != "" {
		if m.Account == "" {
			return fmt.Errorf("account: required with natsServerMonitoringEndpoint")
		}
		u, err := monitoringURL(m.MonitoringEndpoint, m.UseHTTPS, m.Account)
		if err != nil {
			return err
		}
		m.monitoringURL = u
	}
	if m.Server != "" {
		for _, s := range strings.Split(m.Server, ",") {
			s = strings.TrimSpace(s)
			u, err := url.Parse(s)
			if err != nil || u.Host == "" {
				return fmt.Errorf("natsServer: want URLs such as nats://host:4222, separated by commas")
			}
			switch strings.ToLower(u.Scheme) {
			case "nats", "tls", "ws", "wss":
			default:
				return fmt.Errorf("natsServer: scheme must be nats, tls, ws or wss, got %q", u.Scheme)
			}
			m.servers = append(m.servers, s)
		}
	}
	if m.Password != "" && m.Username == "" {
		return fmt.Errorf("username: required with password")
	}
	if m.Token != "" && m.Username != "" {
		return fmt.Errorf("token: use either token or username/password")
	}
	if m.TLS == "enable" && (m.Cert == "") != (m.Key == "") {
		return fmt.Errorf("cert: cert and key must be given together")
	}
	if m.JSDomain != "" && strings.ContainsAny(m.JSDomain, " \t.*>") {
		return fmt.Errorf("jsDomain: must not contain whitespace, '.', '*' or '>', got %q", m.JSDomain)
	}
	return nil
}

// checkName rejects stream and consumer names that cannot appear in a JetStream API subject.
func checkName(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s: must not be empty", field)
	}
	if strings.ContainsAny(v, " \t\r\n.*>/\\") {
		return fmt.Errorf("%s: must not contain whitespace, '.', '*', '>', '/' or '\\', got %q", field, v)
	}
	return nil
}

// monitoringURL builds KEDA's /jsz URL from host:port. A scheme in the endpoint, which KEDA does not expect,
// is honoured rather than doubled.
func monitoringURL(endpoint string, useHTTPS bool, account string) (string, error) {
	scheme := "http"
	if useHTTPS {
		scheme = "https"
	}
	hostPort := endpoint
	if i := strings.Index(endpoint, "://"); i >= 0 {
		scheme, hostPort = strings.ToLower(endpoint[:i]), endpoint[i+3:]
		if scheme != "http" && scheme != "https" {
			return "", fmt.Errorf("natsServerMonitoringEndpoint: want host:port, got scheme %q", scheme)
		}
	}
	hostPort = strings.TrimSuffix(hostPort, "/")
	u, err := url.Parse(scheme + "://" + hostPort)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("natsServerMonitoringEndpoint: want host:port such as nats.nats.svc:8222, got %q", endpoint)
	}
	q := url.Values{}
	q.Set("acc", account)
	q.Set("consumers", "true")
	q.Set("config", "true")
	return u.String() + "/jsz?" + q.Encode(), nil
}

// ParseMetadata parses and validates a trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (*Metadata, error) {
	var m Metadata
	if err := scalers.Parse(cfg, &m); err != nil {
		return nil, err
	}
	for _, k := range []string{"password", "token"} {
		if _, plain := cfg.Metadata[k]; plain {
			return nil, cfg.Errorf("%s: set it in a TriggerAuthentication or with %sFromEnv, not in metadata", k, k)
		}
	}
	return &m, nil
}

// lagReader reads a consumer's lag from one source.
type lagReader interface {
	lag(ctx context.Context) (int64, error)
	close() error
}

// Scaler is the nats-jetstream scaler.
type Scaler struct {
	onemetric.Base
	meta *Metadata
	log  *zap.Logger

	reader lagReader   // Sample's source
	api    *apiReader  // the JetStream API reader when natsServer is set (also Watch's source); may be reader
	active atomic.Bool // the last Sample's activity; Watch only signals while inactive

}

var _ scalers.PushScaler = (*Scaler)(nil)

// New builds a nats-jetstream scaler. It does not connect: an unreachable server is a Sample error.
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
	s := &Scaler{meta: meta, log: cfg.Logger.With(zap.String("stream", meta.Stream), zap.String("consumer", meta.Consumer))}
	s.Base = onemetric.New(cfg, cfg.MetricName("nats-jetstream", meta.Stream), float64(meta.LagThreshold), float64(meta.ActivationLagThreshold), s.read)
	s.Timeout, s.Release = meta.Timeout, s.release
	s.Source = fmt.Sprintf("stream %q consumer %q", meta.Stream, meta.Consumer)
	if meta.Server != "" {
		s.api = newAPIReader(cfg, meta, tlsCfg)
		s.reader = s.api
	}
	if meta.monitoringURL != "" {
		r, err := newMonitorReader(cfg, meta, tlsCfg)
		if err != nil {
			if s.api != nil {
				_ = s.api.close()
			}
			return nil, cfg.Errorf("%w", err)
		}
		s.reader = r
	}
	return s, nil
}

// Register adds the nats-jetstream scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// Sample reads the consumer's lag and whether it is above activationLagThreshold (onemetric.Base), and keeps
// that activity for Watch.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, active, err := s.Base.Sample(ctx)
	if err == nil {
		s.active.Store(active)
	}
	return v, active, err
}

// read reads the consumer's lag.
func (s *Scaler) read(ctx context.Context) (float64, error) {
	lag, err := s.reader.lag(ctx)
	return float64(lag), err
}

// release closes the NATS connection and HTTP client (Close calls it once).
func (s *Scaler) release() error {
	var err error
	if s.reader != nil && s.reader != lagReader(s.api) {
		err = s.reader.close()
	}
	if s.api != nil {
		if cerr := s.api.close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return s.Cfg.Errorf("close: %w", err)
	}
	return nil
}
