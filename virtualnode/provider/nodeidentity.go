package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	certificatesv1 "k8s.io/api/certificates/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/connrotation"
)

// Node identities: NodeIdentityCSR makes the virtual node read the Secrets and ConfigMaps of its pods as
// system:node:<name> (group system:nodes), so the API server's Node authorizer allows exactly the objects referenced
// by pods bound to it; NodeIdentityServiceAccount reads them with the service account, which then needs get on
// all Secrets and ConfigMaps (clusters without --authorization-mode=Node).
const (
	NodeIdentityCSR            = "csr"
	NodeIdentityServiceAccount = "serviceaccount"
)

// NodeIdentityOptions configure StartNodeIdentity.
type NodeIdentityOptions struct {
	// Config reaches the API server as the requester of the certificate (the service account). It must be
	// allowed to create certificatesigningrequests and certificatesigningrequests/nodeclient, which is what makes
	// kube-controller-manager's csrapproving controller approve the request, and to get/watch its own requests.
	Config   *rest.Config
	NodeName string
	// Lifetime requested for the certificate (spec.expirationSeconds, at least 10m); 0: the signer's default.
	// The certificate is renewed at 70-90% of its lifetime, and connections made with the old one are closed.
	Lifetime time.Duration
	// Wait bounds how long StartNodeIdentity waits for the first certificate (default 2m).
	Wait   time.Duration
	Logger *zap.Logger
}

// NodeIdentity is a client certificate for system:node:<name> obtained through a CertificateSigningRequest with
// signer kubernetes.io/kube-apiserver-client-kubelet (a kubelet's TLS bootstrap) and renewed before it expires.
// The key never leaves memory. Use StartNodeIdentity; Config gives a rest.Config that authenticates with it.
type NodeIdentity struct {
	mgr    certificate.Manager
	dialer *connrotation.Dialer
	base   *rest.Config
	cancel context.CancelFunc
}

// StartNodeIdentity requests the node's client certificate and waits until it is issued; renewal runs until ctx
// is done or Stop is called.
func StartNodeIdentity(ctx context.Context, o NodeIdentityOptions) (*NodeIdentity, error) {
	if o.Config == nil || o.NodeName == "" {
		return nil, errors.New("node identity: Config and NodeName must be set")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Wait <= 0 {
		o.Wait = 2 * time.Minute
	}
	requester, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return nil, fmt.Errorf("node identity: client: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cfg := &certificate.Config{
		ClientsetFn: func(*tls.Certificate) (kubernetes.Interface, error) { return requester, nil },
		Template: &x509.CertificateRequest{Subject: pkix.Name{
			CommonName: "system:node:" + o.NodeName, Organization: []string{"system:nodes"}}},
		SignerName:       certificatesv1.KubeAPIServerClientKubeletSignerName,
		Usages:           []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		CertificateStore: &memoryStore{},
		Name:             "tidal-virtual-node",
		Ctx:              &ctx,
	}
	if o.Lifetime > 0 {
		cfg.RequestedCertificateLifetime = &o.Lifetime
	}
	mgr, err := certificate.NewManager(cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("node identity: %w", err)
	}
	mgr.Start()
	id := &NodeIdentity{mgr: mgr, dialer: connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext),
		base: rest.AnonymousClientConfig(o.Config), cancel: cancel}
	wctx, wcancel := context.WithTimeout(ctx, o.Wait)
	defer wcancel()
	if err := wait.PollUntilContextCancel(wctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		return mgr.Current() != nil, nil
	}); err != nil {
		id.Stop()
		return nil, fmt.Errorf("node identity %q: no certificate issued (is the CSR approved and signed? the requester "+
			"needs create on certificatesigningrequests/nodeclient): %w", o.NodeName, err)
	}
	o.Logger.Info("node identity certificate issued", zap.String("user", "system:node:"+o.NodeName),
		zap.Time("notAfter", mgr.Current().Leaf.NotAfter))
	go id.closeOnRotation(ctx, o.Logger)
	return id, nil
}

// closeOnRotation closes the connections made with a certificate once it was replaced: the API server
// authenticates a connection by the certificate of its handshake, which would otherwise be used until it expires.
func (id *NodeIdentity) closeOnRotation(ctx context.Context, log *zap.Logger) {
	last := id.mgr.Current()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cur := id.mgr.Current(); cur != nil && cur != last {
			last = cur
			log.Info("node identity certificate renewed", zap.Time("notAfter", cur.Leaf.NotAfter))
			id.dialer.CloseAll()
		}
	}
}

// Config returns a rest.Config for the API server of the requester that authenticates with the node's current
// certificate.
func (id *NodeIdentity) Config() (*rest.Config, error) {
	cfg := rest.CopyConfig(id.base)
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("node identity: tls: %w", err)
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if c := id.mgr.Current(); c != nil {
			return c, nil
		}
		// No certificate (expired and not renewed): an anonymous handshake, which the API server refuses.
		return &tls.Certificate{}, nil
	}
	cfg.Transport = utilnet.SetTransportDefaults(&http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second, TLSClientConfig: tlsCfg,
		MaxIdleConnsPerHost: 25, DialContext: id.dialer.DialContext,
	})
	// The transport enforces TLS; rest refuses a Transport together with TLS options.
	cfg.TLSClientConfig = rest.TLSClientConfig{}
	return cfg, nil
}

// Stop stops renewal and closes the connections made with the certificate.
func (id *NodeIdentity) Stop() {
	id.cancel()
	id.mgr.Stop()
	id.dialer.CloseAll()
}

// memoryStore keeps the certificate and key in memory only: a restarted node requests a new one.
type memoryStore struct {
	mu   sync.Mutex
	cert *tls.Certificate
}

func (s *memoryStore) Current() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil {
		e := certificate.NoCertKeyError("no node certificate yet")
		return nil, &e
	}
	return s.cert, nil
}

func (s *memoryStore) Update(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("node certificate: %w", err)
		}
	}
	s.mu.Lock()
	s.cert = &c
	s.mu.Unlock()
	return &c, nil
}
