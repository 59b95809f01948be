package scalertest

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tidalscale/tidal/scalers"
)

// Trigger describes the trigger of a scaler test: its metadata, auth parameters and resolved environment, its
// logger (nil: the test's zaptest logger) and its Shared (nil: the scaler opens clients of its own).
type Trigger struct {
	MD, Auth, Env map[string]string
	Logger        *zap.Logger
	Shared        *scalers.Shared
}

// Config returns the configuration of tr as the operator hands it to a scaler: a trigger of triggerType named
// name, of the ScaledObject default/worker, polled each minute.
func (tr Trigger) Config(t testing.TB, triggerType, name string) *scalers.TriggerConfig {
	logger := tr.Logger
	if logger == nil {
		logger = zaptest.NewLogger(t)
	}
	return &scalers.TriggerConfig{
		Type: triggerType, Name: name, Metadata: tr.MD, AuthParams: tr.Auth, ResolvedEnv: tr.Env,
		PollingInterval: 60 * time.Second, Logger: logger, Shared: tr.Shared,
		ObjectNamespace: "default", ObjectName: "worker", ObjectKind: "ScaledObject",
	}
}
