package shard

import (
	"hash/fnv"
)

// Owner is the member that owns key among members by rendezvous (highest-random-weight) hashing: every member
// scores every key, and the highest score wins. Removing a member moves only that member's keys, and adding one
// moves to it only the keys it now wins, the minimum any hash can move. Two members that both know each other
// can never both be the owner of a key under views that contain them both: their relative order for the key is
// the same in every view. "" when members is empty.
func Owner(members []string, key string) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		s := score(m, key)
		if best == "" || s > bestScore || (s == bestScore && m > best) {
			best, bestScore = m, s
		}
	}
	return best
}

// score is the member's weight for key: FNV-1a of "member\x00key", finished with splitmix64 so that members
// whose names differ in one character still spread keys evenly. It is the same in every process.
func score(member, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	z := h.Sum64() + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
