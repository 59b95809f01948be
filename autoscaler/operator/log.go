package operator

import (
	"context"

	"go.uber.org/zap"
)

type loggerKey struct{}

// WithLogger returns a context that carries log; reconcilers log through LoggerFrom so every line has the
// object's key.
func WithLogger(ctx context.Context, log *zap.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, log)
}

// LoggerFrom returns the logger carried by ctx, or a no-op logger.
func LoggerFrom(ctx context.Context) *zap.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*zap.Logger); ok && l != nil {
		return l
	}
	return zap.NewNop()
}
