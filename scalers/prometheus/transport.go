package prometheus

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tidalscale/tidal/scalers"
)

// transportOptions identify an HTTP transport: triggers with equal TLS settings share one (and its connections).
type transportOptions struct {
	UnsafeSsl   bool
	CA          string
	Cert        string
	Key         string
	KeyPassword string
}

func (o transportOptions) key() string {
	return scalers.ClientKey(TriggerType, map[string]string{
		"unsafeSsl": strconv.FormatBool(o.UnsafeSsl), "ca": o.CA, "cert": o.Cert, "key": o.Key, "keyPassword": o.KeyPassword,
	})
}

func newTransport(o transportOptions) (*http.Transport, error) {
	tc, err := newTLSConfig(tlsOptions{CA: o.CA, Cert: o.Cert, Key: o.Key, KeyPassword: o.KeyPassword, UnsafeSsl: o.UnsafeSsl})
	if err != nil {
		return nil, err
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   5 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}, nil
}
