// Package backoff tracks per-node-group scale-up backoff: exponential from Initial to Max after consecutive
// failures (a provider error or instances that exceed the max provision time), reset after Reset without
// failures. Pure: callers pass now.
package backoff

import (
	"sync"
	"time"
)

// Options of a Tracker; zero values take cluster-autoscaler's defaults.
type Options struct {
	Initial time.Duration // default 5m
	Max     time.Duration // default 30m
	Reset   time.Duration // default 3h
}

// State of one group.
type State struct {
	Until    time.Time
	Reason   string
	Failures int
	last     time.Time
}

// Tracker is safe for concurrent use.
type Tracker struct {
	opts   Options
	mu     sync.Mutex
	groups map[string]*State
}

// New returns a Tracker.
func New(opts Options) *Tracker {
	if opts.Initial <= 0 {
		opts.Initial = 5 * time.Minute
	}
	if opts.Max <= 0 {
		opts.Max = 30 * time.Minute
	}
	if opts.Reset <= 0 {
		opts.Reset = 3 * time.Hour
	}
	return &Tracker{opts: opts, groups: map[string]*State{}}
}

// Fail records a failure of group at now and returns the new state.
func (t *Tracker) Fail(group, reason string, now time.Time) State {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.groups[group]
	if s == nil || now.Sub(s.last) > t.opts.Reset {
		s = &State{}
		t.groups[group] = s
	}
	d := t.opts.Initial << min(s.Failures, 16)
	if d > t.opts.Max || d <= 0 {
		d = t.opts.Max
	}
	s.Failures++
	s.Reason = reason
	s.Until = now.Add(d)
	s.last = now
	return *s
}

// Get returns the group's state and whether it is backed off at now.
func (t *Tracker) Get(group string, now time.Time) (State, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.groups[group]
	if s == nil {
		return State{}, false
	}
	return *s, now.Before(s.Until)
}

// Succeed forgets the group's failures.
func (t *Tracker) Succeed(group string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.groups, group)
}
