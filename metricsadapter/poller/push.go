package poller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Backoff of failed push watches. A watch that ran for healthyWatch before failing counts as a new failure
// streak: backoff restarts and the failure is logged again.
const (
	minWatchBackoff = time.Second
	maxWatchBackoff = 5 * time.Minute
	healthyWatch    = time.Minute
)

// watch runs t's PushScaler.Watch until ctx is done. Each signal kicks an immediate (coalesced) sample. Polling
// goes on at the trigger's interval regardless, so when Watch fails the trigger simply falls back to polling
// while Watch is retried with exponential backoff. The first failure of a streak is logged at warn level, the
// rest at debug level.
func (p *Poller) watch(ctx context.Context, t *trigger) {
	defer close(t.watchDone)
	changed := make(chan struct{}, 1)
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				t.pushWakeups.Inc()
				p.sched.kick(t, true)
			}
		}
	}()
	defer func() { <-forwarded }()

	backoff := minWatchBackoff
	logged := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		start := time.Now()
		err := callWatch(ctx, t, changed)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch returned before it was cancelled")
		}
		t.watchFailures.Inc()
		if time.Since(start) >= healthyWatch {
			backoff, logged = minWatchBackoff, false
		}
		msg := t.cfg.Redact(err.Error())
		if !logged {
			t.log.Warn("push watch failed; polling at the interval and retrying the watch",
				zap.String("error", msg), zap.Duration("retryIn", backoff), zap.Duration("pollingInterval", t.interval))
			logged = true
		} else {
			t.log.Debug("push watch failed again", zap.String("error", msg), zap.Duration("retryIn", backoff))
		}
		timer.Reset(backoff)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, maxWatchBackoff)
	}
}

// callWatch calls Watch, turning a panic into an error.
func callWatch(ctx context.Context, t *trigger, changed chan<- struct{}) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: watch panicked: %v", t.cfg.ID(), r)
		}
	}()
	return t.push.Watch(ctx, changed)
}
