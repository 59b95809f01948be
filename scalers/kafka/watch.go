package kafka

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// partitionRefresh is how often Watch re-reads which partitions (and, without a topic, which topics) it watches.
const partitionRefresh = 15 * time.Second

// maxWatchBackoff bounds the wait between attempts while the brokers cannot be reached.
const maxWatchBackoff = 5 * time.Second

// Watch lists the latest offsets of the watched partitions every watchInterval and signals when any of them
// moved (new messages, so lag may have appeared). Kafka has no server-side notification for a consumer group's
// lag; a ListOffsets round trip per interval is the cheapest push available. Transient broker errors are logged
// and retried with backoff; Watch returns only when ctx is done.
func (s *Scaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	log := s.cfg.Logger.With(zap.String("consumerGroup", s.meta.ConsumerGroup), zap.String("topic", s.meta.Topic))
	var (
		parts     map[string][]int32
		refreshed time.Time
		last      map[string]map[int32]int64
		failures  int
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		next := s.meta.WatchInterval
		latest, newParts, err := s.watchOnce(ctx, parts, time.Since(refreshed) > partitionRefresh)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failures++
			next = min(s.meta.WatchInterval<<min(failures, 8), maxWatchBackoff)
			if failures == 1 || failures%20 == 0 {
				log.Info("kafka offset watch failed; retrying", zap.Int("failures", failures), zap.Duration("retryIn", next),
					zap.String("error", s.cfg.Redact(err.Error())))
			}
			parts = nil // re-read partitions after an error: the topic may have changed
		default:
			failures = 0
			if newParts != nil {
				parts, refreshed = newParts, time.Now()
			}
			if last != nil && offsetsMoved(last, latest) {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
			last = latest
		}
		timer.Reset(next)
	}
}

// watchOnce lists the latest offsets of parts, reading the partitions first when parts is nil or refresh is set
// (then the new partitions are returned).
func (s *Scaler) watchOnce(ctx context.Context, parts map[string][]int32, refresh bool) (map[string]map[int32]int64, map[string][]int32, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var newParts map[string][]int32
	if parts == nil || refresh {
		var err error
		newParts, err = s.watchedPartitions(ctx)
		if err != nil {
			return nil, nil, err
		}
		parts = newParts
	}
	if len(parts) == 0 {
		return map[string]map[int32]int64{}, newParts, nil
	}
	latest, err := s.conn.latestOffsets(ctx, parts)
	return latest, newParts, err
}

func (s *Scaler) watchedPartitions(ctx context.Context) (map[string][]int32, error) {
	if s.meta.Topic != "" {
		return s.conn.topicPartitions(ctx, []string{s.meta.Topic}, s.meta.partitions)
	}
	committed, err := s.conn.committedOffsets(ctx, s.meta.ConsumerGroup, nil)
	if err != nil {
		return nil, err
	}
	if len(committed) == 0 {
		return map[string][]int32{}, nil
	}
	topics := make([]string, 0, len(committed))
	for t := range committed {
		topics = append(topics, t)
	}
	return s.conn.topicPartitions(ctx, topics, nil)
}

// offsetsMoved reports whether any partition in cur has a latest offset different from prev, or is new.
func offsetsMoved(prev, cur map[string]map[int32]int64) bool {
	for t, ps := range cur {
		for p, o := range ps {
			if old, ok := prev[t][p]; !ok || old != o {
				return true
			}
		}
	}
	return false
}
