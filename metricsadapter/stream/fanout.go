package stream

import (
	"sync"

	"github.com/tidalscale/tidal/metricsadapter/poller"
)

// fanout delivers the client's updates to its subscribers with the poller's semantics: never blocking the
// stream reader, every update in order while a subscriber keeps up, and at most one waiting update per trigger
// (the newest; ActivityChanged OR-ed) when it does not.
type fanout struct {
	mu   sync.Mutex
	subs map[*subscription]struct{}
}

func newFanout() *fanout { return &fanout{subs: map[*subscription]struct{}{}} }

type triggerID struct {
	key   poller.Key
	index int
}

type subscription struct {
	out    chan poller.Update
	signal chan struct{}
	done   chan struct{}

	stopOnce sync.Once

	mu      sync.Mutex
	pending map[triggerID]poller.Update
	order   []triggerID
	holding bool
	closed  bool
}

func (f *fanout) subscribe(buffer int) (<-chan poller.Update, func()) {
	s := &subscription{
		out:     make(chan poller.Update, max(buffer, 0)),
		signal:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		pending: map[triggerID]poller.Update{},
	}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	go s.pump()
	return s.out, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
		s.stop()
	}
}

// stop ends the subscription; safe to call more than once (cancel and closeAll may both call it).
func (s *subscription) stop() { s.stopOnce.Do(func() { close(s.done) }) }

func (f *fanout) publish(u poller.Update) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.offer(u)
	}
}

// closeAll ends every subscription (the client stopped).
func (f *fanout) closeAll() {
	f.mu.Lock()
	subs := f.subs
	f.subs = map[*subscription]struct{}{}
	f.mu.Unlock()
	for s := range subs {
		s.stop()
	}
}

func (s *subscription) offer(u poller.Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if len(s.order) == 0 && !s.holding {
		select {
		case s.out <- u:
			return
		default:
		}
	}
	id := triggerID{u.Key, u.Trigger.Index}
	if old, ok := s.pending[id]; ok {
		u.ActivityChanged = u.ActivityChanged || old.ActivityChanged
		s.pending[id] = u
		return
	}
	s.pending[id] = u
	s.order = append(s.order, id)
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *subscription) pump() {
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
			id := s.order[0]
			s.order = s.order[1:]
			u := s.pending[id]
			delete(s.pending, id)
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
