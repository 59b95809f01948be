package operator

import (
	"context"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/internal/controller"
)

// LoggerFrom returns the logger the controller runtime put in ctx (named with the object's key), or a no-op
// logger: it is controller.LoggerFrom, named here so the operator's helpers outside a reconcile read one name.
func LoggerFrom(ctx context.Context) *zap.Logger { return controller.LoggerFrom(ctx) }
