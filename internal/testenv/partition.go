package testenv

import (
	"errors"
	"net/http"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// Partitioned returns a copy of cfg whose requests all fail while cut is on: a network partition between one
// process (an adapter, a shard member) and the API server.
func Partitioned(cfg *rest.Config, cut *atomic.Bool) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper { return cutTransport{rt: rt, on: cut} })
	return out
}

// cutTransport fails every request while on.
type cutTransport struct {
	rt http.RoundTripper
	on *atomic.Bool
}

func (c cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.on.Load() {
		return nil, errors.New("partitioned from the API server (test)")
	}
	return c.rt.RoundTrip(r)
}
