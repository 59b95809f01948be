package stores

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"
)

// DefaultTTL is how long values read from a store are used when no TTL is configured (--secret-store-ttl).
const DefaultTTL = 5 * time.Minute

// Key names what a cache entry holds: one store section of one version of one authentication.
type Key struct {
	// Kind is TriggerAuthentication or ClusterTriggerAuthentication; Namespace is empty for the latter.
	Kind, Namespace, Name string
	// ResourceVersion of the authentication: an edited authentication is read again.
	ResourceVersion string
	// Field is the store's Field().
	Field string
}

// StaleError reports that a store could not be read while values read earlier are still within their TTL: the
// values returned with it are those, and can be used until Until. It names the field and the store's error,
// never a value.
type StaleError struct {
	Field string
	Err   error
	// ReadAt is when the values served were read; Until is when they expire.
	ReadAt, Until time.Time
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s: cannot be read, using the values read at %s until %s: %v",
		e.Field, e.ReadAt.UTC().Format(time.RFC3339), e.Until.UTC().Format(time.RFC3339), e.Err)
}

func (e *StaleError) Unwrap() error { return e.Err }

// Cache keeps what stores returned. A value read at t is served without asking the store until t+TTL/2; after
// that each Get reads the store again (at most once per TTL/20 while it fails). When that read fails, the value
// is still served, with a *StaleError, until t+TTL; after that Get returns the store's error alone. Safe for
// concurrent use; the zero value is not: use NewCache.
type Cache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[Key]*entry
	// reads serializes reads of one key so concurrent resolutions of many objects sharing one
	// authentication ask the store once.
	reads     map[Key]*sync.Mutex
	lastSweep time.Time
}

type entry struct {
	values   map[string]string
	readAt   time.Time
	failedAt time.Time // last failed refresh; zero when the last read succeeded
	err      error     // error of the last failed refresh
}

// NewCache returns a cache whose values live ttl (DefaultTTL when <= 0), on the clock now (time.Now when nil).
func NewCache(ttl time.Duration, now func() time.Time) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{ttl: ttl, now: now, entries: map[Key]*entry{}, reads: map[Key]*sync.Mutex{}}
}

// TTL is how long a value read is used at most.
func (c *Cache) TTL() time.Duration { return c.ttl }

// Now is the cache's clock.
func (c *Cache) Now() time.Time { return c.now() }

// Get returns the values of key, calling read when there are none or they are due for a refresh, and when to
// call Get again to refresh them. The map returned is the caller's. See Cache for when a *StaleError comes with
// values.
func (c *Cache) Get(ctx context.Context, key Key, read func(context.Context) (map[string]string, error)) (map[string]string, time.Time, error) {
	c.mu.Lock()
	lock := c.reads[key]
	if lock == nil {
		lock = &sync.Mutex{}
		c.reads[key] = lock
	}
	c.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()

	now := c.now()
	c.mu.Lock()
	e := c.entries[key]
	c.sweep(now)
	c.mu.Unlock()
	if e != nil {
		switch {
		case now.Before(e.readAt.Add(c.ttl / 2)):
			return maps.Clone(e.values), e.readAt.Add(c.ttl / 2), nil
		case e.err != nil && now.Before(e.failedAt.Add(c.ttl/20)) && now.Before(e.readAt.Add(c.ttl)):
			// Failed a moment ago: do not hammer a store that is down.
			return maps.Clone(e.values), e.failedAt.Add(c.ttl / 20), e.stale(key, c.ttl)
		}
	}
	values, err := read(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.entries[key] = &entry{values: maps.Clone(values), readAt: now}
		return values, now.Add(c.ttl / 2), nil
	}
	if e == nil || !now.Before(e.readAt.Add(c.ttl)) {
		delete(c.entries, key)
		return nil, time.Time{}, err
	}
	e.failedAt, e.err = now, err
	c.entries[key] = e
	return maps.Clone(e.values), now.Add(c.ttl / 20), e.stale(key, c.ttl)
}

func (e *entry) stale(key Key, ttl time.Duration) *StaleError {
	return &StaleError{Field: key.Field, Err: e.err, ReadAt: e.readAt, Until: e.readAt.Add(ttl)}
}

// sweep drops expired entries (an old resourceVersion, a deleted authentication), at most once per TTL/2. c.mu
// is held.
func (c *Cache) sweep(now time.Time) {
	if now.Before(c.lastSweep.Add(c.ttl / 2)) {
		return
	}
	c.lastSweep = now
	for k, e := range c.entries {
		if !now.Before(e.readAt.Add(c.ttl)) {
			delete(c.entries, k)
		}
	}
	for k := range c.reads {
		if _, ok := c.entries[k]; !ok {
			delete(c.reads, k) // a Get holding it finishes with its own copy
		}
	}
}
