// Package httpauth is how an HTTP scaler (metrics-api, prometheus) authenticates to its endpoint: KEDA's
// comma-separated auth mode list, the credentials a request carries (bearer token, basic auth, one custom header),
// and the transport that carries the TLS client certificate and CA (built by tlsauth), shared between triggers with
// equal TLS settings; and the OAuth2 client-credentials token (authModes oauth) a request carries as its bearer
// token, cached until shortly before it expires and shared between triggers of the same client.
//
// Which modes a trigger accepts, how they combine and which authParams feed them stay with each scaler, so KEDA's
// metadata names and rules are kept per trigger type.
package httpauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// ParseModes parses a comma-separated list of auth modes (KEDA's authMode or authModes), ignoring blanks and
// surrounding spaces. Every mode not in allowed is an error naming field and listing allowed; the returned set
// holds the valid modes.
func ParseModes(field, list string, allowed ...string) (map[string]bool, []error) {
	var errs []error
	modes := map[string]bool{}
	for _, mode := range strings.Split(list, ",") {
		mode = strings.TrimSpace(mode)
		switch {
		case mode == "":
		case contains(allowed, mode):
			modes[mode] = true
		default:
			errs = append(errs, fmt.Errorf("%s: want a comma-separated list of %s, got %q", field, strings.Join(allowed, ", "), mode))
		}
	}
	return modes, errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Credentials are what one request carries to authenticate; the zero value adds nothing. A scaler fills only
// the parts its active modes ask for.
type Credentials struct {
	// Header and HeaderValue set one header (KEDA's custom auth, or an API key sent as a header).
	Header, HeaderValue string
	// Username and Password are sent as basic auth when Username is set.
	Username, Password string
	// BearerToken is sent as "Authorization: Bearer <token>" when set.
	BearerToken string
}

// Apply adds c to req, replacing any header of the same name: the custom header first, then basic auth, then the
// bearer token.
func (c Credentials) Apply(req *http.Request) {
	if c.Header != "" {
		req.Header.Set(c.Header, c.HeaderValue)
	}
	if c.Username != "" {
		req.SetBasicAuth(c.Username, c.Password)
	}
	if c.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.BearerToken)
	}
}

// NewTransport returns an HTTP transport using the proxy from the environment, 5s dial and TLS handshake
// timeouts, keep-alive connection reuse, and the client TLS configuration from o. Errors name the TLS parameter.
func NewTransport(o tlsauth.Options) (*http.Transport, error) {
	tc, err := tlsauth.Config(o)
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

// AcquireTransport returns the transport shared by the scalerType triggers with TLS options equal to o (and
// their idle connections), opening it with NewTransport when there is none. release drops this trigger's hold;
// the last release closes the idle connections.
func AcquireTransport(shared *scalers.Shared, scalerType string, o tlsauth.Options) (tr *http.Transport, release func() error, err error) {
	key := scalers.ClientKey(scalerType, map[string]string{
		"unsafeSsl": strconv.FormatBool(o.UnsafeSsl), "ca": o.CA, "cert": o.Cert, "key": o.Key, "keyPassword": o.KeyPassword,
	})
	return scalers.Acquire(shared, key, func() (*http.Transport, error) { return NewTransport(o) },
		func(t *http.Transport) error { t.CloseIdleConnections(); return nil })
}

// Client is one trigger's HTTP client: the transport shared between the scalerType triggers with equal TLS
// settings (AcquireTransport) and, with OAuth2, the token source shared by the triggers of one OAuth2 client
// (AcquireTokenSource).
type Client struct {
	*http.Client
	token   *TokenSource
	release func() error
}

// ClientOptions configure AcquireClient.
type ClientOptions struct {
	// TLS is the transport's TLS configuration, also used to reach the token endpoint.
	TLS tlsauth.Options
	// Timeout bounds each request.
	Timeout time.Duration
	// OAuth, when not nil (it must have passed Validate), makes Authorize add an OAuth2 bearer token.
	OAuth *OAuth
	// Logger gets the token source's debug lines.
	Logger *zap.Logger
}

// AcquireClient returns a trigger's client; Close releases what it shares. Errors name the TLS parameter.
func AcquireClient(shared *scalers.Shared, scalerType string, o ClientOptions) (*Client, error) {
	tr, release, err := AcquireTransport(shared, scalerType, o.TLS)
	if err != nil {
		return nil, err
	}
	c := &Client{Client: &http.Client{Transport: tr, Timeout: o.Timeout}, release: release}
	if o.OAuth != nil {
		token, releaseToken, err := AcquireTokenSource(shared, *o.OAuth, TokenOptions{TLS: o.TLS, Logger: o.Logger})
		if err != nil {
			return nil, errors.Join(err, release())
		}
		c.token = token
		c.release = func() error { return errors.Join(releaseToken(), release()) }
	}
	return c, nil
}

// Authorize adds the OAuth2 bearer token to req when the client has one; its error says why no token could be
// had.
func (c *Client) Authorize(ctx context.Context, req *http.Request) error {
	return c.token.Authorize(ctx, req)
}

// Close releases the shared transport and token source.
func (c *Client) Close() error { return c.release() }
