package app

import (
	"context"
	"sync"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	"github.com/tidalscale/tidal/metricsadapter/stream"
)

// Source is the operator's SampleSource in an all-in-one process: it reads the adapter's poller directly, and
// its Upsert and Delete leave the poller to the adapter's own object controllers (the poller wants one writer
// per key). Build errors reach the operator as Updates when the adapter installs an object, as over the stream.
func (a *Adapter) Source() samples.Source { return a.shared }

// sharedSource is the all-in-one SampleSource; it also observes the adapter's object installs.
type sharedSource struct {
	*poller.Poller

	mu     sync.Mutex
	extras map[chan samples.Update]struct{}
}

func newSharedSource(p *poller.Poller) *sharedSource {
	return &sharedSource{Poller: p, extras: map[chan samples.Update]struct{}{}}
}

// Upsert returns the build errors the poller holds for the generation asked about, if installed already.
func (s *sharedSource) Upsert(_ context.Context, spec samples.ObjectSpec) []error {
	st, err := s.State(spec.Key)
	if err != nil || st.Generation != spec.Generation {
		return nil
	}
	var errs []error
	for i := range st.Triggers {
		if stream.IsBuildError(&st.Triggers[i]) {
			errs = append(errs, st.Triggers[i].Err)
		}
	}
	return errs
}

func (*sharedSource) Delete(context.Context, samples.Key) {}

// Subscribe merges the poller's updates with the build-error updates of ObjectChanged.
func (s *sharedSource) Subscribe(buffer int) (<-chan samples.Update, func()) {
	in, cancel := s.Poller.Subscribe(buffer)
	extra := make(chan samples.Update, 256)
	out := make(chan samples.Update, max(buffer, 0))
	done := make(chan struct{})
	s.mu.Lock()
	s.extras[extra] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer close(out)
		for {
			var u samples.Update
			select {
			case <-done:
				return
			case v, ok := <-in:
				if !ok {
					return
				}
				u = v
			case u = <-extra:
			}
			select {
			case out <- u:
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.extras, extra)
			s.mu.Unlock()
			cancel()
			close(done)
		})
	}
}

// ObjectChanged publishes the build errors of a newly installed object (such triggers never sample).
func (s *sharedSource) ObjectChanged(key samples.Key) {
	st, err := s.State(key)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range st.Triggers {
		if !stream.IsBuildError(&st.Triggers[i]) {
			continue
		}
		u := samples.Update{Key: key, Trigger: st.Triggers[i]}
		for ch := range s.extras {
			select {
			case ch <- u:
			default: // a subscriber 256 build errors behind re-reads them from Snapshot on restart
			}
		}
	}
}

func (*sharedSource) ObjectDeleted(samples.Key) {}

// observers fans the object controllers' notifications out to several observers.
type observers []interface {
	ObjectChanged(samples.Key)
	ObjectDeleted(samples.Key)
}

func (o observers) ObjectChanged(key samples.Key) {
	for _, x := range o {
		x.ObjectChanged(key)
	}
}

func (o observers) ObjectDeleted(key samples.Key) {
	for _, x := range o {
		x.ObjectDeleted(key)
	}
}

var _ samples.Source = (*sharedSource)(nil)
