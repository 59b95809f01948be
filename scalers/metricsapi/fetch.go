package metricsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tidalscale/tidal/scalers"
)

// maxBody bounds how much of a response is read.
const maxBody = 8 << 20

// fetch GETs the URL and extracts the value.
func (s *Scaler) fetch(ctx context.Context) (float64, error) {
	req, err := s.newRequest(ctx)
	if err != nil {
		return 0, err
	}
	shown := redactURL(s.meta.URL)
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil {
			err = ue.Err // its message repeats the URL, query (and API key) included
		}
		return 0, fmt.Errorf("GET %s: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return 0, fmt.Errorf("GET %s: api returned HTTP %d, want 200", shown, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, fmt.Errorf("GET %s: reading the body: %w", shown, err)
	}
	v, err := extractValue(body, s.meta.Format, s.meta.ValueLocation, s.meta.selector)
	if err != nil {
		return 0, fmt.Errorf("valueLocation %q in the %s response of %s: %w", s.meta.ValueLocation, s.meta.Format, shown, err)
	}
	return v, nil
}

func (s *Scaler) newRequest(ctx context.Context) (*http.Request, error) {
	u := *s.meta.url
	if s.meta.modes[authAPIKey] && s.meta.Method == "query" {
		q := u.Query()
		name := s.meta.KeyParamName
		if name == "" {
			name = "api_key"
		}
		q.Set(name, s.meta.APIKey)
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building the request for %s: %w", redactURL(s.meta.URL), err)
	}
	if s.meta.modes[authAPIKey] && s.meta.Method != "query" {
		name := s.meta.KeyParamName
		if name == "" {
			name = "X-API-KEY"
		}
		req.Header.Add(name, s.meta.APIKey)
	}
	if s.meta.modes[authBasic] {
		req.SetBasicAuth(s.meta.Username, s.meta.Password)
	}
	if s.meta.modes[authBearer] {
		req.Header.Set("Authorization", "Bearer "+s.meta.BearerToken)
	}
	return req, nil
}

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
