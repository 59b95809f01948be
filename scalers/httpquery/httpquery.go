// Package httpquery is the request/response step the HTTP API scalers (loki, graphite, datadog, new-relic,
// elasticsearch, activemq, azure-pipelines) share: send one request, bound and read the body, and turn a transport
// failure or a non-2xx status into a short error that never repeats the request's query string (where API keys
// and queries live).
package httpquery

import (
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
