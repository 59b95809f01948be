package stores_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidalscale/tidal/autoscaler/triggers/stores"
)

// fakeClock is the injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// The cache serves a value until half its TTL, then reads again; a failed refresh serves the last value with a
// *StaleError naming the field until the TTL is over, then the store's error alone; a new resourceVersion is a
// new entry.
func TestCacheRefreshStaleExpire(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := stores.NewCache(10*time.Minute, clock.Now)
	key := stores.Key{Kind: "TriggerAuthentication", Namespace: "ns", Name: "vault", ResourceVersion: "1", Field: "spec.hashiCorpVault"}
	value, reads := "v1", 0
	var storeErr error
	read := func(context.Context) (map[string]string, error) {
		reads++
		if storeErr != nil {
			return nil, storeErr
		}
		return map[string]string{"password": value}, nil
	}
	get := func() (map[string]string, time.Time, error) { return c.Get(ctx, key, read) }

	got, next, err := get()
	if err != nil || got["password"] != "v1" || reads != 1 || !next.Equal(clock.Now().Add(5*time.Minute)) {
		t.Fatalf("first read: %v %v %v reads=%d", got, next, err, reads)
	}
	value = "v2"
	clock.Add(4 * time.Minute)
	if got, _, err := get(); err != nil || got["password"] != "v1" || reads != 1 {
		t.Fatalf("within TTL/2: %v %v reads=%d, want the cached v1", got, err, reads)
	}
	clock.Add(2 * time.Minute) // 6 min: due
	if got, _, err := get(); err != nil || got["password"] != "v2" || reads != 2 {
		t.Fatalf("after TTL/2: %v %v reads=%d, want v2 read again", got, err, reads)
	}

	// The store goes down: the last value is served with a StaleError until read time + TTL.
	storeErr = errors.New("HTTP 503 Service Unavailable")
	clock.Add(6 * time.Minute) // 6 min after the v2 read
	got, next, err = get()
	var stale *stores.StaleError
	if !errors.As(err, &stale) || got["password"] != "v2" || stale.Field != "spec.hashiCorpVault" || !strings.Contains(err.Error(), "503") {
		t.Fatalf("store down within TTL: %v %v, want v2 with a StaleError", got, err)
	}
	if strings.Contains(err.Error(), "v2") {
		t.Fatalf("the error shows the value: %v", err)
	}
	if !next.After(clock.Now()) {
		t.Fatalf("next refresh %v is not after now %v", next, clock.Now())
	}
	readsBefore := reads
	if _, _, err := get(); !errors.As(err, &stale) || reads != readsBefore {
		t.Fatalf("a second Get right after a failure asked the store again (reads %d → %d) or lost the value: %v", readsBefore, reads, err)
	}
	clock.Add(5 * time.Minute) // 11 min after the v2 read: expired
	got, _, err = get()
	if err == nil || errors.As(err, &stale) || got != nil {
		t.Fatalf("after the TTL: %v %v, want the store's error alone", got, err)
	}

	// Back up: read again.
	storeErr = nil
	value = "v3"
	if got, _, err := get(); err != nil || got["password"] != "v3" {
		t.Fatalf("store back: %v %v", got, err)
	}
	// An edited authentication (new resourceVersion) is read at once.
	value = "v4"
	key2 := key
	key2.ResourceVersion = "2"
	if got, _, err := c.Get(ctx, key2, read); err != nil || got["password"] != "v4" {
		t.Fatalf("new resourceVersion: %v %v", got, err)
	}
}

// Concurrent Gets of one key read the store once.
func TestCacheConcurrentReadsOnce(t *testing.T) {
	c := stores.NewCache(time.Minute, nil)
	key := stores.Key{Kind: "ClusterTriggerAuthentication", Name: "shared", ResourceVersion: "7", Field: "spec.hashiCorpVault"}
	var mu sync.Mutex
	reads := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _, err := c.Get(context.Background(), key, func(context.Context) (map[string]string, error) {
				mu.Lock()
				reads++
				mu.Unlock()
				return map[string]string{"token": "t"}, nil
			})
			if err != nil || got["token"] != "t" {
				t.Errorf("get: %v %v", got, err)
			}
		}()
	}
	wg.Wait()
	if reads != 1 {
		t.Fatalf("%d reads of one key, want 1", reads)
	}
}
