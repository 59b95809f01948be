package provider

import (
	"context"
	"crypto/tls"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidalscale/tidal/internal/devcluster"
	"github.com/tidalscale/tidal/internal/testenv"
)

// TestNodeIdentityRenewalReachesTheAPIServer: once the certificate is renewed, the connections made with the old
// one are closed, so the next request presents the new one (a kept-alive connection would otherwise go on
// authenticating with the old certificate until it expires).
func TestNodeIdentityRenewalReachesTheAPIServer(t *testing.T) {
	t.Parallel()
	c := devcluster.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := StartNodeIdentity(ctx, NodeIdentityOptions{Config: c.Config, NodeName: "vk-renewal-" + c.Namespace(t), Lifetime: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Stop()
	cfg, err := id.Config()
	if err != nil {
		t.Fatal(err)
	}
	// Record the serial of the certificate each TLS handshake presents.
	var (
		mu        sync.Mutex
		presented []*big.Int
	)
	tlsCfg := cfg.Transport.(*http.Transport).TLSClientConfig
	get := tlsCfg.GetClientCertificate
	tlsCfg.GetClientCertificate = func(i *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		cert, err := get(i)
		if err == nil && cert.Leaf != nil {
			mu.Lock()
			presented = append(presented, cert.Leaf.SerialNumber)
			mu.Unlock()
		}
		return cert, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	whoami := func() error {
		_, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err
	}
	if err := whoami(); err != nil {
		t.Fatal(err)
	}
	first := id.mgr.Current().Leaf.SerialNumber
	if ok, err := id.mgr.(interface{ RotateCerts() (bool, error) }).RotateCerts(); !ok || err != nil {
		t.Fatalf("renew: %v %v", ok, err)
	}
	renewed := id.mgr.Current().Leaf.SerialNumber
	if renewed.Cmp(first) == 0 {
		t.Fatal("renewal kept the certificate")
	}
	testenv.WaitFor(ctx, t, "a request presenting the renewed certificate", func() (bool, error) {
		if err := whoami(); err != nil {
			return false, err
		}
		mu.Lock()
		defer mu.Unlock()
		return presented[len(presented)-1].Cmp(renewed) == 0, nil
	})
}
