package devcluster

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	c.RegisterHostAPIService(t, HostAPIService{Group: group, Version: "v1", Port: port, Namespace: ns})

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
