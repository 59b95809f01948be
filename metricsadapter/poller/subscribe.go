package poller

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidalscale/tidal/autoscaler/samples"
)

// Subscribe returns a channel of every Update (each sample of each trigger, which carries activity changes) and
// a cancel func that stops the subscription and closes the channel.
//
// Publishing never blocks polling. While the subscriber keeps up, it receives every update in order. When its
// channel (of capacity buffer) is full, later updates wait in a per-subscriber queue holding at most one update
// per trigger: a newer update for a trigger replaces the one waiting (coalescing; ActivityChanged is OR-ed), so
// a slow subscriber skips intermediate states but always ends with the latest state of every trigger, and
// updates of one trigger never arrive out of order. Coalesced updates are counted in
// tidal_poller_subscriber_coalesced_total. Each subscription runs one goroutine until cancelled.
//
// Upsert and Delete publish nothing themselves: the first sample of a new generation is its first update, and
// consumers learn of deletions from their own informers (or by comparing with Snapshot).
func (p *Poller) Subscribe(buffer int) (<-chan samples.Update, func()) {
	return p.hub.Subscribe(buffer)
}

// Hub fans updates out to subscribers with the semantics documented on Poller.Subscribe. The poller publishes
// its samples through one; the metrics adapter's stream client republishes what it receives through another.
type Hub struct {
	mu        sync.RWMutex
	subs      map[*subscriber]struct{}
	coalesced prometheus.Counter // may be nil
}

// NewHub returns a Hub that counts coalesced updates on coalesced (nil: not counted).
func NewHub(coalesced prometheus.Counter) *Hub {
	return &Hub{subs: map[*subscriber]struct{}{}, coalesced: coalesced}
}

// Subscribe adds a subscriber; see Poller.Subscribe.
func (h *Hub) Subscribe(buffer int) (<-chan samples.Update, func()) {
	s := &subscriber{
		out:     make(chan samples.Update, max(buffer, 0)),
		pending: map[triggerKey]samples.Update{},
		signal:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	h.add(s)
	go s.pump()
	return s.out, func() {
		h.remove(s)
		s.stop()
	}
}

// CloseAll ends every subscription; their channels close.
func (h *Hub) CloseAll() {
	h.mu.Lock()
	subs := h.subs
	h.subs = map[*subscriber]struct{}{}
	h.mu.Unlock()
	for s := range subs {
		s.stop()
	}
}

type triggerKey struct {
	key   samples.Key
	index int
}

func (h *Hub) add(s *subscriber) {
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
}

func (h *Hub) remove(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// Publish offers u to every subscriber without blocking.
func (h *Hub) Publish(u samples.Update) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.offer(u) && h.coalesced != nil {
			h.coalesced.Inc()
		}
	}
}

// subscriber is one subscription: a buffered channel in front of a coalescing queue drained by pump.
type subscriber struct {
	out    chan samples.Update
	signal chan struct{} // poked when pending gains an entry
	done   chan struct{} // closed by stop
	once   sync.Once

	mu      sync.Mutex
	pending map[triggerKey]samples.Update
	order   []triggerKey // FIFO of pending keys
	holding bool         // pump holds an update it is trying to send
	closed  bool
}

// stop ends the subscription; safe to call more than once (cancel and CloseAll may both call it).
func (s *subscriber) stop() { s.once.Do(func() { close(s.done) }) }

// offer queues u without blocking and reports whether it replaced an update still waiting.
func (s *subscriber) offer(u samples.Update) (coalesced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	// Fast path: nothing waits ahead of u, so sending directly keeps the order.
	if len(s.order) == 0 && !s.holding {
		select {
		case s.out <- u:
			return false
		default:
		}
	}
	k := triggerKey{u.Key, u.Trigger.Index}
	if old, ok := s.pending[k]; ok {
		u.ActivityChanged = u.ActivityChanged || old.ActivityChanged
		s.pending[k] = u
		return true
	}
	s.pending[k] = u
	s.order = append(s.order, k)
	select {
	case s.signal <- struct{}{}:
	default:
	}
	return false
}

// pump moves queued updates into out, blocking only itself, until the subscription is cancelled.
func (s *subscriber) pump() {
	defer func() {
		s.mu.Lock()
		s.closed = true
		close(s.out)
		s.mu.Unlock()
	}()
	for {
		select {
		case <-s.done:
			return
		case <-s.signal:
		}
		for {
			s.mu.Lock()
			if len(s.order) == 0 {
				s.mu.Unlock()
				break
			}
			k := s.order[0]
			s.order = s.order[1:]
			u := s.pending[k]
			delete(s.pending, k)
			s.holding = true
			s.mu.Unlock()

			select {
			case s.out <- u:
			case <-s.done:
				return
			}
			s.mu.Lock()
			s.holding = false
			s.mu.Unlock()
		}
	}
}
