package scalers

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestSharedRefCounts(t *testing.T) {
	s := NewShared()
	var opened, closed atomic.Int32
	open := func() (*int, error) { opened.Add(1); v := 1; return &v, nil }
	closeFn := func(*int) error { closed.Add(1); return nil }
	key := ClientKey("redis", map[string]string{"addr": "a", "password": "p"})

	var releases []func() error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rel, err := Acquire(s, key, open, closeFn)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			releases = append(releases, rel)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if opened.Load() != 1 || s.Len() != 1 {
		t.Fatalf("opened %d clients, %d entries; want 1", opened.Load(), s.Len())
	}
	for i, rel := range releases {
		_ = rel()
		_ = rel() // releasing twice is harmless
		if i < len(releases)-1 && closed.Load() != 0 {
			t.Fatalf("closed after %d of %d releases", i+1, len(releases))
		}
	}
	if closed.Load() != 1 || s.Len() != 0 {
		t.Fatalf("closed %d, entries %d; want 1, 0", closed.Load(), s.Len())
	}
	if other := ClientKey("redis", map[string]string{"addr": "a", "password": "q"}); other == key {
		t.Fatal("different credentials gave the same key")
	}
}

func TestSharedOpenError(t *testing.T) {
	s := NewShared()
	_, _, err := Acquire(s, "k", func() (int, error) { return 0, errors.New("boom") }, func(int) error { return nil })
	if err == nil || s.Len() != 0 {
		t.Fatalf("err=%v len=%d", err, s.Len())
	}
	v, rel, err := Acquire[int](nil, "k", func() (int, error) { return 7, nil }, func(int) error { return nil })
	if err != nil || v != 7 || rel() != nil {
		t.Fatalf("nil Shared: v=%d err=%v", v, err)
	}
}
