package scaledjob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/core"
	"github.com/tidalscale/tidal/autoscaler/operator"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/autoscaler/operator/triggerstate"
	"github.com/tidalscale/tidal/autoscaler/samples"
	"github.com/tidalscale/tidal/autoscaler/triggers"
	"github.com/tidalscale/tidal/internal/controller"
)

// Reconcile creates the Jobs one sample round asks for, cleans the history and updates status. Idempotent: a
// sample round is turned into Jobs once. A paused ScaledJob creates and rolls out no Jobs. With a shard, a
// ScaledJob owned by another replica is released and left to its owner; ownership is checked again before
// every write.
func (c *Controller) Reconcile(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	if operator.CheckOwner(c.opts.Shard, ns, name) != nil {
		c.release(ctx, ns, name)
		return nil
	}
	err := c.reconcile(ctx, ns, name)
	if errors.Is(err, operator.ErrNotOwner) {
		c.release(ctx, ns, name)
		return nil
	}
	return err
}

// release drops the triggers and state of a ScaledJob this replica does not (or no longer) reconcile.
func (c *Controller) release(ctx context.Context, ns, name string) {
	c.opts.Source.Delete(ctx, samples.Key{Kind: kindScaledJob, Namespace: ns, Name: name})
	c.mu.Lock()
	delete(c.jobs, ns+"/"+name)
	c.mu.Unlock()
}

// mayWrite is checked immediately before every write: ErrNotOwner when the shard moved the ScaledJob away.
func (c *Controller) mayWrite(sj *tidalv1alpha1.ScaledJob) error {
	return operator.CheckOwner(c.opts.Shard, sj.Namespace, sj.Name)
}

func (c *Controller) reconcile(ctx context.Context, ns, name string) error {
	log := operator.LoggerFrom(ctx)
	sj, err := c.opts.Lister.ScaledJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.release(ctx, ns, name)
		return nil // the Jobs are owned by it: garbage collection removes them
	}
	if err != nil {
		return err
	}
	if sj.DeletionTimestamp != nil || sj.Spec.JobTargetRef == nil {
		return nil
	}
	st := c.state(ns + "/" + name)
	hash := templateHash(sj.Spec.JobTargetRef)
	if err := c.ensureTriggers(ctx, sj, st); err != nil {
		return err
	}
	jobs, err := c.opts.JobLister.Jobs(ns).List(labels.SelectorFromSet(labels.Set{LabelScaledJobName: name}))
	if err != nil {
		return err
	}
	paused, pauseErr := pausedOf(sj)
	if !paused {
		if err := c.rollout(ctx, sj, jobs, hash); err != nil {
			return err
		}
	}
	running, pending, err := c.countJobs(ctx, sj, jobs)
	if err != nil {
		return err
	}

	status := sj.Status.DeepCopy()
	c.mu.Lock()
	in, newest, buildErr, triggerStatus := c.decisionInput(sj, st, running, pending)
	fresh := newest.After(st.consumed)
	c.mu.Unlock()
	status.Triggers = triggerStatus
	// The ScaledJob carries its placement annotations itself (it is the Jobs' definition): they are at hand on
	// every reconcile, so the Placement condition is always current.
	placement := tidalv1alpha1.ResolvePlacement(sj.Spec.Placement, sj.Annotations)
	if warning := capacity.ApplyPlacementCondition(&status.Conditions, sj.Generation, placement, kindScaledJob+" "+sj.Name); warning != "" {
		c.event(sj, corev1.EventTypeWarning, capacity.ReasonInvalidPlacementAnnotation, warning)
	}
	if paused {
		controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionPaused, metav1.ConditionTrue, "ScaledJobPaused", "autoscaling is paused: no new Jobs")
	} else {
		controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionPaused, metav1.ConditionFalse, "NotPaused", "autoscaling is not paused")
	}
	switch {
	case pauseErr != nil:
		controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, "InvalidAnnotation", pauseErr.Error())
	case buildErr != nil:
		controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, triggerstate.ReasonTriggerInvalid, buildErr.Error())
	case sourceErr(c.opts.Source) != nil:
		controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, "SampleSourceUnavailable",
			"creating no jobs: "+sourceErr(c.opts.Source).Error())
	case paused:
		// Samples keep arriving; the newest one is acted on once the pause ends.
		controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionTrue, "ScaledJobReady", "ScaledJob is paused")
	case fresh:
		d, err := core.DecideJobs(in)
		if err != nil {
			controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, "InvalidSpec", err.Error())
			break
		}
		if d.Create > 0 {
			c.publishDemand(ctx, sj, placement.Placement, running+pending+d.Create)
			if err := c.createJobs(ctx, sj, hash, d.Create); err != nil {
				return err
			}
			log.Info("created jobs", zap.Int64("count", d.Create), zap.Float64("queueLength", d.QueueLength),
				zap.Int64("running", running), zap.Int64("pending", pending))
			c.event(sj, corev1.EventTypeNormal, "JobsCreated", fmt.Sprintf("created %d jobs for queue length %g (%d running)", d.Create, d.QueueLength, running))
		}
		c.mu.Lock()
		st.consumed = newest
		c.mu.Unlock()
		if d.Active {
			now := metav1.NewTime(c.now())
			status.LastActiveTime = &now
			controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionActive, metav1.ConditionTrue, "ScalerActive", "triggers are active")
		} else {
			controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionActive, metav1.ConditionFalse, "ScalerNotActive", "no trigger is active")
		}
		controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionTrue, "ScaledJobReady", "ScaledJob is defined correctly and is ready to scale")
	}
	c.mu.Lock()
	degraded := st.reg.Degraded
	c.mu.Unlock()
	if degraded != nil && buildErr == nil && pauseErr == nil {
		// Jobs are still created from the store's last values (above); Ready says they may be stale.
		if ready := apimeta.FindStatusCondition(status.Conditions, tidalv1alpha1.ConditionReady); ready != nil && ready.Status == metav1.ConditionTrue {
			controller.SetCondition(&status.Conditions, sj.Generation, tidalv1alpha1.ConditionReady, metav1.ConditionFalse, triggerstate.ReasonSecretStoreDegraded, degraded.Error())
		}
	}
	if err := c.cleanHistory(ctx, sj, jobs); err != nil {
		return err
	}
	return c.writeStatus(ctx, sj, status)
}

func (c *Controller) state(key string) *jobState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateLocked(key)
}

// stateLocked is state with c.mu held.
func (c *Controller) stateLocked(key string) *jobState {
	st := c.jobs[key]
	if st == nil {
		st = &jobState{triggers: map[int]samples.TriggerState{}}
		c.jobs[key] = st
	}
	return st
}

// ensureTriggers registers the ScaledJob's triggers with the sample source when its generation is new, and
// again when parameters read from an external secret store are due for a refresh (triggerstate).
func (c *Controller) ensureTriggers(ctx context.Context, sj *tidalv1alpha1.ScaledJob, st *jobState) error {
	errs := st.reg.Ensure(ctx, triggerstate.Registration{
		Lock: &c.mu, Generation: sj.Generation, Now: c.now(), Source: c.opts.Source,
		Resolve: func(ctx context.Context) (samples.ObjectSpec, error) {
			return triggers.ForScaledJob(ctx, sj, c.opts.Resolver, c.log)
		},
		Event: func(reason, msg string) { c.event(sj, corev1.EventTypeWarning, reason, msg) },
		Reset: func() { st.triggers = map[int]samples.TriggerState{} },
	})
	if len(errs) > 0 { // the first build error is the one the status reports
		c.event(sj, corev1.EventTypeWarning, triggerstate.ReasonTriggerInvalid, errs[0].Error())
	}
	return nil
}

// decisionInput maps triggers' latest samples and the Job counts to core's input. newest is the newest sample
// time among the triggers.
func (c *Controller) decisionInput(sj *tidalv1alpha1.ScaledJob, st *jobState, running, pending int64) (core.JobInput, time.Time, error, []tidalv1alpha1.TriggerStatus) {
	in := core.JobInput{Running: running, Pending: pending,
		MinReplicas: int64(deref(sj.Spec.MinReplicaCount, 0)), MaxReplicas: int64(deref(sj.Spec.MaxReplicaCount, 100))}
	if s := sj.Spec.ScalingStrategy; s != nil {
		in.Strategy, in.Calculation = s.Strategy, s.MultipleScalersCalculation
		in.CustomDeduction = int64(deref(s.CustomScalingQueueLengthDeduction, 0))
		if s.CustomScalingRunningJobPercentage != "" {
			in.CustomRunningPercentage, _ = strconv.ParseFloat(s.CustomScalingRunningJobPercentage, 64)
		}
	}
	var newest time.Time
	statuses := make([]tidalv1alpha1.TriggerStatus, 0, len(sj.Spec.Triggers))
	specs := map[string]float64{}
	for _, ms := range c.opts.Source.MetricSpecs(samples.Key{Kind: kindScaledJob, Namespace: sj.Namespace, Name: sj.Name}) {
		if ms.External != nil {
			if t := ms.External.Target; t.AverageValue != nil {
				specs[ms.External.Metric.Name] = t.AverageValue.AsApproximateFloat64()
			} else if t.Value != nil {
				specs[ms.External.Metric.Name] = t.Value.AsApproximateFloat64()
			}
		}
	}
	for i, t := range sj.Spec.Triggers {
		ts := tidalv1alpha1.TriggerStatus{Name: triggers.Name(t, i), Type: t.Type}
		s, ok := st.triggers[i]
		if ok && s.Err != nil {
			ts.Error = s.Err.Error()
		}
		if ok && s.Err == nil && len(s.Samples) > 0 {
			target := specs[s.Samples[0].MetricName]
			in.Metrics = append(in.Metrics, core.JobMetric{QueueLength: s.Samples[0].Value, Target: target, Active: s.Active})
			ts.Value = strconv.FormatFloat(s.Samples[0].Value, 'f', -1, 64)
			ts.Active = s.Active
			lt := metav1.NewTime(s.SampledAt)
			ts.LastSampleTime = &lt
			if s.SampledAt.After(newest) {
				newest = s.SampledAt
			}
		}
		statuses = append(statuses, ts)
	}
	return in, newest, st.reg.Err(), statuses
}

// pausedOf reads the paused annotation (Tidal's or KEDA's spelling): "true" creates no new Jobs and leaves
// running ones alone. A value that is not a boolean is an error naming the annotation, and also pauses.
func pausedOf(sj *tidalv1alpha1.ScaledJob) (bool, error) {
	paused := false
	for _, name := range []string{tidalv1alpha1.PausedAnnotation, tidalv1alpha1.KEDAPausedAnnotation} {
		v, ok := sj.Annotations[name]
		if !ok {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return true, fmt.Errorf("metadata.annotations[%s]: want true or false, got %q", name, v)
		}
		paused = paused || b
	}
	return paused, nil
}

// countJobs counts unfinished Jobs (running) and, of those, the pending ones: with
// scalingStrategy.pendingPodConditions (read by the accurate and eager strategies, the ones using the pending
// count), those without a pod on which every listed condition is True (KEDA's rule; the pods are listed from the
// API server, only for such ScaledJobs); otherwise those with no ready pod yet.
func (c *Controller) countJobs(ctx context.Context, sj *tidalv1alpha1.ScaledJob, jobs []*batchv1.Job) (running, pending int64, err error) {
	var conditions []string
	// Only the accurate and eager strategies use the pending count: list no pods for the others.
	if st := sj.Spec.GetScalingStrategy(); st == tidalv1alpha1.ScalingStrategyAccurate || st == tidalv1alpha1.ScalingStrategyEager {
		conditions = sj.Spec.ScalingStrategy.PendingPodConditions
	}
	for _, j := range jobs {
		if finished(j) || j.DeletionTimestamp != nil {
			continue
		}
		running++
		if len(conditions) == 0 {
			if j.Status.Ready == nil || *j.Status.Ready == 0 {
				pending++
			}
			continue
		}
		fulfilled, err := c.podConditionsFulfilled(ctx, j, conditions)
		if err != nil {
			return 0, 0, err
		}
		if !fulfilled {
			pending++
		}
	}
	return running, pending, nil
}

// podConditionsFulfilled reports whether one of the Job's pods has every condition True.
func (c *Controller) podConditionsFulfilled(ctx context.Context, j *batchv1.Job, conditions []string) (bool, error) {
	pods, err := c.opts.Kube.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{batchv1.ControllerUidLabel: string(j.UID)}.String()})
	if err != nil {
		return false, fmt.Errorf("pendingPodConditions: list pods of job %s: %w", j.Name, err)
	}
	for i := range pods.Items {
		if podHasAll(&pods.Items[i], conditions) {
			return true, nil
		}
	}
	return false, nil
}

func podHasAll(pod *corev1.Pod, conditions []string) bool {
	for _, want := range conditions {
		found := false
		for _, c := range pod.Status.Conditions {
			if string(c.Type) == want && c.Status == corev1.ConditionTrue {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func finished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func (c *Controller) createJobs(ctx context.Context, sj *tidalv1alpha1.ScaledJob, hash string, n int64) error {
	for i := int64(0); i < n; i++ {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{
				GenerateName: sj.Name + "-",
				Namespace:    sj.Namespace,
				Labels:       map[string]string{LabelScaledJobName: sj.Name, LabelTemplateHash: hash, "app.kubernetes.io/managed-by": "tidal-operator"},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sj,
					tidalv1alpha1.SchemeGroupVersion.WithKind(kindScaledJob))},
			},
			Spec: *sj.Spec.JobTargetRef.DeepCopy(),
		}
		for k, v := range sj.Spec.JobTargetRef.Template.Labels {
			if _, taken := job.Labels[k]; !taken {
				job.Labels[k] = v
			}
		}
		// The pods carry the ScaledJob's name too, so the node autoscaler can tell which pods of a
		// CapacityRequest already exist.
		if job.Spec.Template.Labels == nil {
			job.Spec.Template.Labels = map[string]string{}
		}
		job.Spec.Template.Labels[LabelScaledJobName] = sj.Name
		if err := c.mayWrite(sj); err != nil {
			return err
		}
		if _, err := c.opts.Kube.BatchV1().Jobs(sj.Namespace).Create(ctx, job, metav1.CreateOptions{FieldManager: operator.FieldManager}); err != nil {
			c.event(sj, corev1.EventTypeWarning, "JobCreateFailed", err.Error())
			return fmt.Errorf("create job %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}

// rollout deletes unfinished Jobs of an older template unless rollout.strategy is gradual.
func (c *Controller) rollout(ctx context.Context, sj *tidalv1alpha1.ScaledJob, jobs []*batchv1.Job, hash string) error {
	if sj.Spec.GetRolloutStrategy() == tidalv1alpha1.RolloutStrategyGradual {
		return nil
	}
	policy := metav1.DeletePropagationBackground
	if r := sj.Spec.Rollout; r != nil && r.PropagationPolicy == "foreground" {
		policy = metav1.DeletePropagationForeground
	}
	for _, j := range jobs {
		if j.Labels[LabelTemplateHash] == hash || finished(j) || j.DeletionTimestamp != nil {
			continue
		}
		if err := c.mayWrite(sj); err != nil {
			return err
		}
		err := c.opts.Kube.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &policy})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("rollout: delete job %s: %w", j.Name, err)
		}
	}
	return nil
}

// cleanHistory keeps at most successfulJobsHistoryLimit completed and failedJobsHistoryLimit failed Jobs.
func (c *Controller) cleanHistory(ctx context.Context, sj *tidalv1alpha1.ScaledJob, jobs []*batchv1.Job) error {
	var done, failed []*batchv1.Job
	for _, j := range jobs {
		if j.DeletionTimestamp != nil {
			continue
		}
		for _, cond := range j.Status.Conditions {
			if cond.Status != corev1.ConditionTrue {
				continue
			}
			if cond.Type == batchv1.JobComplete {
				done = append(done, j)
			} else if cond.Type == batchv1.JobFailed {
				failed = append(failed, j)
			}
		}
	}
	bg := metav1.DeletePropagationBackground
	for _, set := range []struct {
		jobs  []*batchv1.Job
		limit int32
	}{
		{done, deref(sj.Spec.SuccessfulJobsHistoryLimit, tidalv1alpha1.DefaultSuccessfulJobsHistoryLimit)},
		{failed, deref(sj.Spec.FailedJobsHistoryLimit, tidalv1alpha1.DefaultFailedJobsHistoryLimit)},
	} {
		if int32(len(set.jobs)) <= set.limit {
			continue
		}
		sort.Slice(set.jobs, func(a, b int) bool { return set.jobs[a].CreationTimestamp.Before(&set.jobs[b].CreationTimestamp) })
		for _, j := range set.jobs[:int32(len(set.jobs))-set.limit] {
			if err := c.mayWrite(sj); err != nil {
				return err
			}
			err := c.opts.Kube.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("history: delete job %s: %w", j.Name, err)
			}
		}
	}
	return nil
}

func (c *Controller) writeStatus(ctx context.Context, sj *tidalv1alpha1.ScaledJob, status *tidalv1alpha1.ScaledJobStatus) error {
	status.ObservedGeneration = sj.Generation
	types := make([]string, 0, len(sj.Spec.Triggers))
	for _, t := range sj.Spec.Triggers {
		types = append(types, t.Type)
	}
	status.TriggersTypes = strings.Join(types, ",")
	if apiequality.Semantic.DeepEqual(&sj.Status, status) {
		return nil
	}
	if err := c.mayWrite(sj); err != nil {
		return err
	}
	out := sj.DeepCopy()
	out.Status = *status
	_, err := c.opts.Tidal.TidalV1alpha1().ScaledJobs(sj.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{FieldManager: operator.FieldManager})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		c.runner.Enqueue(sj.Namespace + "/" + sj.Name)
		return nil
	}
	return err
}

func (c *Controller) event(sj *tidalv1alpha1.ScaledJob, typ, reason, msg string) {
	if c.opts.Recorder != nil {
		c.opts.Recorder.Event(sj, typ, reason, msg)
	}
}

// templateHash identifies a jobTargetRef, so a changed template can be rolled out.
func templateHash(spec *batchv1.JobSpec) string {
	raw, _ := json.Marshal(spec)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:10]
}

// sourceErr reports a sample source that cannot be reached (the metrics adapter's stream), if it can tell.
func sourceErr(src samples.Source) error {
	if h, ok := src.(interface{ Err() error }); ok {
		return h.Err()
	}
	return nil
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
