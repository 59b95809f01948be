package operator

import (
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/triggers"
)

// Deps is what the ScaledObject and ScaledJob controllers are both wired with; each one's Options embeds it and
// adds its informers.
type Deps struct {
	Kube     kubernetes.Interface
	Tidal    tidalclient.Interface
	Resolver *triggers.Resolver
	Source   samples.Source
	Recorder record.EventRecorder
	Logger   *zap.Logger
	Metrics  *Metrics
	// Shard, when set, limits this replica to the objects it owns: others are released, and every write
	// re-checks ownership first.
	Shard Shard
	// Capacity publishes a CapacityRequest before each scale-up (or Job creation); nil publishes none.
	Capacity *capacity.Publisher
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// WithDefaults returns d with a no-op Logger and time.Now filled in where they are nil.
func (d Deps) WithDefaults() Deps {
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}
