package kafka

import "sort"

// invalidOffset is what the broker returns for a partition the group has not committed an offset for.
const invalidOffset = -1

// snapshot is one reading of a consumer group: the latest (high-water) offset and the committed offset of every
// partition considered.
type snapshot struct {
	// Latest holds the latest offset of every partition considered, by topic.
	Latest map[string]map[int32]int64
	// Committed holds the group's committed offset by topic and partition; a missing entry means none (-1).
	Committed map[string]map[int32]int64
}

func (s snapshot) committed(topic string, p int32) int64 {
	if o, ok := s.Committed[topic][p]; ok {
		return o
	}
	return invalidOffset
}

// lagPolicy is what decides a partition's lag beyond latest - committed.
type lagPolicy struct {
	Earliest             bool
	ScaleToZeroOnInvalid bool
	ExcludePersistentLag bool
}

// partitionLag is KEDA's getLagForPartition: the lag the metric counts, and the lag including a persistent lag
// excludePersistentLag left out (which still counts for activity). previous holds the committed offsets seen by
// the last sample and is updated.
func partitionLag(topic string, p int32, committed, latest int64, pol lagPolicy, previous map[string]map[int32]int64) (lag, withPersistent int64) {
	if committed == invalidOffset {
		if !pol.Earliest {
			// No committed offset yet and the consumer would start at the end: report 1 so one consumer starts and
			// commits, unless asked to stay at zero (KEDA issue 2612).
			if pol.ScaleToZeroOnInvalid {
				return 0, 0
			}
			return 1, 1
		}
		if pol.ScaleToZeroOnInvalid {
			return 0, 0
		}
		// The consumer would start at the beginning: everything up to the latest offset is lag.
		return latest, latest
	}
	if pol.ExcludePersistentLag {
		prevTopic := previous[topic]
		switch prev, found := prevTopic[p]; {
		case !found:
			if prevTopic == nil {
				prevTopic = map[int32]int64{}
				previous[topic] = prevTopic
			}
			prevTopic[p] = committed
		case prev == committed:
			// The group has not moved since the last sample: the lag may be a message it cannot process, so more
			// consumers would not help. Leave it out of the metric but keep it for activity.
			return 0, latest - committed
		default:
			prevTopic[p] = committed
		}
	}
	return latest - committed, latest - committed
}

// lagTotals sums partitionLag over a snapshot.
type lagTotals struct {
	Lag               int64
	LagWithPersistent int64
	Partitions        int64
	PartitionsWithLag int64
}

func computeLag(snap snapshot, pol lagPolicy, previous map[string]map[int32]int64) lagTotals {
	var t lagTotals
	for topic, parts := range snap.Latest {
		for p, latest := range parts {
			lag, withPersistent := partitionLag(topic, p, snap.committed(topic, p), latest, pol, previous)
			t.Lag += lag
			t.LagWithPersistent += withPersistent
			if lag > 0 {
				t.PartitionsWithLag++
			}
		}
		t.Partitions += int64(len(parts))
	}
	return t
}

// capOptions are the settings that bound the reported lag.
type capOptions struct {
	LagThreshold       int64
	AllowIdleConsumers bool
	LimitToWithLag     bool
	EvenDistribution   bool
}

// capLag is KEDA's bound on the metric: without allowIdleConsumers, never report more lag than partitions (or
// partitions with lag) times lagThreshold, so the HPA does not start consumers that would get no partition; with
// ensureEvenDistributionOfPartitions, round up to a consumer count that divides the partition count.
func capLag(t lagTotals, o capOptions) int64 {
	lag := t.Lag
	if o.LagThreshold <= 0 || (o.AllowIdleConsumers && !o.LimitToWithLag && !o.EvenDistribution) {
		return lag
	}
	upper := t.Partitions
	if o.EvenDistribution {
		lag = nextBalancedFactor(lag, t.Partitions, o.LagThreshold) * o.LagThreshold
	}
	if o.LimitToWithLag {
		upper = t.PartitionsWithLag
	}
	if lag/o.LagThreshold > upper {
		lag = upper * o.LagThreshold
	}
	return lag
}

// nextBalancedFactor returns the smallest factor f of partitions with f*lagThreshold >= lag.
func nextBalancedFactor(lag, partitions, lagThreshold int64) int64 {
	for _, f := range factors(partitions) {
		if f*lagThreshold >= lag {
			return f
		}
	}
	return partitions
}

func factors(n int64) []int64 {
	if n < 1 {
		return nil
	}
	var out []int64
	for i := int64(1); i*i <= n; i++ {
		if n%i == 0 {
			out = append(out, i)
			if i != n/i {
				out = append(out, n/i)
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}
