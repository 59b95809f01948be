package rabbitmq

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

// maxPages bounds a useRegex listing; at the default pageSize of 100 that is 10,000 queues.
const maxPages = 100

// queueInfo is the part of the management API's queue object the scaler reads. Requests ask for only these
// columns, so a listing of many queues stays small.
type queueInfo struct {
	Name          string `json:"name"`
	Messages      int64  `json:"messages"`
	MessagesReady int64  `json:"messages_ready"`
	MessageStats  struct {
		PublishDetails struct {
			Rate float64 `json:"rate"`
		} `json:"publish_details"`
	} `json:"message_stats"`
}

// queuePage is the management API's paginated listing (GET /api/queues/<vhost>?page=...).
type queuePage struct {
	Items     []queueInfo `json:"items"`
	Page      int         `json:"page"`
	PageCount int         `json:"page_count"`
}

const queueColumns = "name,messages,messages_ready,message_stats.publish_details.rate"

// httpReader reads queues through the management HTTP API.
type httpReader struct {
	meta     *Metadata
	client   *http.Client
	token    *httpauth.TokenSource // with OAuth2
	release  func() error
	base     string // scheme://host[:port]/prefix/api/queues/<vhost>, without credentials
	user     string
	pass     string
	hasCreds bool
}

func newHTTPReader(cfg *scalers.TriggerConfig, meta *Metadata, tlsCfg *tls.Config) (*httpReader, error) {
	u := meta.hostURL
	prefix, vhost := splitVhost(u.EscapedPath())
	if meta.VhostName != nil {
		vhost = url.PathEscape(*meta.VhostName)
	}
	if vhost == "" {
		vhost = "%2F"
	}
	r := &httpReader{
		meta: meta,
		base: u.Scheme + "://" + u.Host + prefix + "/api/queues/" + vhost,
	}
	switch {
	case meta.Username != "":
		r.user, r.pass, r.hasCreds = meta.Username, meta.Password, true
	case u.User != nil:
		r.user = u.User.Username()
		r.pass, _ = u.User.Password()
		r.hasCreds = true
	}
	key := scalers.ClientKey("rabbitmq-http", map[string]string{"tls": tlsKey(meta), "unsafeSsl": strconv.FormatBool(meta.UnsafeSsl)})
	client, release, err := scalers.AcquireHTTPClient(cfg.Shared, key, tlsCfg, 16)
	if err != nil {
		return nil, err
	}
	tlsOpts := tlsauth.Options{UnsafeSsl: meta.UnsafeSsl, CA: meta.CA}
	if meta.TLS == "enable" {
		tlsOpts.Cert, tlsOpts.Key, tlsOpts.KeyPassword = meta.Cert, meta.Key, meta.KeyPassword
	}
	r.client, r.release = client, release
	if meta.oauth() {
		token, releaseToken, err := httpauth.AcquireTokenSource(cfg.Shared, meta.OAuth, httpauth.TokenOptions{TLS: tlsOpts, Logger: cfg.Logger})
		if err != nil {
			return nil, errors.Join(err, release())
		}
		r.token = token
		r.release = func() error { return errors.Join(releaseToken(), release()) }
	}
	return r, nil
}

// splitVhost splits an escaped URL path into a prefix (for a management API behind a path) and the vhost, its
// last segment, as KEDA does: "/rabbit/vh" → ("/rabbit", "vh"), "/" and "" → ("", "").
func splitVhost(escapedPath string) (prefix, vhost string) {
	i := strings.LastIndex(escapedPath, "/")
	if i < 0 {
		return "", escapedPath
	}
	return escapedPath[:i], escapedPath[i+1:]
}

func (r *httpReader) read(ctx context.Context) (float64, error) {
	if !r.meta.UseRegex {
		var q queueInfo
		if err := r.get(ctx, r.base+"/"+url.PathEscape(r.meta.QueueName)+"?columns="+queueColumns, &q); err != nil {
			return 0, err
		}
		return r.value(q), nil
	}
	var values []float64
	for page := 1; ; page++ {
		q := url.Values{}
		q.Set("page", strconv.Itoa(page))
		q.Set("page_size", strconv.FormatInt(r.meta.PageSize, 10))
		q.Set("name", r.meta.QueueName)
		q.Set("use_regex", "true")
		q.Set("pagination", "true")
		q.Set("columns", queueColumns)
		var p queuePage
		if err := r.get(ctx, r.base+"?"+q.Encode(), &p); err != nil {
			return 0, err
		}
		for _, qi := range p.Items {
			values = append(values, r.value(qi))
		}
		if page >= p.PageCount || len(p.Items) == 0 {
			break
		}
		if page >= maxPages {
			return 0, fmt.Errorf("useRegex: more than %d pages of %d queues match; raise pageSize or narrow queueName", maxPages, r.meta.PageSize)
		}
	}
	return combine(r.meta.Operation, values), nil
}

func (r *httpReader) value(q queueInfo) float64 {
	if r.meta.Mode == ModeMessageRate {
		return q.MessageStats.PublishDetails.Rate
	}
	if r.meta.ExcludeUnacknowledged {
		return float64(q.MessagesReady)
	}
	return float64(q.Messages)
}

// combine applies operation to the values of the queues a regex matched; no queue gives 0.
func combine(op string, values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	var sum, maxV float64
	for i, v := range values {
		sum += v
		if i == 0 || v > maxV {
			maxV = v
		}
	}
	switch op {
	case "max":
		return maxV
	case "avg":
		return sum / float64(len(values))
	default:
		return sum
	}
}

// get fetches a management API resource into out. The request URL never carries credentials (they go in the
// Authorization header), so no error can quote them.
func (r *httpReader) get(ctx context.Context, rawURL string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("management API request: %w", err)
	}
	if r.hasCreds {
		req.SetBasicAuth(r.user, r.pass)
	}
	if err := r.token.Authorize(ctx, req); err != nil {
		return fmt.Errorf("management API GET %s: %w", redactedPath(req.URL), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("management API GET %s: %w", redactedPath(req.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("management API GET %s: %s: %s", redactedPath(req.URL), resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("management API GET %s: decode: %w", redactedPath(req.URL), err)
	}
	return nil
}

// redactedPath names a request in errors: host and path, no query (a regex may be long), never credentials.
func redactedPath(u *url.URL) string {
	return u.Host + u.EscapedPath()
}

func (r *httpReader) close() error {
	if r.release == nil {
		return nil
	}
	err := r.release()
	r.release = nil
	return err
}
