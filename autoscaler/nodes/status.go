package nodes

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/nodes/demand"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaleup"
)

// Event reasons on pods, as cluster-autoscaler's.
const (
	EventTriggeredScaleUp  = "TriggeredScaleUp"
	EventNotTriggerScaleUp = "NotTriggerScaleUp"
)

// podEventInterval limits repeated identical events per pod.
const podEventInterval = 5 * time.Minute

// StatusKey is the data key of the status ConfigMap.
const StatusKey = "status"

// ClusterStatus is the YAML document in the status ConfigMap under StatusKey.
type ClusterStatus struct {
	Time       metav1.Time       `json:"time"`
	Health     string            `json:"health"`
	NodeGroups []NodeGroupStatus `json:"nodeGroups"`
	ScaleUp    ScaleUpStatus     `json:"scaleUp"`
	ScaleDown  ScaleDownStatus   `json:"scaleDown"`
}

// NodeGroupStatus is one group in the status ConfigMap.
type NodeGroupStatus struct {
	Name          string       `json:"name"`
	MinSize       int32        `json:"minSize"`
	MaxSize       int32        `json:"maxSize"`
	Target        int          `json:"targetSize"`
	Ready         int          `json:"ready"`
	Registered    int          `json:"registered"`
	Unregistered  int          `json:"unregistered"`
	Backoff       string       `json:"backoff,omitempty"`
	BackoffUntil  *metav1.Time `json:"backoffUntil,omitempty"`
	Error         string       `json:"error,omitempty"`
	LastScaleUp   *metav1.Time `json:"lastScaleUp,omitempty"`
	LastScaleDown *metav1.Time `json:"lastScaleDown,omitempty"`
}

// ScaleUpStatus summarises the loop's scale-up.
type ScaleUpStatus struct {
	UnschedulablePods int            `json:"unschedulablePods"`
	BurstPods         int            `json:"burstPods"`
	Triggered         map[string]int `json:"triggered,omitempty"` // group → nodes added this loop
	NotHelped         int            `json:"notHelped"`
	// DemandPods are the simulated pods of CapacityRequests and headroom (docs/demand.md); DemandNotHelped
	// those of them no group could take. NotHelped counts real pods only.
	DemandPods      int `json:"demandPods,omitempty"`
	DemandNotHelped int `json:"demandNotHelped,omitempty"`
}

// ScaleDownStatus summarises the loop's scale-down.
type ScaleDownStatus struct {
	Candidates int      `json:"candidates"`
	Unneeded   []string `json:"unneeded,omitempty"`
	Removing   []string `json:"removing,omitempty"`
}

// report writes the status ConfigMap and NodeGroup statuses. Failures are logged: reporting never fails a loop.
func (a *Autoscaler) report(ctx context.Context, now time.Time, st *state, up scaleup.Plan, down scaledown.Plan) {
	cs := ClusterStatus{Time: metav1.NewTime(now), Health: "Healthy"}
	cs.ScaleUp = ScaleUpStatus{UnschedulablePods: len(st.pending), BurstPods: len(st.burst), DemandPods: len(st.demand.Pods)}
	for _, n := range up.NoScaleUp {
		if demand.Source(n.Pod) != "" {
			cs.ScaleUp.DemandNotHelped++
		} else {
			cs.ScaleUp.NotHelped++
		}
	}
	for _, u := range up.ScaleUps {
		if cs.ScaleUp.Triggered == nil {
			cs.ScaleUp.Triggered = map[string]int{}
		}
		cs.ScaleUp.Triggered[u.NodeGroup.Name] = u.Delta
	}
	cs.ScaleDown.Candidates = len(st.candidates)
	for n := range down.Unneeded {
		cs.ScaleDown.Unneeded = append(cs.ScaleDown.Unneeded, n)
	}
	sort.Strings(cs.ScaleDown.Unneeded)
	for n := range a.actuator.Deleting() {
		cs.ScaleDown.Removing = append(cs.ScaleDown.Removing, n)
	}
	sort.Strings(cs.ScaleDown.Removing)
	var ready, upcoming int
	names := make([]string, 0, len(st.byName))
	for n := range st.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		gs := st.byName[name]
		ready += gs.ready
		upcoming += gs.upcoming
		s := NodeGroupStatus{
			Name: name, MinSize: gs.group.Spec.MinSize, MaxSize: gs.group.Spec.MaxSize,
			Target: gs.target, Ready: gs.ready, Registered: gs.registered, Unregistered: gs.unregistered,
			Backoff: gs.backoff, Error: gs.err,
		}
		if gs.backoff != "" {
			s.BackoffUntil = &metav1.Time{Time: gs.backoffUntil}
		}
		a.mu.Lock()
		if t, ok := a.lastScaleUp[name]; ok {
			s.LastScaleUp = &metav1.Time{Time: t}
		}
		if t, ok := a.lastScaleDown[name]; ok {
			s.LastScaleDown = &metav1.Time{Time: t}
		}
		a.mu.Unlock()
		if gs.err != "" {
			cs.Health = "Degraded"
		}
		cs.NodeGroups = append(cs.NodeGroups, s)
		a.updateNodeGroupStatus(ctx, gs, s)
	}
	a.metrics.Nodes.WithLabelValues("ready").Set(float64(ready))
	a.metrics.Nodes.WithLabelValues("upcoming").Set(float64(upcoming))
	a.writeStatusConfigMap(ctx, cs)
}

func (a *Autoscaler) writeStatusConfigMap(ctx context.Context, cs ClusterStatus) {
	raw, err := yaml.Marshal(cs)
	if err != nil {
		a.log.Error("encode status", zap.Error(err))
		return
	}
	cms := a.opts.Client.CoreV1().ConfigMaps(a.cfg.StatusNamespace)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.StatusConfigMap, Namespace: a.cfg.StatusNamespace,
			Annotations: map[string]string{"tidal.dev/last-updated": cs.Time.UTC().Format(time.RFC3339)}},
		Data: map[string]string{StatusKey: string(raw)},
	}
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: fieldManager})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: fieldManager})
	}
	if err != nil && ctx.Err() == nil {
		a.log.Warn("write status ConfigMap", zap.String("configMap", a.cfg.StatusNamespace+"/"+a.cfg.StatusConfigMap), zap.Error(err))
	}
}

const fieldManager = "tidal-node-autoscaler"

func (a *Autoscaler) updateNodeGroupStatus(ctx context.Context, gs *groupState, s NodeGroupStatus) {
	ng := gs.group.DeepCopy()
	want := ng.Status.DeepCopy()
	want.TargetSize = int32(s.Target)
	want.ReadyNodes = int32(s.Ready)
	want.RegisteredNodes = int32(s.Registered)
	want.UnregisteredNodes = int32(s.Unregistered)
	want.ObservedGeneration = ng.Generation
	want.LastScaleUpTime = keepLater(want.LastScaleUpTime, s.LastScaleUp)
	want.LastScaleDownTime = keepLater(want.LastScaleDownTime, s.LastScaleDown)
	if gs.provision != nil {
		want.ProvisionTime = gs.provision
	}
	want.Backoff = nil
	if gs.backoff != "" {
		want.Backoff = &v1alpha1.NodeGroupBackoff{Until: metav1.Time{Time: gs.backoffUntil}, Reason: gs.backoff, Failures: int32(gs.failures)}
	}
	ready := metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Managed", Message: "node group is managed", ObservedGeneration: ng.Generation}
	if gs.err != "" {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "Invalid", gs.err
	}
	setCondition(&want.Conditions, ready)
	backoffCond := metav1.Condition{Type: "Backoff", Status: metav1.ConditionFalse, Reason: "NoBackoff", ObservedGeneration: ng.Generation}
	if gs.backoff != "" {
		backoffCond.Status, backoffCond.Reason, backoffCond.Message = metav1.ConditionTrue, "ScaleUpFailed", gs.backoff
	}
	setCondition(&want.Conditions, backoffCond)
	if reflect.DeepEqual(&ng.Status, want) {
		return
	}
	ng.Status = *want
	_, err := a.opts.TidalClient.TidalV1alpha1().NodeGroups().UpdateStatus(ctx, ng, metav1.UpdateOptions{FieldManager: fieldManager})
	if err != nil && !apierrors.IsConflict(err) && ctx.Err() == nil {
		a.log.Warn("update node group status", zap.String("nodeGroup", ng.Name), zap.Error(err))
	}
}

func keepLater(cur, next *metav1.Time) *metav1.Time {
	if next == nil || (cur != nil && !cur.Time.Before(next.Time.Truncate(time.Second))) {
		return cur
	}
	t := metav1.NewTime(next.Time.Truncate(time.Second))
	return &t
}

// setCondition sets c, keeping LastTransitionTime when the status did not change.
func setCondition(conds *[]metav1.Condition, c metav1.Condition) {
	for i := range *conds {
		old := &(*conds)[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = metav1.NewTime(time.Now().Truncate(time.Second))
		}
		*old = c
		return
	}
	c.LastTransitionTime = metav1.NewTime(time.Now().Truncate(time.Second))
	*conds = append(*conds, c)
}

// podEvent records an event on a pod at most once per podEventInterval for the same reason and message.
func (a *Autoscaler) podEvent(now time.Time, pod *corev1.Pod, typ, reason, msg string) {
	if a.opts.Recorder == nil || demand.Source(pod) != "" { // a simulated pod has no object to attach to
		return
	}
	key := fmt.Sprintf("%s/%s/%s", pod.UID, reason, msg)
	a.mu.Lock()
	last, seen := a.eventsSent[key]
	if seen && now.Sub(last) < podEventInterval {
		a.mu.Unlock()
		return
	}
	a.eventsSent[key] = now
	for k, t := range a.eventsSent {
		if now.Sub(t) > podEventInterval {
			delete(a.eventsSent, k)
		}
	}
	a.mu.Unlock()
	a.opts.Recorder.Event(pod, typ, reason, msg)
}
