package controller

import (
	"context"

	"go.uber.org/zap"
)

type loggerKey struct{}

// WithLogger returns a context that carries log. The runner hands each reconcile a logger with the object's key,
// so reconcilers log through LoggerFrom and every line names its object.
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
