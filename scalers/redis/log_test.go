package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	redislogging "github.com/redis/go-redis/v9/logging"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestZapLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		format     string
		args       []any
		wantDetail string
		secret     string
	}{
		{name: "reconnect", format: "redis: %s:%d: connection pool: failed to dial: %v", args: []any{"127.0.0.1", 6379, errors.New("connection refused")},
			wantDetail: "127.0.0.1:6379: connection pool: failed to dial: connection refused"},
		{name: "url credentials", format: "sentinel: dial %s failed", args: []any{"redis://admin:s3cr3t-pw@10.0.0.1:26379/0"},
			wantDetail: "sentinel: dial redis://[REDACTED]@10.0.0.1:26379/0 failed", secret: "s3cr3t-pw"},
		{name: "trailing newline", format: "autopipeline: %v\n", args: []any{"stopped"}, wantDetail: "autopipeline: stopped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, logs := scalertest.ObservedLogger()
			zapLogger{l: l}.Printf(context.Background(), tc.format, tc.args...)
			entries := logs.All()
			if len(entries) != 1 {
				t.Fatalf("%d entries, want 1", len(entries))
			}
			e := entries[0]
			if e.Level != zapcore.WarnLevel || e.Message != "go-redis" {
				t.Errorf("entry = %s %q, want warn \"go-redis\"", e.Level, e.Message)
			}
			if got := e.ContextMap()["detail"]; got != tc.wantDetail {
				t.Errorf("detail = %q, want %q", got, tc.wantDetail)
			}
			if tc.secret != "" {
				scalertest.AssertNoSecret(t, tc.secret, "", entries)
			}
		})
	}
}

// TestSetLogger: after SetLogger, a line go-redis logs through its process-wide logger (here the warning for an
// unknown client-side-cache strategy, logged by NewClient) arrives as a structured zap entry instead of stderr.
// Not parallel: it swaps go-redis's global logger and restores the default at the end.
func TestSetLogger(t *testing.T) {
	t.Cleanup(redislogging.Enable)
	SetLogger(nil) // ignored, like goredis.SetLogger(nil)
	l, logs := scalertest.ObservedLogger()
	SetLogger(l)
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", ClientSideCacheStrategy: 99, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	var found []observer.LoggedEntry
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()["detail"]), "unknown ClientSideCacheStrategy 99") {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d go-redis entries about the strategy, want 1 (all: %v)", len(found), logs.All())
	}
	if e := found[0]; e.Level != zapcore.WarnLevel || e.Message != "go-redis" || e.ContextMap()["component"] != "go-redis" {
		t.Errorf("entry = %s %q %v, want warn \"go-redis\" with component=go-redis", e.Level, e.Message, e.ContextMap())
	}
}
