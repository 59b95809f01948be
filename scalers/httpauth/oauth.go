package httpauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// ModeOAuth is KEDA's auth mode for an OAuth2 access token obtained with the client-credentials grant.
const ModeOAuth = "oauth"

// refreshBefore is how long before its expiry a cached token is replaced, so that no request carries a token
// that expires on the way.
const refreshBefore = 30 * time.Second

// tokenTimeout bounds one token request when the caller's context has no earlier deadline.
const tokenTimeout = 10 * time.Second

// OAuth are KEDA's OAuth2 client-credentials parameters (RFC 6749 section 4.4), read from authParams. A
// TriggerAuthentication provides them through secretTargetRef (KEDA's spec.oauth2 resolves to the same keys).
// Embed it in a scaler's metadata and call Validate when the scaler's auth mode asks for it.
type OAuth struct {
	// TokenURL is the token endpoint.
	TokenURL string `tidal:"name=oauthTokenURI,order=authParams,optional"`
	// Scopes are requested as the space-separated scope parameter (comma separated here, as in KEDA).
	Scopes []string `tidal:"name=scopes;scope,order=authParams,optional"`
	// ClientID and ClientSecret authenticate the client to the token endpoint: HTTP basic auth, or form fields
	// when the endpoint refuses basic auth.
	ClientID     string `tidal:"name=clientID,order=authParams,optional"`
	ClientSecret string `tidal:"name=clientSecret,order=authParams,optional"`
	// EndpointParams are extra form parameters of the token request, URL-encoded ("audience=api&resource=x").
	EndpointParams string `tidal:"name=endpointParams,order=authParams,optional"`

	params url.Values
}

// reservedParams are the token request's own parameters, which endpointParams may not set.
var reservedParams = []string{"grant_type", "client_id", "client_secret"}

// Validate checks o for a trigger that uses it; by names what asks for it in the errors ("authModes oauth").
// Errors name the key and never repeat a value (they come from authParams).
func (o *OAuth) Validate(by string) []error {
	var errs []error
	if o.TokenURL == "" {
		errs = append(errs, fmt.Errorf("oauthTokenURI: required by %s", by))
	} else if u, err := url.Parse(o.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("oauthTokenURI: want an absolute http(s) URL"))
	}
	if o.ClientID == "" {
		errs = append(errs, fmt.Errorf("clientID: required by %s", by))
	}
	var scopes []string
	for _, s := range o.Scopes {
		if s = strings.TrimSpace(s); s != "" {
			scopes = append(scopes, s)
		}
	}
	o.Scopes = scopes
	params, err := url.ParseQuery(o.EndpointParams)
	if err != nil {
		errs = append(errs, errors.New("endpointParams: want URL-encoded parameters such as audience=api&resource=x"))
	}
	for _, k := range reservedParams {
		if params.Has(k) {
			errs = append(errs, fmt.Errorf("endpointParams: must not set %s", k))
		}
	}
	if params.Has("scope") && len(o.Scopes) > 0 {
		errs = append(errs, errors.New("endpointParams: must not set scope when scopes is set"))
	}
	o.params = params
	return errs
}

// TokenSource hands out the access token of one OAuth2 client. It fetches a token with the client-credentials
// grant on first use and keeps it until shortly before it expires; callers that arrive while a token is being
// fetched wait for that one. Safe for concurrent use.
type TokenSource struct {
	conf   clientcredentials.Config
	client *http.Client
	now    func() time.Time
	log    *zap.Logger
	shown  string // the token URL without userinfo and query, for errors and logs

	mu    sync.Mutex
	token *oauth2.Token
}

// TokenOptions are the optional parts of a token source.
type TokenOptions struct {
	// TLS is the transport's TLS configuration for the token endpoint.
	TLS tlsauth.Options
	// Now is the clock deciding when a token is due for refresh; nil is time.Now.
	Now func() time.Time
	// Logger gets a debug line per token fetched (never the token or secret); nil logs nothing.
	Logger *zap.Logger
}

// AcquireTokenSource returns the token source shared by the triggers with the same token endpoint, client
// (ID and secret), scopes, endpoint parameters and TLS options, opening it when there is none: they share one
// token. o must have passed Validate. release drops this trigger's hold.
func AcquireTokenSource(shared *scalers.Shared, o OAuth, opts TokenOptions) (ts *TokenSource, release func() error, err error) {
	key := scalers.ClientKey("oauth2", map[string]string{
		"tokenURL": o.TokenURL, "clientID": o.ClientID, "clientSecret": o.ClientSecret,
		"scopes": strings.Join(o.Scopes, " "), "params": o.params.Encode(),
		"unsafeSsl": fmt.Sprint(opts.TLS.UnsafeSsl), "ca": opts.TLS.CA, "cert": opts.TLS.Cert, "key": opts.TLS.Key,
		"keyPassword": opts.TLS.KeyPassword,
	})
	return scalers.Acquire(shared, key, func() (*TokenSource, error) { return NewTokenSource(o, opts) },
		func(ts *TokenSource) error { ts.client.CloseIdleConnections(); return nil })
}

// NewTokenSource returns a token source of its own for o (which must have passed Validate).
func NewTokenSource(o OAuth, opts TokenOptions) (*TokenSource, error) {
	tr, err := NewTransport(opts.TLS)
	if err != nil {
		return nil, err
	}
	now, log := opts.Now, opts.Logger
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &TokenSource{
		conf: clientcredentials.Config{
			ClientID: o.ClientID, ClientSecret: o.ClientSecret, TokenURL: o.TokenURL, Scopes: o.Scopes, EndpointParams: o.params,
		},
		client: &http.Client{Transport: tr, Timeout: tokenTimeout},
		now:    now,
		log:    log,
		shown:  RedactURL(o.TokenURL),
	}, nil
}

// Token returns a valid access token, fetching a new one when there is none or the cached one expires within
// refreshBefore. A token whose response had no expires_in is kept (as golang.org/x/oauth2 does).
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.token; t != nil && (t.Expiry.IsZero() || s.now().Add(refreshBefore).Before(t.Expiry)) {
		return t.AccessToken, nil
	}
	t, err := s.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, s.client))
	if err != nil {
		return "", s.explain(err)
	}
	if t.AccessToken == "" {
		return "", fmt.Errorf("oauth2 token endpoint %s: the response has no access_token", s.shown)
	}
	s.token = t
	s.log.Debug("fetched an OAuth2 access token", zap.String("tokenURL", s.shown), zap.Time("expiry", t.Expiry))
	return t.AccessToken, nil
}

// Authorize sets req's Authorization header to the bearer token; a nil source adds nothing.
func (s *TokenSource) Authorize(ctx context.Context, req *http.Request) error {
	if s == nil {
		return nil
	}
	tok, err := s.Token(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// explain turns a token request failure into an error naming the endpoint (without userinfo or query) and the
// RFC 6749 error code and description, never the response body or the client secret.
func (s *TokenSource) explain(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		msg := fmt.Sprintf("oauth2 token endpoint %s answered HTTP %d", s.shown, status)
		if re.ErrorCode != "" {
			msg += ": " + re.ErrorCode
			if re.ErrorDescription != "" {
				msg += " (" + re.ErrorDescription + ")"
			}
		}
		if re.ErrorCode == "invalid_client" || status == http.StatusUnauthorized {
			msg += "; check clientID and clientSecret"
		}
		return errors.New(msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err // its message repeats the URL, userinfo and query included
	}
	return fmt.Errorf("oauth2 token endpoint %s: %w", s.shown, err)
}

// RedactURL drops userinfo and the query (which may carry a key) from a URL shown in an error or log.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
