// Package triggerstate decides when an object's triggers are registered with the sample source again: on a new
// generation, and when parameters read from an external secret store are due for a refresh (a rotated value
// rebuilds the scalers, values that expired without a successful read remove them). The ScaledObject and
// ScaledJob controllers share it.
package triggerstate

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/triggers"
)

// Event reasons of a registration.
const (
	// ReasonTriggerInvalid: authentication or environment could not be resolved, or a trigger could not be built.
	ReasonTriggerInvalid = "TriggerInvalid"
	// ReasonSecretStoreDegraded: an external secret store could not be read; scaling goes on with the values it
	// returned last, until --secret-store-ttl runs out (then ReasonTriggerInvalid).
	ReasonSecretStoreDegraded = "SecretStoreDegraded"
)

// RetryBuildErrors is how soon an object whose triggers could not be built is tried again when nothing else
// wakes it: a Secret may appear or a secret store answer again.
const RetryBuildErrors = 30 * time.Second

// State is what a controller remembers of the registration of one object's triggers. The controller guards it
// with the lock that guards the triggers' samples (Ensure takes that lock).
type State struct {
	// Generation is the object generation whose triggers are registered with the source; 0 means none.
	Generation int64
	// BuildErrs is the resolution error, or the errors of the triggers that could not be built.
	BuildErrs []error
	// Degraded is the *triggers.DegradedError of the last resolution (nil when healthy).
	Degraded error
	// RefreshAt is when the parameters read from secret stores are due again (zero: only on a new generation).
	RefreshAt time.Time
	// AuthDigest is triggers.AuthDigest of the parameters the registered scalers were built with.
	AuthDigest string
}

// Due reports whether the triggers of generation must be resolved at now: the generation is not the registered
// one, or its secret-store values are due. refreshing tells the second case.
func (s *State) Due(generation int64, now time.Time) (due, refreshing bool) {
	refreshing = s.Generation == generation
	return !refreshing || (!s.RefreshAt.IsZero() && !now.Before(s.RefreshAt)), refreshing
}

// Err is the first build error, nil when every trigger was built.
func (s *State) Err() error {
	if len(s.BuildErrs) == 0 {
		return nil
	}
	return s.BuildErrs[0]
}

// RetryAfter is when the object must be reconciled again without an event: after a build error, or when its
// secret-store values are due (0: no need).
func (s *State) RetryAfter(now time.Time) time.Duration {
	switch {
	case len(s.BuildErrs) > 0:
		return RetryBuildErrors
	case !s.RefreshAt.IsZero():
		return max(s.RefreshAt.Sub(now), time.Second)
	}
	return 0
}

// newlyDegraded reports whether err is a degradation not reported yet (a new one, or another message).
func (s *State) newlyDegraded(err error) bool {
	return err != nil && (s.Degraded == nil || s.Degraded.Error() != err.Error())
}

// failed records a resolution that failed: nothing is registered, the error is every trigger's.
func (s *State) failed(err error) {
	s.BuildErrs = []error{err}
	s.Generation, s.RefreshAt, s.Degraded = 0, time.Time{}, nil
}

// refreshed records a refresh of the registered generation and reports whether the authentication parameters are
// the ones the scalers were built with.
func (s *State) refreshed(degraded error, refreshAt time.Time, digest string) (unchanged bool) {
	s.Degraded, s.RefreshAt = degraded, refreshAt
	return s.AuthDigest == digest
}

// registered records triggers registered for generation, with the source's per-trigger build errors.
func (s *State) registered(generation int64, degraded error, refreshAt time.Time, digest string, errs []error) {
	s.Generation = generation
	s.Degraded, s.RefreshAt, s.AuthDigest = degraded, refreshAt, digest
	s.BuildErrs = slices.DeleteFunc(slices.Clone(errs), func(e error) bool { return e == nil })
}

// Registration is one call of Ensure.
type Registration struct {
	// Lock guards the State and whatever Reset clears.
	Lock sync.Locker
	// Generation is the object's current generation.
	Generation int64
	Now        time.Time
	// Resolve resolves the object's triggers (triggers.ForScaledObject, triggers.ForScaledJob).
	Resolve func(ctx context.Context) (samples.ObjectSpec, error)
	Source  samples.Source
	// Event records a warning event on the object. The messages name fields, never values.
	Event func(reason, msg string)
	// Reset forgets the samples of the scalers the source dropped; it is called with Lock held.
	Reset func()
}

// Ensure registers the triggers with the source when they are due (Due). A resolution that fails (not degraded)
// is recorded as every trigger's build error and, on a refresh, removes the scalers built with the expired values;
// a refresh whose values changed rebuilds them. It returns the source's per-trigger build errors of a new
// registration, for the caller to report; the resolution and degradation events are recorded here.
func (s *State) Ensure(ctx context.Context, r Registration) []error {
	r.Lock.Lock()
	due, refreshing := s.Due(r.Generation, r.Now)
	r.Lock.Unlock()
	if !due {
		return nil
	}
	spec, err := r.Resolve(ctx)
	if err != nil && !triggers.IsDegraded(err) {
		r.Event(ReasonTriggerInvalid, err.Error())
		if refreshing {
			// Secret store values expired without a successful read: the scalers built with them go, as if the
			// authentication had never resolved.
			r.Source.Delete(ctx, spec.Key)
		}
		r.Lock.Lock()
		s.failed(err)
		if refreshing {
			r.Reset()
		}
		r.Lock.Unlock()
		return nil
	}
	r.Lock.Lock()
	newlyDegraded := s.newlyDegraded(err)
	r.Lock.Unlock()
	if newlyDegraded {
		r.Event(ReasonSecretStoreDegraded, err.Error())
	}
	digest := triggers.AuthDigest(spec.Triggers)
	if refreshing {
		r.Lock.Lock()
		unchanged := s.refreshed(err, spec.RefreshAt, digest)
		r.Lock.Unlock()
		if unchanged {
			return nil
		}
		// A store returned new values (a rotated secret): rebuild the scalers with them (an Upsert of a held
		// generation is a no-op, so drop the object first).
		r.Source.Delete(ctx, spec.Key)
		r.Lock.Lock()
		r.Reset()
		r.Lock.Unlock()
	}
	errs := r.Source.Upsert(ctx, spec)
	r.Lock.Lock()
	s.registered(r.Generation, err, spec.RefreshAt, digest, errs)
	r.Lock.Unlock()
	return slices.DeleteFunc(errs, func(e error) bool { return e == nil })
}
