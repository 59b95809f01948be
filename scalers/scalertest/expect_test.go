package scalertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/scalers"
)

// httpScaler reads a number from a URL: the smallest scaler the Expect helpers can be checked against.
type httpScaler struct {
	scalers.OneMetric
	url string
}

func newHTTPScaler(_ context.Context, cfg *scalers.TriggerConfig) (*httpScaler, error) {
	if cfg.Metadata["url"] == "" {
		return nil, cfg.Errorf("url: missing")
	}
	return &httpScaler{OneMetric: scalers.NewOneMetric(cfg, "s0-fake", 1, 2), url: cfg.Metadata["url"]}, nil
}

func (s *httpScaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	v, err := func() (float64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	}()
	return s.Report(v, err, "url")
}

func (s *httpScaler) Close(context.Context) error { return nil }

type cannedHandler struct{ Canned }

func (h *cannedHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	h.Reply(w, "text/plain")
}

func TestExpectHelpers(t *testing.T) {
	t.Parallel()
	h := &cannedHandler{}
	srv := Serve(t, h)
	s := New[*httpScaler](t, newHTTPScaler, Config("fake", "x", map[string]string{"url": srv.URL}, nil))
	h.Set(200, "3")
	if !ExpectSample(t, s, `fake trigger "x"`, 3, true, "") {
		t.Fatal("ExpectSample returned false for a value")
	}
	h.Set(200, "1")
	ExpectSample(t, s, `fake trigger "x"`, 1, false, "")
	h.Set(500, "boom")
	if ExpectSample(t, s, `fake trigger "x"`, 0, false, "HTTP 500") {
		t.Fatal("ExpectSample returned true for an error")
	}
	ExpectConnectError(t, New[*httpScaler](t, newHTTPScaler, Config("fake", "", map[string]string{"url": ClosedURL(t)}, nil)))
	if _, ok := Poke(t, newHTTPScaler, Config("fake", "", map[string]string{}, nil)); ok {
		t.Fatal("Poke built a scaler without url")
	}
	if s, ok := Poke(t, newHTTPScaler, Config("fake", "", map[string]string{"url": srv.URL}, nil)); !ok || s == nil {
		t.Fatal("Poke did not build the scaler")
	}
}
