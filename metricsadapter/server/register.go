package server

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
)

// API groups the adapter serves, as APIService names.
const (
	APIServiceExternalMetrics = "v1beta1.external.metrics.k8s.io"
	APIServiceMetrics         = "v1beta1.metrics.k8s.io"
)

// RegisterOptions describes how the cluster's aggregator reaches the adapter.
type RegisterOptions struct {
	// Namespace and Service name the Service the APIServices point at.
	Namespace, Service string
	// Port is the adapter's secure port (APIService.spec.service.port).
	Port int32
	// ExternalName, when set, makes the Service an ExternalName Service resolving to this host: how an adapter
	// running outside the cluster (on the dev cluster's host, e.g. "localhost") is reached. Empty leaves the
	// Service alone: in a real deployment the chart owns it.
	ExternalName string
	// CABundle verifies the adapter's serving certificate, which must be valid for <Service>.<Namespace>.svc.
	// Empty sets insecureSkipTLSVerify (development only).
	CABundle []byte
	// PodMetrics also registers metrics.k8s.io.
	PodMetrics bool
}

// Register creates or updates the Service (when ExternalName is set) and the APIService objects.
func Register(ctx context.Context, kube kubernetes.Interface, agg aggregator.Interface, o RegisterOptions) error {
	if o.Namespace == "" || o.Service == "" || o.Port <= 0 {
		return errors.New("register APIService: namespace, service and port are required")
	}
	if o.ExternalName != "" {
		if err := applyService(ctx, kube, o); err != nil {
			return err
		}
	}
	for _, as := range APIServices(o) {
		if err := applyAPIService(ctx, agg, as); err != nil {
			return err
		}
	}
	return nil
}

// Unregister deletes both APIServices (absent ones are fine), so nothing keeps pointing at an adapter that is
// gone — on a cluster shared with others, e.g. when a test's or a benchmark's adapter stops.
func Unregister(ctx context.Context, agg aggregator.Interface) error {
	var errs []error
	for _, name := range []string{APIServiceExternalMetrics, APIServiceMetrics} {
		if err := agg.ApiregistrationV1().APIServices().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete APIService %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// APIServices renders the APIService objects of o.
func APIServices(o RegisterOptions) []*apiregistrationv1.APIService {
	type apiGroup struct {
		name, group string
		priority    int32
	}
	groups := []apiGroup{{APIServiceExternalMetrics, "external.metrics.k8s.io", 100}}
	if o.PodMetrics {
		groups = append(groups, apiGroup{APIServiceMetrics, "metrics.k8s.io", 100})
	}
	out := make([]*apiregistrationv1.APIService, 0, len(groups))
	for _, g := range groups {
		port := o.Port
		as := &apiregistrationv1.APIService{
			ObjectMeta: metav1.ObjectMeta{Name: g.name, Labels: map[string]string{"app.kubernetes.io/name": Name}},
			Spec: apiregistrationv1.APIServiceSpec{
				Service:              &apiregistrationv1.ServiceReference{Namespace: o.Namespace, Name: o.Service, Port: &port},
				Group:                g.group,
				Version:              "v1beta1",
				GroupPriorityMinimum: g.priority,
				VersionPriority:      g.priority,
			},
		}
		if len(o.CABundle) > 0 {
			as.Spec.CABundle = o.CABundle
		} else {
			as.Spec.InsecureSkipTLSVerify = true
		}
		out = append(out, as)
	}
	return out
}

func applyService(ctx context.Context, kube kubernetes.Interface, o RegisterOptions) error {
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: o.Service, Namespace: o.Namespace, Labels: map[string]string{"app.kubernetes.io/name": Name}},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: o.ExternalName,
			Ports:        []corev1.ServicePort{{Name: "https", Port: o.Port, Protocol: corev1.ProtocolTCP}},
		},
	}
	svcs := kube.CoreV1().Services(o.Namespace)
	got, err := svcs.Get(ctx, o.Service, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := svcs.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Service %s/%s: %w", o.Namespace, o.Service, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get Service %s/%s: %w", o.Namespace, o.Service, err)
	}
	upd := got.DeepCopy()
	upd.Spec.Type, upd.Spec.ExternalName, upd.Spec.Ports = want.Spec.Type, want.Spec.ExternalName, want.Spec.Ports
	upd.Spec.ClusterIP, upd.Spec.ClusterIPs, upd.Spec.Selector = "", nil, nil
	if _, err := svcs.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Service %s/%s: %w", o.Namespace, o.Service, err)
	}
	return nil
}

func applyAPIService(ctx context.Context, agg aggregator.Interface, want *apiregistrationv1.APIService) error {
	api := agg.ApiregistrationV1().APIServices()
	got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := api.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create APIService %s: %w", want.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get APIService %s: %w", want.Name, err)
	}
	upd := got.DeepCopy()
	upd.Spec = want.Spec
	upd.Labels = want.Labels
	if _, err := api.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update APIService %s: %w", want.Name, err)
	}
	return nil
}
