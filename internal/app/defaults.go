package app

import (
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
)

// DefaultNamespace is a component's namespace when none is given: its Lease, and where ClusterTriggerAuthentication
// secrets are read.
const DefaultNamespace = "tidal-system"

// Defaults fills what a component's Options leave zero: a no-op logger, 4 workers and DefaultNamespace.
func Defaults(logger *zap.Logger, workers int, namespace string) (*zap.Logger, int, string) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if workers <= 0 {
		workers = 4
	}
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return logger, workers, namespace
}

// ClientConfig is a copy of cfg with qps and burst when cfg sets no QPS: a controller's clients must not wait on
// client-go's default of 5 requests a second.
func ClientConfig(cfg *rest.Config, qps float32, burst int) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = qps, burst
	}
	return cfg
}
