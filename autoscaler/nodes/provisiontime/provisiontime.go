// Package provisiontime measures how long each node group takes to deliver a node — from the node autoscaler's
// request to the node being Ready — and keeps an exponentially weighted moving average of it, published in
// NodeGroup status.provisionTime and used by placement decisions (burst to the virtual node or wait).
package provisiontime

import (
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/api/v1alpha1"
)

// Alpha is the weight of the newest sample in the moving average.
const Alpha = 0.3

// Instance is one instance of a group as one loop saw it.
type Instance struct {
	// ID is the provider's instance ID, stable from request to registration.
	ID string
	// CreatedAt is when the provider says the instance was requested; zero when it does not know.
	CreatedAt time.Time
	// Ready: the instance's node is Ready (and usable by the scheduler).
	Ready bool
	// ReadyAt is when the node's Ready condition turned True; zero when unknown.
	ReadyAt time.Time
}

// Tracker pairs node requests with the instances that become Ready and averages the time between. Safe for
// concurrent use.
type Tracker struct {
	// MaxAge drops a request no instance answered within it (the max node provision time).
	MaxAge time.Duration

	mu        sync.Mutex
	groups    map[string]*group
	estimates map[string]*v1alpha1.ProvisionTimeEstimate
}

type group struct {
	requests  []time.Time          // request times not yet matched to an instance, oldest first
	requested map[string]time.Time // instance ID → request time, for instances seen before Ready
	ready     map[string]bool      // instances already counted (or Ready when first seen)
}

// Requested records that n nodes of group were requested at at.
func (t *Tracker) Requested(groupName string, n int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.group(groupName)
	for range n {
		g.requests = append(g.requests, at)
	}
}

func (t *Tracker) group(name string) *group {
	if t.groups == nil {
		t.groups = map[string]*group{}
		t.estimates = map[string]*v1alpha1.ProvisionTimeEstimate{}
	}
	g := t.groups[name]
	if g == nil {
		g = &group{requested: map[string]time.Time{}}
		t.groups[name] = g
	}
	return g
}

// Observe takes one loop's view of a group's instances and returns the group's estimate (nil while nothing was
// measured). seed is the estimate published in the group's status, used when this tracker has none yet (after a
// restart). The first observation of a group counts the instances Ready by then as known, without a sample.
func (t *Tracker) Observe(groupName string, seed *v1alpha1.ProvisionTimeEstimate, instances []Instance, now time.Time) *v1alpha1.ProvisionTimeEstimate {
	t.mu.Lock()
	defer t.mu.Unlock()
	first := t.groups[groupName] == nil || t.groups[groupName].ready == nil
	g := t.group(groupName)
	if _, ok := t.estimates[groupName]; !ok && seed != nil {
		t.estimates[groupName] = seed.DeepCopy()
	}
	if first {
		g.ready = map[string]bool{}
	}
	// Requests no instance answered within MaxAge are dropped (the provider gave up, or someone else shrank the
	// group).
	if t.MaxAge > 0 {
		for len(g.requests) > 0 && now.Sub(g.requests[0]) > t.MaxAge {
			g.requests = g.requests[1:]
		}
	}
	seen := map[string]bool{}
	for _, in := range instances {
		seen[in.ID] = true
		if g.ready[in.ID] {
			continue
		}
		if first && in.Ready {
			g.ready[in.ID] = true
			continue
		}
		at, ok := g.requested[in.ID]
		if !ok {
			at, ok = t.match(g, in)
			if ok {
				g.requested[in.ID] = at
			}
		}
		if !in.Ready {
			continue
		}
		g.ready[in.ID] = true
		delete(g.requested, in.ID)
		if !ok {
			continue // not requested by this autoscaler since it started: no sample
		}
		readyAt := in.ReadyAt
		if readyAt.IsZero() || readyAt.Before(at) || readyAt.After(now) {
			readyAt = now
		}
		t.add(groupName, readyAt.Sub(at), readyAt)
	}
	for id := range g.ready {
		if !seen[id] {
			delete(g.ready, id)
		}
	}
	for id := range g.requested {
		if !seen[id] {
			delete(g.requested, id)
		}
	}
	if e := t.estimates[groupName]; e != nil {
		return e.DeepCopy()
	}
	return nil
}

// match pairs a newly seen instance with the oldest open request; the provider's creation time wins when it is
// later (a request the provider acted on late) but not before the request.
func (t *Tracker) match(g *group, in Instance) (time.Time, bool) {
	if len(g.requests) == 0 {
		return time.Time{}, false
	}
	at := g.requests[0]
	g.requests = g.requests[1:]
	if !in.CreatedAt.IsZero() && in.CreatedAt.After(at) && !in.Ready {
		at = in.CreatedAt
	}
	return at, true
}

func (t *Tracker) add(groupName string, d time.Duration, at time.Time) {
	if d < 0 {
		d = 0
	}
	e := t.estimates[groupName]
	if e == nil {
		e = &v1alpha1.ProvisionTimeEstimate{Estimate: metav1.Duration{Duration: d}}
	} else {
		e.Estimate.Duration = time.Duration(Alpha*float64(d) + (1-Alpha)*float64(e.Estimate.Duration)).Round(time.Millisecond)
	}
	e.Last = metav1.Duration{Duration: d.Round(time.Millisecond)}
	e.Samples++
	ts := metav1.NewTime(at.Truncate(time.Second))
	e.LastObservedTime = &ts
	t.estimates[groupName] = e
}

// Estimate is the group's current estimate, nil when none.
func (t *Tracker) Estimate(groupName string) *v1alpha1.ProvisionTimeEstimate {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.estimates[groupName]; e != nil {
		return e.DeepCopy()
	}
	return nil
}
