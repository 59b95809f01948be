package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds how much of a response is read: an instant query for one series is a few hundred bytes.
const maxBody = 8 << 20

// apiResponse is the Prometheus HTTP API envelope.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// vectorSample is one series of an instant vector: its labels and [timestamp, "value"].
type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// query runs the instant query at ts and returns its single value.
func (s *Scaler) query(ctx context.Context, ts time.Time) (float64, error) {
	req, err := s.newRequest(ctx, ts)
	if err != nil {
		return 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("calling %s: %w", s.meta.queryURL.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, fmt.Errorf("reading response from %s: %w", s.meta.queryURL.Redacted(), err)
	}
	var r apiResponse
	jsonErr := json.Unmarshal(body, &r)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if jsonErr == nil && r.Error != "" {
			return 0, fmt.Errorf("prometheus returned HTTP %d: %s: %s", resp.StatusCode, r.ErrorType, truncate(r.Error, 300))
		}
		return 0, fmt.Errorf("prometheus returned HTTP %d", resp.StatusCode)
	}
	if jsonErr != nil {
		return 0, fmt.Errorf("decoding the response: %w", jsonErr)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus returned status %q: %s: %s", r.Status, r.ErrorType, truncate(r.Error, 300))
	}
	return s.value(r)
}

func (s *Scaler) newRequest(ctx context.Context, ts time.Time) (*http.Request, error) {
	u := *s.meta.queryURL
	q := u.Query()
	q.Set("query", s.meta.Query)
	q.Set("time", ts.UTC().Format(time.RFC3339))
	if s.meta.Namespace != "" {
		q.Set("namespace", s.meta.Namespace)
	}
	for k, v := range s.meta.QueryParameters {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range s.meta.CustomHeaders {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	s.meta.credentials().Apply(req)
	if err := s.client.Authorize(ctx, req); err != nil {
		return nil, err
	}
	return req, nil
}

// value extracts the single value of a vector or scalar result, as KEDA does for vectors.
func (s *Scaler) value(r apiResponse) (float64, error) {
	var pair []any
	switch r.Data.ResultType {
	case "vector":
		var vec []vectorSample
		if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
			return 0, fmt.Errorf("decoding the vector result: %w", err)
		}
		switch {
		case len(vec) == 0:
			if s.meta.IgnoreNullValues {
				return 0, nil
			}
			return 0, errors.New("the result is empty (target may be lost; set ignoreNullValues to treat it as 0)")
		case len(vec) > 1:
			return 0, fmt.Errorf("the query returned %d series, want one (aggregate it, e.g. with sum())", len(vec))
		}
		pair = vec[0].Value
	case "scalar":
		if err := json.Unmarshal(r.Data.Result, &pair); err != nil {
			return 0, fmt.Errorf("decoding the scalar result: %w", err)
		}
	default:
		return 0, fmt.Errorf("result type %q is not supported; want an instant vector or a scalar", r.Data.ResultType)
	}
	switch {
	case len(pair) == 0:
		if s.meta.IgnoreNullValues {
			return 0, nil
		}
		return 0, errors.New("the value list is empty (target may be lost; set ignoreNullValues to treat it as 0)")
	case len(pair) < 2:
		return 0, errors.New("the result has no value")
	}
	str, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("the value is a %T, want a string holding a number", pair[1])
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0, fmt.Errorf("the value %q is not a number", truncate(str, 50))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		if s.meta.IgnoreNullValues {
			return 0, nil
		}
		return 0, fmt.Errorf("the query returned %v (set ignoreNullValues to treat it as 0)", v)
	}
	return v, nil
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the full URL with its query.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
