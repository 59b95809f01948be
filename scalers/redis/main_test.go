package redis

import (
	"context"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// quietLogger drops go-redis' own log lines (reconnect and sentinel chatter), which otherwise bury test output.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	if os.Getenv("TIDAL_TEST_REDIS_LOG") == "" {
		goredis.SetLogger(quietLogger{})
	}
	os.Exit(m.Run())
}
