package poller

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// errRemoved tells a SampleNow waiter that the trigger it waited for was deleted or replaced.
var errRemoved = errors.New("trigger removed")

// triggerHeap orders triggers by next due time.
type triggerHeap []*trigger

func (h triggerHeap) Len() int           { return len(h) }
func (h triggerHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h triggerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}

func (h *triggerHeap) Push(x any) {
	t := x.(*trigger)
	t.heapIndex = len(*h)
	*h = append(*h, t)
}

func (h *triggerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.heapIndex = -1
	*h = old[:n-1]
	return t
}

// scheduler is the timer heap. A trigger is in exactly one place: the heap (waiting for its due time), busy
// (handed to the run loop's ready queue or running on a worker), or nowhere (removed, or never scheduled).
// Because a busy trigger is not in the heap, it cannot be started twice.
type scheduler struct {
	mu   sync.Mutex
	heap triggerHeap
	wake chan struct{} // poked when the heap's head may have changed
}

func newScheduler() *scheduler {
	return &scheduler{wake: make(chan struct{}, 1)}
}

func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// add schedules t's first sample at due.
func (s *scheduler) add(t *trigger, due time.Time) {
	s.mu.Lock()
	if t.removed || t.heapIndex >= 0 || t.busy {
		s.mu.Unlock()
		return
	}
	t.due = due
	heap.Push(&s.heap, t)
	s.mu.Unlock()
	s.signal()
}

// kick asks for a sample of t as soon as possible and returns the sequence number of the sample that will
// answer it. Requests coalesce: a trigger already queued answers with that sample; a running one is sampled
// once more right after, however many kicks arrive meanwhile.
func (s *scheduler) kick(t *trigger, push bool) (target uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.removed {
		return 0, false
	}
	if push {
		t.pushReq = true
	}
	target = t.started + 1
	switch {
	case t.running:
		t.again = true
	case t.busy:
		// Queued: the queued sample starts after this call, so it answers it.
	case t.heapIndex >= 0:
		t.due = time.Now()
		heap.Fix(&s.heap, t.heapIndex)
		s.signal()
	default:
		// Not scheduled (a trigger that is never sampled, or one not yet added): nothing would answer.
		return 0, false
	}
	return target, true
}

// begin marks t running on a worker and returns the sample's sequence number, the time it was due and whether
// it answers a push. It returns ok=false when t was removed while queued.
func (s *scheduler) begin(t *trigger, cancel context.CancelFunc) (seq uint64, due time.Time, pushed, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.removed {
		t.busy = false
		return 0, time.Time{}, false, false
	}
	t.running = true
	t.started++
	t.cancelRun = cancel
	pushed, t.pushReq = t.pushReq, false
	return t.started, t.due, pushed, true
}

// finish records that sample seq of t ended at now, wakes SampleNow waiters and schedules the next sample:
// at once when a kick arrived meanwhile, else one interval after the previous due time, skipping slots already
// missed.
func (s *scheduler) finish(t *trigger, seq uint64, now time.Time) {
	s.mu.Lock()
	t.busy, t.running, t.cancelRun = false, false, nil
	t.finished = seq
	if t.finishedCh != nil {
		close(t.finishedCh)
		t.finishedCh = nil
	}
	if t.removed {
		s.mu.Unlock()
		return
	}
	if t.again {
		t.again = false
		t.due = now
	} else {
		next := t.due.Add(t.interval)
		if !next.After(now) {
			missed := now.Sub(next)/t.interval + 1
			next = next.Add(missed * t.interval)
		}
		t.due = next
	}
	heap.Push(&s.heap, t)
	s.mu.Unlock()
	s.signal()
}

// remove unschedules t for good, cancels its running sample and releases SampleNow waiters.
func (s *scheduler) remove(t *trigger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t.removed = true
	if t.heapIndex >= 0 {
		heap.Remove(&s.heap, t.heapIndex)
	}
	if t.cancelRun != nil {
		t.cancelRun()
	}
	if t.finishedCh != nil {
		close(t.finishedCh)
		t.finishedCh = nil
	}
}

// wait blocks until sample target of t has finished, t is removed, or ctx is done.
func (s *scheduler) wait(ctx context.Context, t *trigger, target uint64) error {
	for {
		s.mu.Lock()
		if t.finished >= target {
			s.mu.Unlock()
			return nil
		}
		if t.removed {
			s.mu.Unlock()
			return errRemoved
		}
		if t.finishedCh == nil {
			t.finishedCh = make(chan struct{})
		}
		ch := t.finishedCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run is the one scheduling goroutine: it moves due triggers from the heap to a FIFO ready queue and hands them
// to workers through jobs, never blocking on a busy pool (it keeps selecting on the timer and wake-ups).
func (s *scheduler) run(ctx context.Context, jobs chan<- *trigger) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []*trigger
	for {
		now := time.Now()
		s.mu.Lock()
		for len(s.heap) > 0 && !s.heap[0].due.After(now) {
			t := heap.Pop(&s.heap).(*trigger)
			t.busy = true
			ready = append(ready, t)
		}
		wait := time.Hour
		if len(s.heap) > 0 {
			wait = s.heap[0].due.Sub(now)
		}
		s.mu.Unlock()
		timer.Reset(wait)

		// Hand over as many as the pool takes without blocking.
		for len(ready) > 0 {
			select {
			case jobs <- ready[0]:
				ready[0] = nil
				ready = ready[1:]
				continue
			default:
			}
			break
		}
		if len(ready) == 0 {
			ready = nil
		}

		var out chan<- *trigger
		var head *trigger
		if len(ready) > 0 {
			out, head = jobs, ready[0]
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		case out <- head:
			ready[0] = nil
			ready = ready[1:]
		}
	}
}
