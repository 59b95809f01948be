package devcluster

import (
	"context"
	"os"
	"testing"

	"github.com/tidalscale/tidal/virtualnode/backend/containerd/daemon"
)

// NeedContainers skips t unless a container node can run here: not -short, containerd and runc installed, root.
func NeedContainers(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts tidal-dev with a container node")
	}
	if err := daemon.Check(); err != nil {
		t.Skipf("%v (.ci/run installs them)", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("the container node needs root")
	}
}

// TestBinary is the tidal-dev binary for a test: $TIDAL_DEV_BIN, else one built from this checkout.
func TestBinary(ctx context.Context, t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(EnvBinary); bin != "" {
		return bin
	}
	bin, err := BuildBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
