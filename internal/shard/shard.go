// Package shard splits objects between the replicas of one deployable (the operator, the metrics adapter) by
// rendezvous hashing of "namespace/name" over the live members, where membership is a set of
// coordination.k8s.io Leases, one per replica, labelled with the group.
//
// Each replica renews its own Lease every RetryPeriod and, in the same round, lists the group's Leases (a
// quorum read, so a replica's view is never older than its last successful round). A member is live while the
// Lease it holds changed within LeaseDuration of when this replica observed it (the local clock only, as
// client-go's leader election does, so clock skew between hosts does not matter).
//
// A replica claims a key (Owns) only when all three hold:
//   - its own Lease was renewed, and the group listed, by a round that started less than RenewDeadline ago
//     (RenewDeadline < LeaseDuration): a replica that cannot reach the API server stops claiming before any
//     other replica can consider its Lease expired;
//   - it is the key's owner by rendezvous hashing over its view of the live members;
//   - every other live member has published (in its Lease's view annotation) a view that contains this replica:
//     a newcomer claims nothing until the old owners have seen it, so an old owner never keeps writing a key it
//     lost to a member it has not seen yet.
//
// Rendezvous hashing orders the members of each key the same way in every view, so two members that have seen
// each other never both own a key; the rules above cover the members that have not. docs/sharding.md has the
// whole argument.
package shard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Labels and annotations on member Leases.
const (
	// LabelGroup selects a group's member Leases; its value is Options.Group.
	LabelGroup = "tidal.dev/shard-group"
	// AnnotationView is the comma-separated, sorted list of the members the Lease's holder considers live.
	AnnotationView = "tidal.dev/shard-view"
)

// Default timings (client-go leader election's).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Options configure a Membership. Client, Namespace and Group are required.
type Options struct {
	Client kubernetes.Interface
	// Namespace holds the member Leases.
	Namespace string
	// Group names the set of replicas that share objects ("tidal-operator"); each Lease is named
	// Group-Identity and labelled LabelGroup=Group.
	Group string
	// Identity of this replica; default the hostname (the pod name).
	Identity string
	// LeaseDuration is how long a member stays live after its last observed renewal; RenewDeadline how long a
	// replica keeps claiming after the start of its last successful round (must be less); RetryPeriod the
	// interval between rounds.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *zap.Logger
	// OnChange is called (from the renewing goroutine) after a round changed the live members or whether this
	// replica may claim keys: callers re-check every object they hold or might now own.
	OnChange func()
	// Annotations are published on this replica's Lease (for example the address its peers reach it at); the
	// others read them with Peers. Keys must not be AnnotationView.
	Annotations map[string]string
}

// member is what one replica knows of another's Lease.
type member struct {
	identity string
	record   string    // holder and renewTime as last seen; a change is a renewal
	observed time.Time // when record last changed, by our clock
	view     []string  // the members the holder published as live
	rv       string
	annots   map[string]string
}

// Membership is this replica's membership in its group and its view of the others.
type Membership struct {
	opts      Options
	log       *zap.Logger
	leaseName string

	mu        sync.Mutex
	members   map[string]*member // by Lease name, self included
	live      []string           // sorted identities, self included
	acked     bool               // every other live member's view contains self
	heldUntil time.Time          // claims stop at this instant unless a later round succeeds
	stopped   bool
}

// New validates opts.
func New(opts Options) (*Membership, error) {
	switch {
	case opts.Client == nil:
		return nil, errors.New("shard: a Kubernetes client is required")
	case opts.Namespace == "" || opts.Group == "":
		return nil, errors.New("shard: namespace and group are required")
	case opts.Annotations[AnnotationView] != "":
		return nil, fmt.Errorf("shard: annotation %s is the membership's own", AnnotationView)
	}
	if opts.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("shard: identity: %w", err)
		}
		opts.Identity = host
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.RenewDeadline <= 0 {
		opts.RenewDeadline = DefaultRenewDeadline
	}
	if opts.RetryPeriod <= 0 {
		opts.RetryPeriod = DefaultRetryPeriod
	}
	if opts.RenewDeadline >= opts.LeaseDuration {
		return nil, fmt.Errorf("shard: renew deadline %s must be less than the lease duration %s", opts.RenewDeadline, opts.LeaseDuration)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if strings.Contains(opts.Identity, ",") {
		return nil, fmt.Errorf("shard: identity %q: must not contain a comma", opts.Identity)
	}
	return &Membership{
		opts: opts, leaseName: LeaseName(opts.Group, opts.Identity), members: map[string]*member{},
		live: []string{opts.Identity},
		log:  opts.Logger.With(zap.String("shardGroup", opts.Group), zap.String("identity", opts.Identity)),
	}, nil
}

// LeaseName is the name of a member's Lease: group-identity, lower-cased, with characters a name may not hold
// replaced by '-'.
func LeaseName(group, identity string) string {
	b := []byte(strings.ToLower(group + "-" + identity))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	return string(b)
}

// Identity is this replica's name among the members.
func (m *Membership) Identity() string { return m.opts.Identity }

// Owns reports whether this replica may write key ("namespace/name") now. Call it immediately before each write.
func (m *Membership) Owns(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.claimingLocked() && Owner(m.live, key) == m.opts.Identity
}

// Owner is key's owner in this replica's view of the members, whether or not that owner may claim it yet.
func (m *Membership) Owner(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Owner(m.live, key)
}

// Peers are the other live members in this replica's view, with the annotations of their Leases.
func (m *Membership) Peers() map[string]map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]map[string]string{}
	for name, mb := range m.members {
		if name != m.leaseName && slices.Contains(m.live, mb.identity) {
			out[mb.identity] = mb.annots
		}
	}
	return out
}

// Members are the live members in this replica's view, sorted.
func (m *Membership) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.live)
}

// Claiming reports whether this replica may claim keys at all: its Lease is held and every live member has seen it.
func (m *Membership) Claiming() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.claimingLocked()
}

func (m *Membership) claimingLocked() bool {
	return !m.stopped && m.acked && m.opts.Now().Before(m.heldUntil)
}

// Run renews this replica's Lease and refreshes the view every RetryPeriod until ctx is done, then stops
// claiming and deletes the Lease so the others take its keys over at their next round.
func (m *Membership) Run(ctx context.Context) error {
	t := time.NewTicker(m.opts.RetryPeriod)
	defer t.Stop()
	for {
		if err := m.Round(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("shard membership round failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			m.release()
			return nil
		case <-t.C:
		}
	}
}

// release stops claiming, then deletes the Lease (with a fresh context: the caller's is done).
func (m *Membership) release() {
	m.mu.Lock()
	m.stopped = true
	rv := ""
	if self := m.members[m.leaseName]; self != nil {
		rv = self.rv
	}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.RenewDeadline)
	defer cancel()
	var pre *metav1.Preconditions
	if rv != "" {
		pre = &metav1.Preconditions{ResourceVersion: &rv}
	}
	leases := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace)
	err := leases.Delete(ctx, m.leaseName, metav1.DeleteOptions{Preconditions: pre})
	if apierrors.IsConflict(err) {
		// A renewal cut short by the stop may have landed after all, moving the version on: delete the Lease if
		// it is still this replica's.
		if cur, gerr := leases.Get(ctx, m.leaseName, metav1.GetOptions{}); gerr == nil && cur.Spec.HolderIdentity != nil &&
			*cur.Spec.HolderIdentity == m.opts.Identity {
			rv := cur.ResourceVersion
			err = leases.Delete(ctx, m.leaseName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		}
	}
	if err != nil && !apierrors.IsNotFound(err) {
		m.log.Warn("could not delete the shard lease; the others take over when it expires", zap.Error(err))
		return
	}
	m.log.Info("left the shard group")
}

// Round is one renewal: list the group's Leases, update the view (dropping claims at once), then write this
// replica's Lease with the new view. Claims are extended only when the list (which must already hold this
// replica's Lease) and the write both succeeded, to RenewDeadline after the round started.
func (m *Membership) Round(ctx context.Context) error {
	start := m.opts.Now()
	// A round that cannot finish within the renew deadline could not extend the claims anyway.
	ctx, cancel := context.WithTimeout(ctx, m.opts.RenewDeadline)
	defer cancel()
	leases, err := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelGroup + "=" + m.opts.Group})
	if err != nil {
		return fmt.Errorf("list shard leases: %w", err)
	}
	// Others' renewals are dated when the list returned, not when it was sent: later is the safe side for
	// deciding when they expire.
	changed, self, expired := m.observe(leases.Items, m.opts.Now())
	if changed {
		m.changed()
	}
	for _, l := range expired {
		m.deleteExpired(ctx, l)
	}
	lease, err := m.renew(ctx, self, start)
	if err != nil {
		return err
	}
	m.mu.Lock()
	wasClaiming := m.claimingLocked()
	m.members[m.leaseName] = &member{identity: m.opts.Identity, record: record(lease), observed: start, view: m.live, rv: lease.ResourceVersion}
	// Claims start only from a round whose list already held this replica's Lease: of two replicas joining at
	// once, the one whose Lease was created last then lists after both exist and waits for the other to see it,
	// instead of both listing an empty group and claiming everything.
	if self != nil {
		m.heldUntil = start.Add(m.opts.RenewDeadline)
	}
	nowClaiming := m.claimingLocked()
	m.mu.Unlock()
	if nowClaiming != wasClaiming {
		m.log.Info("shard claims", zap.Bool("claiming", nowClaiming), zap.Strings("members", m.Members()))
		m.changed()
	}
	return nil
}

func (m *Membership) changed() {
	if m.opts.OnChange != nil {
		m.opts.OnChange()
	}
}

// observe folds a list of the group's Leases into the view. It returns whether the live members or the
// acknowledgement of this replica changed, this replica's own Lease (nil if absent) and the Leases of members
// expired for longer than a further LeaseDuration, which the caller deletes.
func (m *Membership) observe(leases []coordinationv1.Lease, now time.Time) (changed bool, self *coordinationv1.Lease, expired []coordinationv1.Lease) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for i := range leases {
		l := &leases[i]
		seen[l.Name] = true
		if l.Name == m.leaseName {
			self = l
			continue
		}
		id := ""
		if l.Spec.HolderIdentity != nil {
			id = *l.Spec.HolderIdentity
		}
		rec := record(l)
		mb := m.members[l.Name]
		if mb == nil || mb.record != rec {
			mb = &member{identity: id, record: rec, observed: now}
			m.members[l.Name] = mb
		}
		mb.rv = l.ResourceVersion
		mb.view = splitView(l.Annotations[AnnotationView])
		mb.annots = l.Annotations
		if id != "" && now.Sub(mb.observed) > 2*m.opts.LeaseDuration {
			expired = append(expired, *l)
		}
	}
	for name := range m.members {
		if !seen[name] && name != m.leaseName {
			delete(m.members, name) // deleted: its holder released it
		}
	}
	live := []string{m.opts.Identity}
	acked := true
	for name, mb := range m.members {
		if name == m.leaseName || mb.identity == "" || now.Sub(mb.observed) >= m.opts.LeaseDuration {
			continue
		}
		live = append(live, mb.identity)
		if !slices.Contains(mb.view, m.opts.Identity) {
			acked = false
		}
	}
	slices.Sort(live)
	live = slices.Compact(live)
	if !slices.Equal(live, m.live) || acked != m.acked {
		changed = true
		m.log.Info("shard members changed", zap.Strings("members", live), zap.Bool("seenByAll", acked))
	}
	m.live, m.acked = live, acked
	return changed, self, expired
}

// renew creates or updates this replica's Lease with the current view. A conflicting update (the Lease changed
// since the list) fails the round; the next one retries.
func (m *Membership) renew(ctx context.Context, self *coordinationv1.Lease, start time.Time) (*coordinationv1.Lease, error) {
	m.mu.Lock()
	view := strings.Join(m.live, ",")
	m.mu.Unlock()
	leases := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace)
	id := m.opts.Identity
	secs := int32((m.opts.LeaseDuration + time.Second - 1) / time.Second)
	renewTime := metav1.NewMicroTime(start)
	if self == nil {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: m.leaseName, Namespace: m.opts.Namespace,
				Labels: map[string]string{LabelGroup: m.opts.Group}, Annotations: m.annotations(nil, view)},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, AcquireTime: &renewTime, RenewTime: &renewTime},
		}
		out, err := leases.Create(ctx, l, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("create shard lease %s: %w", m.leaseName, err)
		}
		m.log.Info("joined the shard group", zap.String("lease", m.opts.Namespace+"/"+m.leaseName))
		return out, nil
	}
	l := self.DeepCopy()
	l.Annotations = m.annotations(l.Annotations, view)
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[LabelGroup] = m.opts.Group
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &id, &secs, &renewTime
	if l.Spec.AcquireTime == nil {
		l.Spec.AcquireTime = &renewTime
	}
	out, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("renew shard lease %s: %w", m.leaseName, err)
	}
	return out, nil
}

// annotations adds the view and Options.Annotations to a Lease's annotations.
func (m *Membership) annotations(have map[string]string, view string) map[string]string {
	if have == nil {
		have = map[string]string{}
	}
	for k, v := range m.opts.Annotations {
		have[k] = v
	}
	have[AnnotationView] = view
	return have
}

// deleteExpired removes the Lease of a member that has not renewed for two lease durations (a killed pod), only
// if it is still the version we saw.
func (m *Membership) deleteExpired(ctx context.Context, l coordinationv1.Lease) {
	rv := l.ResourceVersion
	err := m.opts.Client.CoordinationV1().Leases(l.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		m.log.Warn("could not delete an expired shard lease", zap.String("lease", l.Name), zap.Error(err))
		return
	}
	m.log.Info("deleted an expired shard lease", zap.String("lease", l.Name))
}

// record is what changes when a Lease is renewed.
func record(l *coordinationv1.Lease) string {
	var b strings.Builder
	if l.Spec.HolderIdentity != nil {
		b.WriteString(*l.Spec.HolderIdentity)
	}
	b.WriteByte('|')
	if l.Spec.RenewTime != nil {
		b.WriteString(l.Spec.RenewTime.UTC().Format(time.RFC3339Nano))
	}
	return b.String()
}

func splitView(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
