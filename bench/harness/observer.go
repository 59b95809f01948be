package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/tidalscale/tidal/bench/result"
)

// state is what the watches last showed, stamped with the time the watch event arrived.
type state struct {
	At       time.Time
	Replicas int32 // Deployment spec.replicas
	Running  int   // pods Running and not being deleted
}

// observer follows one Deployment and its pods through watches (informers). Every timestamp it hands out is the
// arrival time of the watch event that produced the state.
type observer struct {
	mu      sync.Mutex
	cur     state
	history []state
	running map[string]bool
	changed chan struct{} // closed and replaced on every change
	stop    func()
}

func newObserver(ctx context.Context, kube kubernetes.Interface, namespace, deployment string) (*observer, error) {
	o := &observer{running: map[string]bool{}, changed: make(chan struct{})}
	f := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(namespace))
	deps := f.Apps().V1().Deployments().Informer()
	pods := f.Core().V1().Pods().Informer()
	onDep := func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok && d.Name == deployment && d.Spec.Replicas != nil {
			o.update(func(s *state) { s.Replicas = *d.Spec.Replicas })
		}
	}
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			if t, ok2 := obj.(cache.DeletedFinalStateUnknown); ok2 {
				p, ok = t.Obj.(*corev1.Pod)
			}
			if !ok {
				return
			}
		}
		up := p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning
		o.update(func(s *state) {
			if up {
				o.running[p.Name] = true
			} else {
				delete(o.running, p.Name)
			}
			s.Running = len(o.running)
		})
	}
	if _, err := deps.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onDep, UpdateFunc: func(_, n any) { onDep(n) }}); err != nil {
		return nil, fmt.Errorf("watch Deployment %s/%s: %w", namespace, deployment, err)
	}
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, n any) { onPod(n) },
		DeleteFunc: func(obj any) {
			var name string
			switch p := obj.(type) {
			case *corev1.Pod:
				name = p.Name
			case cache.DeletedFinalStateUnknown:
				name = p.Key
				if pod, ok := p.Obj.(*corev1.Pod); ok {
					name = pod.Name
				}
			}
			o.update(func(s *state) { delete(o.running, name); s.Running = len(o.running) })
		},
	}); err != nil {
		return nil, fmt.Errorf("watch pods in %s: %w", namespace, err)
	}
	ictx, cancel := context.WithCancel(ctx)
	f.Start(ictx.Done())
	o.stop = func() { cancel(); f.Shutdown() }
	for typ, ok := range f.WaitForCacheSync(ictx.Done()) {
		if !ok {
			o.stop()
			return nil, fmt.Errorf("watch %v in %s: cache never synced", typ, namespace)
		}
	}
	return o, nil
}

func (o *observer) update(fn func(*state)) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	prev := o.cur
	fn(&o.cur)
	if o.cur.Replicas == prev.Replicas && o.cur.Running == prev.Running {
		return
	}
	o.cur.At = now
	o.history = append(o.history, o.cur)
	close(o.changed)
	o.changed = make(chan struct{})
}

// now returns the current state.
func (o *observer) now() state {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cur
}

// waitFor blocks until cond holds and returns the state (with its watch-event time) at which it first held.
func (o *observer) waitFor(ctx context.Context, what string, cond func(state) bool) (state, error) {
	for {
		o.mu.Lock()
		cur, ch := o.cur, o.changed
		o.mu.Unlock()
		if cond(cur) {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return cur, fmt.Errorf("waiting for %s (replicas %d, running %d): %w", what, cur.Replicas, cur.Running, ctx.Err())
		case <-ch:
		}
	}
}

// firstAfter returns the earliest recorded state at or after t that satisfies cond.
func (o *observer) firstAfter(t time.Time, cond func(state) bool) (state, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.history {
		if !s.At.Before(t) && cond(s) {
			return s, true
		}
	}
	return state{}, false
}

// sampler records the timeline (queue from the source, replicas and pods from the observer) every interval.
type sampler struct {
	mu     sync.Mutex
	start  time.Time
	points []result.Point
	stop   func()
}

func startSampler(ctx context.Context, o *observer, src Source, every time.Duration) *sampler {
	s := &sampler{start: time.Now()}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample(ctx, o, src)
			select {
			case <-ctx.Done():
				// One last point, so the timeline ends in the state the iteration ended in.
				s.sample(context.WithoutCancel(ctx), o, src)
				return
			case <-t.C:
			}
		}
	}()
	s.stop = func() { cancel(); <-done }
	return s
}

func (s *sampler) sample(ctx context.Context, o *observer, src Source) {
	var q int64
	if src != nil {
		q, _ = src.Len(ctx)
	}
	st := o.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.points = append(s.points, result.Point{T: time.Since(s.start).Seconds(), Queue: q, Replicas: st.Replicas, Running: st.Running})
}

// timeline stops the sampler and returns its points.
func (s *sampler) timeline() []result.Point {
	s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.points
}
