package scalertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/scalers"
)

// ExpectSample samples s once for one row of a Sample table test. With wantErr set it fails t unless the Sample
// fails with an error that contains wantErr and names the trigger as id (cfg.ID(): `graphite trigger "jobs"`),
// and returns false; otherwise it fails t unless the Sample returns one value, named as the one External metric
// of s's MetricSpecs (FirstNamed), equal to want, with the trigger active as wantActive, and returns true, so that
// the caller goes on to check what the source was asked.
func ExpectSample(t testing.TB, s scalers.Scaler, id string, want float64, wantActive bool, wantErr string) bool {
	t.Helper()
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External == nil {
		t.Fatalf("specs = %+v, want one External metric", specs)
	}
	v, active, err := FirstNamed(s, specs[0].External.Metric.Name)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), id) {
			t.Fatalf("Sample error = %v, want one naming the trigger and containing %q", err, wantErr)
		}
		return false
	}
	if err != nil || v != want || active != wantActive {
		t.Fatalf("Sample = (%v, %v, %v), want (%v, %v)", v, active, err, want, wantActive)
	}
	return true
}

// ClosedURL returns the http URL of a server that was started and closed: nothing listens there any more.
func ClosedURL(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// ExpectConnectError fails t unless one Sample of s (First) fails with a connection error, for a scaler built
// against ClosedURL.
func ExpectConnectError(t testing.TB, s scalers.Scaler) {
	t.Helper()
	if _, _, err := First(s); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("error %v, want a connection error", err)
	}
}

// Poke is the body of a metadata fuzz test: it builds a scaler from cfg with newFn, whose error must name the
// trigger ("<type> trigger"; ok is then false), and makes a built scaler give its metric specs and take a Sample
// with a cancelled context, which keeps it off the network: neither may panic. The scaler is closed when t ends.
func Poke[R scalers.Scaler](t testing.TB, newFn func(context.Context, *scalers.TriggerConfig) (R, error), cfg *scalers.TriggerConfig) (s R, ok bool) {
	t.Helper()
	cfg.Normalize()
	s, err := newFn(context.Background(), cfg)
	if err != nil {
		if !strings.Contains(err.Error(), cfg.Type+" trigger") {
			t.Fatalf("error does not name the trigger: %v", err)
		}
		return s, false
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	_ = s.MetricSpecs()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, _ = s.Sample(ctx)
	return s, true
}

// Serve starts h on a local HTTP server, closed when tb's test ends.
func Serve(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}
