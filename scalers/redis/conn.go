package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// mode is the Redis deployment a trigger talks to, chosen by its trigger type.
type mode int

const (
	modeStandalone mode = iota
	modeCluster
	modeSentinel
)

func (m mode) String() string {
	switch m {
	case modeCluster:
		return "cluster"
	case modeSentinel:
		return "sentinel"
	default:
		return "standalone"
	}
}

// Client timeouts. A Sample whose context has no deadline gets sampleTimeout.
const (
	dialTimeout   = 5 * time.Second
	ioTimeout     = 3 * time.Second
	sampleTimeout = 10 * time.Second
	poolSize      = 4
)

// connMeta is the connection part of every Redis trigger, with KEDA's metadata names. Values may come from the
// trigger metadata (or its <name>FromEnv variant) or from the TriggerAuthentication, in KEDA's order.
type connMeta struct {
	Addresses        []string `tidal:"name=address;addresses,order=triggerMetadata;authParams,optional"`
	Hosts            []string `tidal:"name=host;hosts,order=triggerMetadata;authParams,optional"`
	Ports            []string `tidal:"name=port;ports,order=triggerMetadata;authParams,optional"`
	Username         string   `tidal:"name=username,order=triggerMetadata;authParams,optional"`
	Password         string   `tidal:"name=password,order=triggerMetadata;authParams,optional"`
	SentinelUsername string   `tidal:"name=sentinelUsername,order=triggerMetadata;authParams,optional"`
	SentinelPassword string   `tidal:"name=sentinelPassword,order=triggerMetadata;authParams,optional"`
	SentinelMaster   string   `tidal:"name=sentinelMaster,order=triggerMetadata;authParams,optional"`
	DatabaseIndex    int      `tidal:"name=databaseIndex,default=0,range=0;"`
	EnableTLS        *bool    `tidal:"name=enableTLS,optional"`
	TLS              string   `tidal:"name=tls,order=authParams,optional,enum=enable;disable"`
	UnsafeSsl        bool     `tidal:"name=unsafeSsl,default=false"`
	CA               string   `tidal:"name=ca,order=authParams,optional"`
	Cert             string   `tidal:"name=cert;Cert,order=authParams,optional"`
	Key              string   `tidal:"name=key,order=authParams,optional"`
	KeyPassword      string   `tidal:"name=keyPassword,order=authParams,optional"`
	// EnableKeyspaceNotifications governs push (see the package doc): unset uses notifications the server already
	// publishes, true may add the missing classes server-wide, false never watches.
	EnableKeyspaceNotifications *bool `tidal:"name=enableKeyspaceNotifications,optional"`

	mode mode
}

// notifyPolicy maps enableKeyspaceNotifications to the watch's policy.
func (c *connMeta) notifyPolicy() notifyPolicy {
	switch {
	case c.EnableKeyspaceNotifications == nil:
		return notifyIfOn
	case *c.EnableKeyspaceNotifications:
		return notifyEnable
	default:
		return notifyNever
	}
}

// validate joins host/port pairs into addresses and checks the cross-field rules. It runs from the trigger
// metadata's Validate, so the errors get the trigger's name prefixed by scalers.Parse.
func (c *connMeta) validate() error {
	if len(c.Hosts) > 0 || len(c.Ports) > 0 {
		if len(c.Hosts) != len(c.Ports) {
			return fmt.Errorf("host: %d host(s) but %d port(s) given; give one port per host", len(c.Hosts), len(c.Ports))
		}
		for i := range c.Hosts {
			p, err := strconv.Atoi(c.Ports[i])
			if err != nil || p <= 0 || p > 65535 {
				return fmt.Errorf("port: want a port number between 1 and 65535, got %q", c.Ports[i])
			}
			c.Addresses = append(c.Addresses, net.JoinHostPort(c.Hosts[i], c.Ports[i]))
		}
	}
	if len(c.Addresses) == 0 {
		return errors.New(`address: no address given; set "address" (host:port) or "host" and "port"`)
	}
	for _, a := range c.Addresses {
		if host, port, err := net.SplitHostPort(a); err != nil || port == "" || strings.ContainsAny(host, "@/") {
			return fmt.Errorf("address: want host:port, got %q", redactAddress(a))
		}
	}
	if c.EnableTLS != nil && c.TLS != "" {
		return errors.New("enableTLS: set either enableTLS in the trigger metadata or tls in the TriggerAuthentication, not both")
	}
	switch c.mode {
	case modeCluster:
		if c.DatabaseIndex != 0 {
			return fmt.Errorf("databaseIndex: redis cluster only has database 0, got %d", c.DatabaseIndex)
		}
	case modeSentinel:
		if c.SentinelMaster == "" {
			return errors.New(`sentinelMaster: missing required parameter "sentinelMaster" for a redis sentinel trigger`)
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return errors.New("cert: cert and key must be given together")
	}
	return nil
}

// redactAddress drops anything before an '@' so a URL-shaped address never shows credentials.
func redactAddress(a string) string {
	if i := strings.LastIndex(a, "@"); i >= 0 {
		return "[REDACTED]@" + a[i+1:]
	}
	return a
}

func (c *connMeta) tlsEnabled() bool {
	if c.EnableTLS != nil {
		return *c.EnableTLS
	}
	return c.TLS == "enable"
}

// clientKey identifies a connection for scalers.Acquire: triggers that agree on every field share one client.
// ClientKey hashes the values, so the key never holds a password in clear.
func (c *connMeta) clientKey() string {
	return scalers.ClientKey("redis", map[string]string{
		"mode":             c.mode.String(),
		"addresses":        strings.Join(c.Addresses, ","),
		"db":               strconv.Itoa(c.DatabaseIndex),
		"username":         c.Username,
		"password":         c.Password,
		"sentinelUsername": c.SentinelUsername,
		"sentinelPassword": c.SentinelPassword,
		"sentinelMaster":   c.SentinelMaster,
		"tls":              strconv.FormatBool(c.tlsEnabled()),
		"unsafeSsl":        strconv.FormatBool(c.UnsafeSsl),
		"ca":               c.CA,
		"cert":             c.Cert,
		"key":              c.Key,
		"keyPassword":      c.KeyPassword,
	})
}

// sharedConn is what triggers with the same connection share: the go-redis client, and one keyspace
// subscription connection per server (see hub) however many of them watch.
type sharedConn struct {
	client goredis.UniversalClient

	mu   sync.Mutex
	hubs map[string]*hub // by node address ("" for standalone and sentinel)
}

// acquire returns the shared connection for this trigger and its release func.
func (c *connMeta) acquire(cfg *scalers.TriggerConfig) (*sharedConn, func() error, error) {
	open := func() (*sharedConn, error) {
		cl, err := c.newClient()
		if err != nil {
			return nil, err
		}
		return &sharedConn{client: cl, hubs: map[string]*hub{}}, nil
	}
	return scalers.Acquire(cfg.Shared, c.clientKey(), open, (*sharedConn).close)
}

// hub returns the subscription hub of one server, creating it on first use.
func (sc *sharedConn) hub(n node) *hub {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	h, ok := sc.hubs[n.addr]
	if !ok {
		h = newHub(n.client)
		sc.hubs[n.addr] = h
	}
	return h
}

func (sc *sharedConn) close() error {
	sc.mu.Lock()
	for _, h := range sc.hubs {
		h.close()
	}
	sc.hubs = map[string]*hub{} // not nil: a watch that outlives Close must not panic
	sc.mu.Unlock()
	return sc.client.Close()
}

// newClient builds a client; go-redis connects lazily, so an unreachable server shows up in Sample, not here.
func (c *connMeta) newClient() (goredis.UniversalClient, error) {
	var tlsConf *tls.Config
	if c.tlsEnabled() {
		var err error
		if tlsConf, err = c.tlsConfig(); err != nil {
			return nil, err
		}
	}
	o := &goredis.UniversalOptions{
		Addrs:                 c.Addresses,
		MasterName:            c.SentinelMaster,
		SentinelUsername:      c.SentinelUsername,
		SentinelPassword:      c.SentinelPassword,
		Username:              c.Username,
		Password:              c.Password,
		DB:                    c.DatabaseIndex,
		TLSConfig:             tlsConf,
		DialTimeout:           dialTimeout,
		ReadTimeout:           ioTimeout,
		WriteTimeout:          ioTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              poolSize,
		DisableIdentity:       true,
	}
	// The mode, not the number of addresses, picks the client: each conversion keeps only the options that
	// apply to it (a cluster has no DB, a plain server reads the first address, the sentinel fields are for a
	// failover client only).
	switch c.mode {
	case modeCluster:
		return goredis.NewClusterClient(o.Cluster()), nil
	case modeSentinel:
		return goredis.NewFailoverClient(o.Failover()), nil
	default:
		return goredis.NewClient(o.Simple()), nil
	}
}

// tlsConfig builds the client TLS settings from KEDA's ca, cert, key, keyPassword and unsafeSsl parameters.
// Errors never include the PEM material.
func (c *connMeta) tlsConfig() (*tls.Config, error) {
	return tlsauth.Config(tlsauth.Options{CA: c.CA, Cert: c.Cert, Key: c.Key, KeyPassword: c.KeyPassword, UnsafeSsl: c.UnsafeSsl})
}

// withTimeout bounds a call whose context carries no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, sampleTimeout)
}

// isNoKey reports a Redis error for a key or consumer group that does not exist (yet).
func isNoKey(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "NOGROUP") || strings.Contains(msg, "no such key")
}
