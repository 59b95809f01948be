package harness

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tidalscale/tidal/internal/testenv"
)

// TestRequirePush: scale-from-zero refuses, naming the setting and the fix, a Redis that publishes no keyspace
// events for lists, and accepts one that does.
func TestRequirePush(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	rc := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	defer rc.Close()
	src, err := newRedisSource(ctx, r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, tc := range []struct {
		flags string
		ok    bool
	}{
		{"", false},
		{"E", false},    // keyevent only: the watch listens on keyspace channels
		{"Kg", false},   // no list class
		{"Kl", true},    // exactly what a list watch needs
		{"KA", true},    // A stands for every class
		{"KEA", true},   // the fix the error names
		{"Elx$", false}, // classes without K
	} {
		if err := rc.ConfigSet(ctx, "notify-keyspace-events", tc.flags).Err(); err != nil {
			t.Fatal(err)
		}
		err := src.requirePush(ctx)
		if tc.ok {
			if err != nil {
				t.Errorf("flags %q: %v", tc.flags, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("flags %q: accepted a server that publishes no list keyspace events", tc.flags)
		} else if !strings.Contains(err.Error(), "notify-keyspace-events") || !strings.Contains(err.Error(), "config set notify-keyspace-events KEA") {
			t.Errorf("flags %q: error does not name the setting and the fix: %v", tc.flags, err)
		}
	}
	r.Stop()
	if err := src.requirePush(ctx); err == nil || !strings.Contains(err.Error(), r.Addr) {
		t.Errorf("server down: want an error naming %s, got %v", r.Addr, err)
	}
}
