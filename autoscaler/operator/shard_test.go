package operator_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/autoscaler/operator"
)

type ownsPrefix string

func (p ownsPrefix) Owns(key string) bool { return strings.HasPrefix(key, string(p)) }

func TestCountOwnedAndCheckOwner(t *testing.T) {
	keys := []string{"a/x", "a/y", "b/z"}
	if n := operator.CountOwned(nil, keys); n != 3 {
		t.Errorf("no shard: %d, want every key", n)
	}
	if n := operator.CountOwned(ownsPrefix("a/"), keys); n != 2 {
		t.Errorf("shard owning a/: %d, want 2", n)
	}
	if err := operator.CheckOwner(ownsPrefix("a/"), "b", "z"); !errors.Is(err, operator.ErrNotOwner) || !strings.Contains(err.Error(), "b/z") {
		t.Errorf("CheckOwner b/z: %v", err)
	}
	if err := operator.CheckOwner(nil, "b", "z"); err != nil {
		t.Errorf("no shard: %v", err)
	}
}
