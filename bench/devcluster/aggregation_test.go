package devcluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// TestAggregatedAPIOnHostIsReachable registers an APIService whose backend is an HTTPS server in this test
// process, reached through an ExternalName Service pointing at localhost — the route the metrics adapter uses —
// and checks that the apiserver proxies to it with front-proxy (requestheader) credentials.
func TestAggregatedAPIOnHostIsReachable(t *testing.T) {
	t.Parallel()
	c := Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)

	group := "agg-" + ns[len(ns)-5:] + ".test.tidal.dev"
	backend := &fakeAggregatedAPI{group: group}
	srv := httptest.NewUnstartedServer(backend)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, portStr, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "adapter"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}
	if _, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ExternalName service: %v", err)
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": "v1." + group},
		"spec": map[string]any{
			"group":                 group,
			"version":               "v1",
			"service":               map[string]any{"namespace": ns, "name": "adapter", "port": int64(port)},
			"insecureSkipTLSVerify": true,
			"groupPriorityMinimum":  int64(1000),
			"versionPriority":       int64(15),
		},
	}}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	apiServices := dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	if _, err := apiServices.Create(ctx, apiService, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create APIService: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = apiServices.Delete(ctx, "v1."+group, metav1.DeleteOptions{})
	})

	err = WaitFor(ctx, 250*time.Millisecond, func() (bool, error) {
		got, err := apiServices.Get(ctx, "v1."+group, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, cnd := range conds {
			m, _ := cnd.(map[string]any)
			if m["type"] == "Available" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("APIService Available: %v", err)
	}

	var list metav1.APIResourceList
	body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/apis", group, "v1").DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET /apis/%s/v1 through the apiserver: %v", group, err)
	}
	if err := json.Unmarshal(body, &list); err != nil || list.GroupVersion != group+"/v1" {
		t.Fatalf("discovery through aggregator = %s (%v), want groupVersion %s/v1", body, err, group)
	}

	seen := backend.lastRequest()
	if seen.clientCN != "front-proxy-client" {
		t.Errorf("apiserver presented client certificate %q, want the front-proxy client", seen.clientCN)
	}
	if seen.remoteUser == "" {
		t.Errorf("proxied request has no X-Remote-User header")
	}
}

// fakeAggregatedAPI is a minimal aggregated API server: discovery for one group version.
type fakeAggregatedAPI struct {
	group string
	mu    sync.Mutex
	last  seenRequest
}

type seenRequest struct {
	clientCN   string
	remoteUser string
}

func (f *fakeAggregatedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/apis/"+f.group+"/v1" {
		http.NotFound(w, r)
		return
	}
	seen := seenRequest{remoteUser: r.Header.Get("X-Remote-User")}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		seen.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	if seen.remoteUser != "" {
		f.mu.Lock()
		f.last = seen
		f.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: f.group + "/v1",
		APIResources: []metav1.APIResource{{Name: "widgets", Namespaced: true, Kind: "Widget", Verbs: []string{"get", "list"}}},
	})
}

func (f *fakeAggregatedAPI) lastRequest() seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}
