package stores

import (
	"os"
	"testing"

	"github.com/tidalscale/tidal/internal/devcluster"
)

func TestMain(m *testing.M) { os.Exit(devcluster.Main(m)) }
