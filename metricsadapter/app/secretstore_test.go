package app_test

import (
	"testing"
	"time"

	"go.uber.org/zap"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/internal/testvault"
)

// With the adapter as the operator's sample source it is the adapter's scalers that hold the values read from a
// secret store: a value rotated in Vault reaches them at the next refresh (half of --secret-store-ttl), and the
// operator scales on the rotated source.
func TestSecretStoreRotationReachesAdapterScalers(t *testing.T) {
	e := setup(t)
	v := testvault.Start(t, e.Cluster.Client, e.Cluster.Config)
	v.RedisAddress(t, e.Tidal, e.NS, testenv.RedisAddr)
	p := newPKI(t, testpki.NewCA(t, "tidal-store"), e.NS)
	a := startAdapter(t, e.Cluster, p, adapterConfig{namespace: e.NS, storeTTL: 6 * time.Second}, zap.NewNop())
	e.startOperator(p, a.StreamAddr())

	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	e.Deployment("worker", 0)
	so := redisSO("orders", "worker", list, tidalv1alpha1.ScalingModeDirect)
	testvault.AddressFromVault(&so.Spec.Triggers[0])
	e.ScaledObject(so)
	testenv.Push(t, rc, list, 12) // ceil(12/5) = 3
	e.WaitReplicas("worker", 3, 90*time.Second)

	// Vault now names another Redis where the same list is longer: only a rebuilt scaler reads it.
	v.RotateRedis(t, list, 30) // ceil(30/5) = 6
	e.WaitReplicas("worker", 6, 90*time.Second)
}
