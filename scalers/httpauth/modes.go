package httpauth

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// Auth modes of KEDA's HTTP scalers.
const (
	ModeBearer = "bearer"
	ModeBasic  = "basic"
	ModeCustom = "custom"
	ModeTLS    = "tls"
)

// ClientTLS are KEDA's TLS authParams of an HTTP scaler: ca, a private CA trusted whatever the auth mode, and the
// client certificate (cert, key, optional keyPassword) sent with auth mode tls. Embed it in a scaler's metadata.
type ClientTLS struct {
	CA          string `tidal:"name=ca,order=authParams,optional"`
	Cert        string `tidal:"name=cert,order=authParams,optional"`
	Key         string `tidal:"name=key,order=authParams,optional"`
	KeyPassword string `tidal:"name=keyPassword,order=authParams,optional"`
}

// Check is the error of a trigger whose auth mode tls (by names it: "authModes tls") lacks cert or key; nil when
// withCert is false or both are given.
func (c *ClientTLS) Check(withCert bool, by string) error {
	if withCert && (c.Cert == "" || c.Key == "") {
		return fmt.Errorf("cert and key: required by %s", by)
	}
	return nil
}

// Options are the transport's TLS settings: unsafeSsl and ca always, the client certificate when withCert.
func (c *ClientTLS) Options(unsafeSsl, withCert bool) tlsauth.Options {
	o := tlsauth.Options{UnsafeSsl: unsafeSsl, CA: c.CA}
	if withCert {
		o.Cert, o.Key, o.KeyPassword = c.Cert, c.Key, c.KeyPassword
	}
	return o
}

// If returns o when on (the trigger's auth mode is oauth), nil otherwise: the ClientOptions.OAuth of a trigger.
func (o *OAuth) If(on bool) *OAuth {
	if !on {
		return nil
	}
	return o
}

// Auth is KEDA's authentication of the Prometheus HTTP API triggers (prometheus, loki): authModes, a comma
// separated list of bearer (authParams bearerToken), basic (username, password), custom (customAuthHeader,
// customAuthValue), oauth (OAuth) and tls (ClientTLS), where bearer, basic, custom and oauth are exclusive. Embed
// it in a scaler's metadata and call Check from its Validate.
type Auth struct {
	AuthModes        string `tidal:"name=authModes,optional"`
	BearerToken      string `tidal:"name=bearerToken,order=authParams,optional"`
	Username         string `tidal:"name=username,order=authParams,optional"`
	Password         string `tidal:"name=password,order=authParams,optional"`
	CustomAuthHeader string `tidal:"name=customAuthHeader,order=authParams,optional"`
	CustomAuthValue  string `tidal:"name=customAuthValue,order=authParams,optional"`
	ClientTLS
	OAuth

	modes map[string]bool
}

// Check parses authModes and checks that the parameters of each mode are given. Errors name the key.
func (a *Auth) Check() []error {
	modes, errs := ParseModes("authModes", a.AuthModes, ModeBearer, ModeBasic, ModeTLS, ModeCustom, ModeOAuth)
	a.modes = modes
	exclusive := 0
	for _, mode := range []string{ModeBearer, ModeBasic, ModeCustom, ModeOAuth} {
		if a.modes[mode] {
			exclusive++
		}
	}
	if exclusive > 1 {
		errs = append(errs, errors.New("authModes: bearer, basic, custom and oauth cannot be combined"))
	}
	if a.modes[ModeOAuth] {
		errs = append(errs, a.OAuth.Validate("authModes oauth")...)
	}
	if a.modes[ModeBearer] && a.BearerToken == "" {
		errs = append(errs, errors.New("bearerToken: required by authModes bearer"))
	}
	if a.modes[ModeBasic] && a.Username == "" {
		errs = append(errs, errors.New("username: required by authModes basic"))
	}
	if a.modes[ModeCustom] && (a.CustomAuthHeader == "" || a.CustomAuthValue == "") {
		errs = append(errs, errors.New("customAuthHeader and customAuthValue: required by authModes custom"))
	}
	if err := a.ClientTLS.Check(a.modes[ModeTLS], "authModes tls"); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Has reports whether mode is one of the checked authModes.
func (a *Auth) Has(mode string) bool { return a.modes[mode] }

// Modes lists the checked authModes, sorted.
func (a *Auth) Modes() []string { return slices.Sorted(maps.Keys(a.modes)) }

// Credentials are what the active (exclusive) mode adds to a request: a bearer token, basic auth or the custom
// header.
func (a *Auth) Credentials() Credentials {
	switch {
	case a.modes[ModeBearer]:
		return Credentials{BearerToken: a.BearerToken}
	case a.modes[ModeBasic]:
		return Credentials{Username: a.Username, Password: a.Password}
	case a.modes[ModeCustom]:
		return Credentials{Header: a.CustomAuthHeader, HeaderValue: a.CustomAuthValue}
	}
	return Credentials{}
}

// ClientOptions configure the trigger's client: the TLS settings (ClientTLS.Options, with unsafeSsl), the request
// timeout and, with mode oauth, the OAuth2 token.
func (a *Auth) ClientOptions(unsafeSsl bool, timeout time.Duration) ClientOptions {
	return ClientOptions{TLS: a.ClientTLS.Options(unsafeSsl, a.modes[ModeTLS]), Timeout: timeout, OAuth: a.OAuth.If(a.modes[ModeOAuth])}
}
