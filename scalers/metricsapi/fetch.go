package metricsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/httpquery"
)

// fetch GETs the URL and extracts the value.
func (s *Scaler) fetch(ctx context.Context) (float64, error) {
	req, err := s.newRequest(ctx)
	if err != nil {
		return 0, err
	}
	shown := httpauth.RedactURL(s.meta.URL)
	resp, err := s.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil {
			err = ue.Err // its message repeats the URL, query (and API key) included
		}
		return 0, fmt.Errorf("GET %s: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, httpquery.MaxBody))
		return 0, fmt.Errorf("GET %s: api returned HTTP %d, want 200", shown, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, httpquery.MaxBody))
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
		return nil, fmt.Errorf("building the request for %s: %w", httpauth.RedactURL(s.meta.URL), err)
	}
	s.meta.credentials().Apply(req)
	if err := s.Client.Authorize(ctx, req); err != nil {
		return nil, err
	}
	return req, nil
}

// credentials are what the active auth modes add to a request: the API key as a header (method header), basic
// auth and the bearer token. An API key sent as a query parameter is added to the URL by newRequest.
func (m *Metadata) credentials() httpauth.Credentials {
	var c httpauth.Credentials
	if m.modes[authAPIKey] && m.Method != "query" {
		c.Header, c.HeaderValue = m.KeyParamName, m.APIKey
		if c.Header == "" {
			c.Header = "X-API-KEY"
		}
	}
	if m.modes[httpauth.ModeBasic] {
		c.Username, c.Password = m.Username, m.Password
	}
	if m.modes[httpauth.ModeBearer] {
		c.BearerToken = m.BearerToken
	}
	return c
}
