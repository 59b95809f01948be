package redis

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// SetLogger sends go-redis's own log lines (reconnects, sentinel fail-overs, pool problems), which it otherwise
// prints to stderr through a process-wide logger, to l at warn level. Each line becomes an entry with the message
// "go-redis" and the text in the field "detail"; credentials in URLs (scheme://user:password@host) are redacted.
// go-redis keeps one logger per process, so call this once from main; a nil l is ignored, as in go-redis.
func SetLogger(l *zap.Logger) {
	if l == nil {
		return
	}
	goredis.SetLogger(zapLogger{l: l.With(zap.String("component", "go-redis"))})
}

// zapLogger adapts zap to go-redis's Printf-style logging interface.
type zapLogger struct{ l *zap.Logger }

// urlCredentials matches the userinfo of a URL.
var urlCredentials = regexp.MustCompile(`(://)[^/@\s]*@`)

// Printf logs one go-redis line; ctx carries nothing the entry needs.
func (z zapLogger) Printf(_ context.Context, format string, v ...any) {
	detail := strings.TrimSpace(fmt.Sprintf(format, v...))
	detail = strings.TrimPrefix(detail, "redis: ")
	z.l.Warn("go-redis", zap.String("detail", urlCredentials.ReplaceAllString(detail, "${1}[REDACTED]@")))
}
