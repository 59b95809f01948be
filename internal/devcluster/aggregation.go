package devcluster

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// HostAPIService describes an aggregated API server running on this host (in the test process, say) to
// register with the dev cluster.
type HostAPIService struct {
	// Group and Version are the API group version it serves, e.g. external.metrics.k8s.io / v1beta1.
	Group, Version string
	// Port is the host port of its HTTPS listener (bound on 127.0.0.1 or all interfaces).
	Port int
	// Namespace holds the ExternalName Service "<service>" that routes to localhost.
	Namespace string
	// Service is that Service's name; empty means "host-api-<version>-<group>" shortened to a valid name.
	Service string
	// CABundle verifies the server's certificate; empty means insecureSkipTLSVerify.
	CABundle []byte
}

// RegisterHostAPIService makes the apiserver proxy Group/Version to a server on this host, waits until the
// APIService is Available, and removes the APIService at t.Cleanup.
//
// The route is the one documented in internal/devcluster/controlplane: the aggregator resolves an ExternalName
// Service to https://<externalName>:<APIService port>, and the Service's externalName is localhost (there is no
// kube-proxy, and EndpointSlices may not hold loopback addresses). The apiserver authenticates to the server
// with the front-proxy client certificate and passes the user in X-Remote-User/X-Remote-Group; the server reads
// the front-proxy CA from the kube-system/extension-apiserver-authentication ConfigMap, as any aggregated API
// server does.
func (c *Cluster) RegisterHostAPIService(t testing.TB, s HostAPIService) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if s.Group == "" || s.Version == "" || s.Port <= 0 || s.Namespace == "" {
		t.Fatalf("devcluster: RegisterHostAPIService: group, version, port and namespace are required, got %+v", s)
	}
	svcName := s.Service
	if svcName == "" {
		svcName = namespacePrefix("host-api-"+s.Version+"-"+s.Group) + "svc"
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svcName},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}
	if _, err := c.Client.CoreV1().Services(s.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("devcluster: ExternalName service %s/%s: %v", s.Namespace, svcName, err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatalf("devcluster: dynamic client: %v", err)
	}
	name := s.Version + "." + s.Group
	spec := map[string]any{
		"group":                s.Group,
		"version":              s.Version,
		"service":              map[string]any{"namespace": s.Namespace, "name": svcName, "port": int64(s.Port)},
		"groupPriorityMinimum": int64(100),
		"versionPriority":      int64(100),
	}
	if len(s.CABundle) > 0 {
		spec["caBundle"] = base64.StdEncoding.EncodeToString(s.CABundle)
	} else {
		spec["insecureSkipTLSVerify"] = true
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
	// The dynamic client spares this package a kube-aggregator clientset.
	apiServices := dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	if _, err := apiServices.Apply(ctx, name, obj, metav1.ApplyOptions{FieldManager: ApplyFieldManager, Force: true}); err != nil {
		t.Fatalf("devcluster: APIService %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := apiServices.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("devcluster: delete APIService %s: %v", name, err)
		}
	})
	var last string
	err = WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		got, err := apiServices.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		available, msg := apiServiceAvailable(got)
		last = msg
		return available, nil
	})
	if err != nil {
		t.Fatalf("devcluster: APIService %s not Available: %v (%s)", name, err, last)
	}
}

// apiServiceAvailable reads the Available condition of an APIService.
func apiServiceAvailable(obj *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, cnd := range conds {
		m, _ := cnd.(map[string]any)
		if m["type"] != "Available" {
			continue
		}
		return m["status"] == "True", fmt.Sprintf("%v: %v", m["reason"], m["message"])
	}
	return false, "no Available condition yet"
}
