package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidalscale/tidal/scalers/httpquery"
)

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
	var r apiResponse
	body, err := s.request(ts).JSON(ctx, s.Client.Client, &r)
	var se *httpquery.StatusError
	if errors.As(err, &se) {
		var e apiResponse
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			se.Message = e.ErrorType + ": " + truncate(e.Error, 300)
		}
	}
	if err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus returned status %q: %s: %s", r.Status, r.ErrorType, truncate(r.Error, 300))
	}
	return s.value(r)
}

// request is the instant query at ts.
func (s *Scaler) request(ts time.Time) httpquery.Request {
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
	return httpquery.Request{Service: "prometheus", URL: u.String(), Header: map[string]string{"Accept": "application/json"},
		Prepare: func(req *http.Request) error {
			for k, v := range s.meta.CustomHeaders {
				if strings.EqualFold(k, "Host") {
					req.Host = v
					continue
				}
				req.Header.Add(k, v)
			}
			s.meta.Credentials().Apply(req)
			return s.Client.Authorize(req.Context(), req)
		}}
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
