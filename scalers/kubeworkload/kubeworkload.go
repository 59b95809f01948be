// Package kubeworkload implements the kubernetes-workload trigger: KEDA's Kubernetes Workload scaler. It counts
// the pods matching a label selector in the ScaledObject's namespace.
//
// Metadata (KEDA names):
//
//	podSelector      a label selector (app=worker,tier in (a,b)); required
//	value            target pods per replica (float, > 0); required
//	activationValue  default 0; active when the count is above it
//
// As in KEDA, pods in phase Succeeded or Failed do not count. The trigger reads with the deployable's own client
// (TriggerConfig.Kube) from the apiserver's watch cache, and pushes: a pod watch wakes the poller on every change.
// The metric is s<index>-workload-<namespace>, as in KEDA.
package kubeworkload

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
)

// Type is the trigger type served by this package.
const Type = "kubernetes-workload"

// Register adds the kubernetes-workload trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the kubernetes-workload trigger's metadata.
type Metadata struct {
	PodSelector     string  `tidal:"name=podSelector"`
	Value           float64 `tidal:"name=value,target"`
	ActivationValue float64 `tidal:"name=activationValue,default=0,range=0;"`

	selector labels.Selector
}

// Validate parses the selector and checks the thresholds.
func (m *Metadata) Validate() error {
	var errs []error
	if strings.TrimSpace(m.PodSelector) == "" {
		errs = append(errs, errors.New("podSelector: must not be empty"))
	} else if sel, err := labels.Parse(m.PodSelector); err != nil {
		errs = append(errs, fmt.Errorf("podSelector: %w", err))
	} else {
		m.selector = sel
	}
	return errors.Join(errs...)
}

// Scaler is a kubernetes-workload trigger.
type Scaler struct {
	scalers.OneMetric
	cfg  *scalers.TriggerConfig
	meta Metadata
	log  *zap.Logger
}

// New builds a kubernetes-workload trigger. It needs the object's namespace; the client is checked at Sample, so
// a deployable without one (tidalctl) can still validate the metadata.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, err := scalers.ParseExternal[Metadata](cfg)
	if err != nil {
		return nil, err
	}
	return &Scaler{
		cfg:       cfg,
		meta:      meta,
		OneMetric: scalers.NewOneMetric(cfg, cfg.MetricName("workload", cfg.ObjectNamespace), meta.Value, meta.ActivationValue),
		log:       cfg.Logger.With(zap.String("trigger", cfg.ID())),
	}, nil
}

func (s *Scaler) listOptions() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: s.meta.selector.String()}
}

func (s *Scaler) ready() error {
	if s.cfg.Kube == nil {
		return s.cfg.Errorf("no Kubernetes client in this deployable's scaler context")
	}
	if s.cfg.ObjectNamespace == "" {
		return s.cfg.Errorf("no namespace: the trigger must belong to a ScaledObject or ScaledJob")
	}
	return nil
}

// Sample counts the matching pods that have not finished; active above activationValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	if err := s.ready(); err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, scalers.CallTimeout)
	defer cancel()
	opts := s.listOptions()
	opts.ResourceVersion = "0" // served from the apiserver's watch cache
	pods, err := s.cfg.Kube.CoreV1().Pods(s.cfg.ObjectNamespace).List(ctx, opts)
	if err != nil {
		err = s.cfg.Errorf("podSelector %q: list pods in %s: %w", s.meta.PodSelector, s.cfg.ObjectNamespace, err)
		s.log.Debug("kubernetes-workload sample failed", zap.Error(err))
		return nil, false, err
	}
	var n float64
	for i := range pods.Items {
		if p := pods.Items[i].Status.Phase; p != corev1.PodSucceeded && p != corev1.PodFailed {
			n++
		}
	}
	return s.Value(n)
}

// Watch watches the matching pods and signals changed on every event, re-watching from the last seen version
// when the apiserver ends a watch. It returns when ctx is done, or with an error when a watch cannot be opened.
func (s *Scaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	if err := s.ready(); err != nil {
		return err
	}
	rv := ""
	for {
		opts := s.listOptions()
		opts.ResourceVersion, opts.AllowWatchBookmarks = rv, true
		w, err := s.cfg.Kube.CoreV1().Pods(s.cfg.ObjectNamespace).Watch(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return s.cfg.Errorf("podSelector %q: watch pods in %s: %w", s.meta.PodSelector, s.cfg.ObjectNamespace, err)
		}
		rv, err = s.drain(ctx, w, changed, rv)
		w.Stop()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// drain forwards one watch's events until it ends; it returns the last resource version seen ("" after an
// expired version, so the next watch starts fresh).
func (s *Scaler) drain(ctx context.Context, w watch.Interface, changed chan<- struct{}, rv string) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, nil
			}
			switch ev.Type {
			case watch.Error:
				s.log.Debug("pod watch ended", zap.Any("status", ev.Object))
				return "", nil
			case watch.Bookmark:
			default:
				select {
				case changed <- struct{}{}:
				default:
				}
			}
			if p, ok := ev.Object.(*corev1.Pod); ok {
				rv = p.ResourceVersion
			}
		}
	}
}

// Close releases nothing: the client belongs to the deployable.
func (s *Scaler) Close(context.Context) error { return nil }
