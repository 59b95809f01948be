package testvault

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"

	"github.com/tidalscale/tidal/internal/testenv"
)

// The Vault-held Redis address of the secret-store tests: the KV version 2 secret secret/redis holds it as
// "address", and TriggerAuthentication "vault" passes it to a trigger as its address parameter.
const (
	RedisSecret = "redis"
	RedisAuth   = "vault"
)

// RedisAddress stores addr in secret/redis and creates TriggerAuthentication "vault" in namespace reading it.
func (s *Server) RedisAddress(t testing.TB, tc tidalclient.Interface, namespace, addr string) {
	t.Helper()
	s.PutKV2(t, RedisSecret, map[string]any{"address": addr})
	s.CreateAuthentication(t, tc, namespace, RedisAuth, "address", RedisSecret, "address")
}

// AddressFromVault makes a Redis trigger take its address from TriggerAuthentication "vault" instead of its
// metadata.
func AddressFromVault(tr *tidalv1alpha1.ScaleTriggers) {
	delete(tr.Metadata, "address")
	tr.AuthenticationRef = &tidalv1alpha1.AuthenticationRef{Name: RedisAuth}
}

// RotateRedis starts a private Redis holding n items on list and points secret/redis at it: only a scaler rebuilt
// with the rotated value reads the new length. It returns a client of the new server and its address.
func (s *Server) RotateRedis(t testing.TB, list string, n int) (*goredis.Client, string) {
	t.Helper()
	private := testenv.StartRedis(t)
	rc := goredis.NewClient(&goredis.Options{Addr: private.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	testenv.Push(t, rc, list, n)
	s.PutKV2(t, RedisSecret, map[string]any{"address": private.Addr})
	return rc, private.Addr
}
