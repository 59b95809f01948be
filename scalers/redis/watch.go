package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
)

const (
	notifyParam = "notify-keyspace-events"
	// allClasses are the event classes the 'A' flag stands for (Redis 7: g$lshztxed).
	allClasses = "g$lshztxed"
)

// notifyPolicy says what a watch may do about the server's notify-keyspace-events (enableKeyspaceNotifications).
type notifyPolicy int

const (
	// notifyIfOn subscribes only when the server already publishes the needed events; it never changes it.
	notifyIfOn notifyPolicy = iota
	// notifyEnable adds missing classes with CONFIG SET (merging, never removing): the user asked for it.
	notifyEnable
	// notifyNever does not watch at all.
	notifyNever
)

// errNotificationsOff ends a watch whose server does not publish the needed events and that may not enable them.
var errNotificationsOff = errors.New("keyspace notifications needed for push are off")

// watchTarget is the keyspace-notification watch of one key, shared by the list and stream scalers.
type watchTarget struct {
	policy notifyPolicy
	cfg    *scalers.TriggerConfig
	conn   *sharedConn
	mode   mode
	db     int
	key    string
	// classes returns the event classes (besides K) this key needs, such as "l" for a list.
	classes func(ctx context.Context, c goredis.Cmdable) string
	recheck time.Duration
}

// errMoved ends one subscription so that run subscribes again on the node that owns the key now.
var errMoved = errors.New("key moved to another cluster node")

// node is the server a watch configures and subscribes on.
type node struct {
	client *goredis.Client
	addr   string
}

// run subscribes to the key's keyspace channel and sends on changed for every event until ctx is done. It
// returns an error when notifications are off and cannot be enabled, or are refused later.
func (w *watchTarget) run(ctx context.Context, changed chan<- struct{}) error {
	channel := fmt.Sprintf("__keyspace@%d__:%s", w.db, w.key)
	for {
		n, err := w.node(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return w.cfg.Errorf("watch %q: finding the redis node that owns the key: %w", w.key, err)
		}
		classes := w.classes(ctx, n.client)
		if _, err := w.ensure(ctx, n, classes); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		err = w.listen(ctx, n, channel, classes, changed)
		if errors.Is(err, errMoved) {
			// The key lives elsewhere now; events in between may be lost, so say something may have changed.
			notify(changed)
			continue
		}
		return err
	}
}

// node returns the server that publishes the key's events: in a cluster only the master owning the key's slot
// does; otherwise the one client's (current master's) server.
func (w *watchTarget) node(ctx context.Context) (node, error) {
	switch c := w.conn.client.(type) {
	case *goredis.ClusterClient:
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		m, err := c.MasterForKey(ctx, w.key)
		if err != nil {
			return node{}, err
		}
		return node{client: m, addr: m.Options().Addr}, nil
	case *goredis.Client:
		return node{client: c}, nil
	}
	return node{}, fmt.Errorf("unsupported redis client %T", w.conn.client)
}

// listen holds one subscription until ctx is done, the notification settings are refused, or (cluster) the key
// moved to another master. The subscription goes through the server's hub, shared with every other watch there.
func (w *watchTarget) listen(ctx context.Context, n node, channel, classes string, changed chan<- struct{}) error {
	subCtx, cancel := withTimeout(ctx)
	unsubscribe, err := w.conn.hub(n).subscribe(subCtx, channel, changed)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return w.cfg.Errorf("watch %q: subscribing to keyspace notifications: %w", w.key, err)
	}
	defer unsubscribe()
	w.cfg.Logger.Debug("watching redis keyspace notifications",
		zap.String("trigger", w.cfg.ID()), zap.String("key", w.key), zap.String("mode", w.mode.String()))

	tick := time.NewTicker(w.recheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := w.recheckNode(ctx, n, classes, changed); err != nil {
				return err
			}
		}
	}
}

// recheckNode re-enables notifications a restarted or failed-over server lost and reports errMoved when the
// key's slot moved to another cluster master. A network error is left to go-redis' reconnects.
func (w *watchTarget) recheckNode(ctx context.Context, n node, classes string, changed chan<- struct{}) error {
	if w.mode == modeCluster {
		cur, err := w.node(ctx)
		if err == nil && cur.addr != n.addr {
			return errMoved
		}
	}
	enabled, err := w.ensure(ctx, n, classes)
	var reply goredis.Error
	switch {
	case err == nil:
		if enabled {
			// They were off for a while (a restart, a failover, someone's CONFIG SET): events may be lost.
			notify(changed)
		}
		return nil
	case ctx.Err() != nil:
		return nil
	case errors.As(err, &reply), errors.Is(err, errNotificationsOff):
		return err
	default:
		w.cfg.Logger.Debug("re-checking keyspace notifications failed; will retry",
			zap.String("trigger", w.cfg.ID()), zap.String("key", w.key), zap.Error(errors.New(w.cfg.Redact(err.Error()))))
		notify(changed)
		return nil
	}
}

// ensure checks notify-keyspace-events on the node covers K and classes. When it does not, it turns them on if the
// trigger opted in (enabled reports that it had to), and otherwise returns errNotificationsOff.
func (w *watchTarget) ensure(ctx context.Context, n node, classes string) (enabled bool, err error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	cur, err := n.client.ConfigGet(ctx, notifyParam).Result()
	if err != nil {
		return false, w.cfg.Errorf("watch %q: reading %s: %w", w.key, notifyParam, err)
	}
	flags := cur[notifyParam]
	if covers(flags, classes) {
		return false, nil
	}
	if w.policy != notifyEnable {
		return false, w.cfg.Errorf("watch %q: %w (%s=%q, need K and %s); polling at the pollingInterval instead. Enable them on the server, or set enableKeyspaceNotifications: \"true\" to let Tidal add them server-wide",
			w.key, errNotificationsOff, notifyParam, flags, classes)
	}
	want := mergeFlags(flags, classes)
	if err := n.client.ConfigSet(ctx, notifyParam, want).Err(); err != nil {
		return false, w.cfg.Errorf("watch %q: keyspace notifications are off (%s=%q, need K and %s) and enabling them failed: %w",
			w.key, notifyParam, flags, classes, err)
	}
	w.cfg.Logger.Info("enabled redis keyspace notifications server-wide",
		zap.String("trigger", w.cfg.ID()), zap.String("was", flags), zap.String("now", want), zap.String("node", n.addr))
	return true, nil
}

// covers reports whether notify-keyspace-events flags publish keyspace (K) events of every class in classes.
func covers(flags, classes string) bool {
	if !strings.ContainsRune(flags, 'K') {
		return false
	}
	all := strings.ContainsRune(flags, 'A')
	for _, c := range classes {
		if !strings.ContainsRune(flags, c) && !(all && strings.ContainsRune(allClasses, c)) {
			return false
		}
	}
	return true
}

// ListEventsPublished reports whether a server with these notify-keyspace-events flags publishes what a watch on
// a list key needs (K and the list class, l or A), so push works without Tidal changing the server.
func ListEventsPublished(flags string) bool { return covers(flags, "l") }

// mergeFlags adds K and classes to flags, keeping what was already on.
func mergeFlags(flags, classes string) string {
	out := flags
	all := strings.ContainsRune(flags, 'A')
	for _, c := range "K" + classes {
		if !strings.ContainsRune(out, c) && !(all && strings.ContainsRune(allClasses, c)) {
			out += string(c)
		}
	}
	return out
}

// notify makes a non-blocking send: a wake-up already pending covers this one.
func notify(changed chan<- struct{}) {
	select {
	case changed <- struct{}{}:
	default:
	}
}
