package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// hub multiplexes the keyspace subscriptions of every watch on one server over a single pub/sub connection, so
// ten thousand triggers on one Redis cost one subscriber connection, not ten thousand. go-redis reconnects the
// connection and subscribes again by itself; the hub turns each such re-subscription into a wake-up of that
// channel's watchers, since events may have been lost in between.
type hub struct {
	node *goredis.Client

	mu        sync.Mutex
	ps        *goredis.PubSub
	sinks     map[string]map[*sink]struct{} // by channel
	confirmed map[string]bool               // channels whose first subscribe confirmation arrived
}

// sink is one watcher's wake-up channel.
type sink struct{ ch chan<- struct{} }

func newHub(node *goredis.Client) *hub {
	return &hub{node: node, sinks: map[string]map[*sink]struct{}{}, confirmed: map[string]bool{}}
}

// subscribe adds a watcher of channel. The returned func removes it; the last watcher of a channel unsubscribes
// it, and the last watcher of the hub closes the connection.
func (h *hub) subscribe(ctx context.Context, channel string, ch chan<- struct{}) (func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ps == nil {
		h.ps = h.node.Subscribe(ctx)
		go h.dispatch(h.ps.ChannelWithSubscriptions())
	}
	set, ok := h.sinks[channel]
	if !ok {
		if err := h.ps.Subscribe(ctx, channel); err != nil {
			_ = h.ps.Unsubscribe(context.WithoutCancel(ctx), channel)
			if len(h.sinks) == 0 {
				_ = h.ps.Close()
				h.ps = nil
			}
			return nil, err
		}
		set = map[*sink]struct{}{}
		h.sinks[channel] = set
	}
	s := &sink{ch: ch}
	set[s] = struct{}{}
	var once sync.Once
	return func() { once.Do(func() { h.remove(channel, s) }) }, nil
}

func (h *hub) remove(channel string, s *sink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set, ok := h.sinks[channel]
	if !ok {
		return
	}
	delete(set, s)
	if len(set) > 0 {
		return
	}
	delete(h.sinks, channel)
	delete(h.confirmed, channel)
	if h.ps == nil {
		return
	}
	if len(h.sinks) == 0 {
		_ = h.ps.Close()
		h.ps = nil
		return
	}
	_ = h.ps.Unsubscribe(context.Background(), channel)
}

// dispatch fans messages out until the connection is closed.
func (h *hub) dispatch(msgs <-chan any) {
	for m := range msgs {
		switch m := m.(type) {
		case *goredis.Message:
			h.wake(m.Channel)
		case *goredis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			h.mu.Lock()
			again := h.confirmed[m.Channel]
			if _, watched := h.sinks[m.Channel]; watched {
				h.confirmed[m.Channel] = true
			}
			h.mu.Unlock()
			if again { // go-redis reconnected and subscribed again
				h.wake(m.Channel)
			}
		}
	}
}

func (h *hub) wake(channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.sinks[channel] {
		notify(s.ch)
	}
}

// close drops every subscription; watchers still running get no more events.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ps != nil {
		_ = h.ps.Close()
		h.ps = nil
	}
	h.sinks = map[string]map[*sink]struct{}{}
	h.confirmed = map[string]bool{}
}
