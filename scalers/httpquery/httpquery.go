// Package httpquery is the request/response step the HTTP API scalers (loki, graphite, datadog, new-relic,
// elasticsearch, activemq, azure-pipelines, solr, prometheus) share: send one request, bound and read the body, and
// turn a transport failure or a non-2xx status into a short error that never repeats the request's query string
// (where API keys and queries live); and, for a JSON API (Request), build the request and decode the answer.
package httpquery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxBody bounds how much of a response is read.
const MaxBody = 8 << 20

// StatusError is a non-2xx response: its status and the first line of its body.
type StatusError struct {
	Service string
	Status  int
	Message string
	// Headers are the response headers (rate-limit headers and the like).
	Headers http.Header
}

// Header returns one response header.
func (e *StatusError) Header(name string) string { return e.Headers.Get(name) }

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s returned HTTP %d", e.Service, e.Status)
	}
	return fmt.Sprintf("%s returned HTTP %d: %s", e.Service, e.Status, e.Message)
}

// Do sends req and returns the body of a 2xx response. service names the server in errors ("loki"). A
// transport error names the request's scheme, host and path only; a non-2xx response is a *StatusError.
func Do(client *http.Client, req *http.Request, service string) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil {
			err = ue.Err
		}
		return nil, fmt.Errorf("calling %s://%s%s: %w", req.URL.Scheme, req.URL.Host, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the %s response: %w", service, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return body, &StatusError{Service: service, Status: resp.StatusCode, Message: FirstLine(string(body), 300), Headers: resp.Header}
	}
	return body, nil
}

// FirstLine returns the first non-blank line of s, cut to at most n bytes.
func FirstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// Request is one call of an HTTP API that answers in JSON.
type Request struct {
	// Service names the server in errors ("loki").
	Service string
	// Method is GET when empty.
	Method string
	URL    string
	// Body, when not nil, is sent as the request body.
	Body []byte
	// Header values are set on the request.
	Header map[string]string
	// Prepare, when not nil, adds what Header cannot (credentials, a token that may fail to come).
	Prepare func(*http.Request) error
}

// JSON sends r with client (Do) and decodes the body of a 2xx response into dst. The body is returned too, also
// with a *StatusError, for a caller that reads the API's own error document.
func (r Request) JSON(ctx context.Context, client *http.Client, dst any) ([]byte, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, body)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	if r.Prepare != nil {
		if err := r.Prepare(req); err != nil {
			return nil, err
		}
	}
	b, err := Do(client, req, r.Service)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return b, fmt.Errorf("decoding the %s response: %w", r.Service, err)
	}
	return b, nil
}
