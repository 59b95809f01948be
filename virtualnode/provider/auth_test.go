package provider_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/sim"
	"github.com/tidalscale/tidal/virtualnode/provider"
)

// TestKubeletAPIWebhookAuth: in webhook mode the kubelet API refuses anonymous callers and admits a client
// certificate signed by the client CA whose user may proxy to nodes (the dev cluster's admin, system:masters).
func TestKubeletAPIWebhookAuth(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ctx := testContext(t)
	tls0 := c.Config.TLSClientConfig
	if len(tls0.CAData) == 0 || len(tls0.CertData) == 0 {
		t.Fatalf("dev cluster kubeconfig has no inline CA and client certificate")
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, tls0.CAData, 0o600); err != nil {
		t.Fatal(err)
	}
	vn := startNode(t, c, "sim", nil, provider.VirtualNodeOptions{
		Server: provider.ServerOptions{Auth: provider.AuthWebhook, ClientCAFile: caFile},
		NewBackend: func(d provider.BackendDeps) (backend.Backend, error) {
			return sim.New(sim.Options{Changed: d.Changed})
		},
	})
	admin, err := tls.X509KeyPair(tls0.CertData, tls0.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		certs  []tls.Certificate
		status int
	}{
		{name: "anonymous is refused", status: http.StatusUnauthorized},
		{name: "cluster admin certificate is allowed", certs: []tls.Certificate{admin}, status: http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				InsecureSkipVerify: true, Certificates: tc.certs}}}
			req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/stats/summary", vn.Node.Port()), nil)
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("GET /stats/summary: %s, want %d", resp.Status, tc.status)
			}
		})
	}
}
