package scalers

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"sync"
)

// Shared holds clients that triggers with the same (address, credentials) share: one Redis client for every
// trigger that reads the same server as the same user, say. A client is closed when its last user releases it.
// A Shared belongs to one registry (one operator or metrics adapter); it is not a process global.
type Shared struct {
	mu      sync.Mutex
	entries map[string]*sharedEntry
}

type sharedEntry struct {
	value any
	refs  int
	close func() error
}

// NewShared returns an empty client store.
func NewShared() *Shared { return &Shared{entries: map[string]*sharedEntry{}} }

// Len reports how many distinct clients are open.
func (s *Shared) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Acquire returns the client stored under key, opening it with open when there is none, and a release func that
// closes it with closeFn once every user has released it. With a nil Shared every call opens a client of its own.
// Callers build key with ClientKey so that credentials are hashed, never stored in clear.
func Acquire[T any](s *Shared, key string, open func() (T, error), closeFn func(T) error) (T, func() error, error) {
	if s == nil {
		v, err := open()
		if err != nil {
			var zero T
			return zero, nil, err
		}
		var once sync.Once
		return v, func() error {
			var err error
			once.Do(func() { err = closeFn(v) })
			return err
		}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok {
		v, ok := e.value.(T)
		if !ok {
			var zero T
			return zero, nil, fmt.Errorf("shared client %s holds %T, not the requested type", key[:min(len(key), 16)], e.value)
		}
		e.refs++
		return v, s.releaser(key, e), nil
	}
	v, err := open()
	if err != nil {
		var zero T
		return zero, nil, err
	}
	e := &sharedEntry{value: v, refs: 1, close: func() error { return closeFn(v) }}
	s.entries[key] = e
	return v, s.releaser(key, e), nil
}

func (s *Shared) releaser(key string, e *sharedEntry) func() error {
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			s.mu.Lock()
			e.refs--
			last := e.refs == 0
			if last && s.entries[key] == e {
				delete(s.entries, key)
			}
			s.mu.Unlock()
			if last {
				err = e.close()
			}
		})
		return err
	}
}

// ClientKey builds a Shared key from a scaler type and the fields that identify a connection. Values are
// hashed, so a key may be logged without leaking a password.
func ClientKey(scalerType string, fields map[string]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, fields[k])
	}
	return scalerType + ":" + hex.EncodeToString(h.Sum(nil))
}

// AcquireHTTPClient is the *http.Client shared under key (Acquire): Go's default transport with tlsCfg, and at
// most maxIdlePerHost idle connections per host when positive; its idle connections are closed when the last
// user releases it.
func AcquireHTTPClient(s *Shared, key string, tlsCfg *tls.Config, maxIdlePerHost int) (*http.Client, func() error, error) {
	return Acquire(s, key, func() (*http.Client, error) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		if maxIdlePerHost > 0 {
			tr.MaxIdleConnsPerHost = maxIdlePerHost
		}
		return &http.Client{Transport: tr}, nil
	}, func(c *http.Client) error {
		c.CloseIdleConnections()
		return nil
	})
}
