package operator

import (
	"errors"
	"fmt"
)

// Shard says which objects this replica writes. In sharded mode it is internal/shard's Membership; a nil Shard
// means every object (one replica, or leader election). Owns is cheap and is called immediately before every
// write to a target's /scale, an object's status, its finalizers, its HPA or its Jobs.
type Shard interface {
	Owns(key string) bool
}

// ErrNotOwner is returned by CheckOwner when the object belongs to another replica. A reconcile that meets it
// drops what it holds for the object and returns nil: the owner reconciles it.
var ErrNotOwner = errors.New("object is owned by another replica")

// CheckOwner returns an error wrapping ErrNotOwner unless s is nil or owns namespace/name.
func CheckOwner(s Shard, namespace, name string) error {
	if s == nil || s.Owns(namespace+"/"+name) {
		return nil
	}
	return fmt.Errorf("%s/%s: %w", namespace, name, ErrNotOwner)
}

// CountOwned counts the keys s owns (all of them when s is nil): the objects a replica's shard holds.
func CountOwned(s Shard, keys []string) int {
	n := 0
	for _, key := range keys {
		if s == nil || s.Owns(key) {
			n++
		}
	}
	return n
}
