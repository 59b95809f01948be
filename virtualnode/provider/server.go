package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/tidalscale/tidal/internal/pki"
)

// Kubelet API authentication modes.
const (
	// AuthWebhook authenticates client certificates signed by ClientCAFile and bearer tokens (TokenReview), and
	// authorizes with SubjectAccessReview on nodes/proxy, nodes/log, nodes/stats, like a kubelet in webhook mode.
	AuthWebhook = "webhook"
	// AuthNone allows anonymous access. Only for clusters whose API server presents no kubelet client
	// certificate (the dev cluster runs kube-apiserver without --kubelet-client-certificate) on a loopback port.
	AuthNone = "none"
)

// ServerOptions configure the kubelet API (the node's daemon endpoint).
type ServerOptions struct {
	// CertFile and KeyFile are the serving certificate; empty means a self-signed one for the node address
	// (the API server does not verify kubelet certificates unless started with --kubelet-certificate-authority).
	CertFile, KeyFile string
	// Auth is AuthWebhook (default) or AuthNone.
	Auth string
	// ClientCAFile verifies client certificates in webhook mode (the CA that signed the API server's
	// --kubelet-client-certificate).
	ClientCAFile string
	// StreamIdleTimeout and StreamCreationTimeout bound exec streams. Defaults 4h and 30s.
	StreamIdleTimeout, StreamCreationTimeout time.Duration
}

func (o ServerOptions) tlsConfig(nodeName, address string, now time.Time) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kubelet API serving certificate %q: %w", o.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
		return cfg, nil
	}
	cert, err := selfSigned(nodeName, address, now)
	if err != nil {
		return nil, fmt.Errorf("kubelet API self-signed certificate: %w", err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	return cfg, nil
}

func selfSigned(nodeName, address string, now time.Time) (tls.Certificate, error) {
	leaf, err := pki.SelfSigned(pki.Request{CommonName: nodeName, Hosts: []string{nodeName, address},
		Usage: x509.ExtKeyUsageServerAuth, Now: now, Lifetime: 365 * 24 * time.Hour})
	if err != nil {
		return tls.Certificate{}, err
	}
	return leaf.TLS(), nil
}

// handlerOptions is what newHandler needs.
type handlerOptions struct {
	server   ServerOptions
	provider *Provider
	pods     corev1listers.PodLister
	client   kubernetes.Interface
	nodeName string
	logger   vklog.Logger
}

// newHandler returns the kubelet API: containerLogs, exec, stats/summary, metrics/resource, pods, healthz,
// behind the configured authentication.
func newHandler(o handlerOptions) (http.Handler, error) {
	idle, create := o.server.StreamIdleTimeout, o.server.StreamCreationTimeout
	if idle <= 0 {
		idle = 4 * time.Hour
	}
	if create <= 0 {
		create = 30 * time.Second
	}
	p := o.provider
	pods := api.PodHandler(api.PodHandlerConfig{
		RunInContainer:    p.RunInContainer,
		AttachToContainer: p.AttachToContainer,
		PortForward:       p.PortForward,
		GetContainerLogs:  p.GetContainerLogs,
		GetPods:           p.GetPods,
		GetPodsFromKubernetes: func(context.Context) ([]*corev1.Pod, error) {
			return o.pods.List(labels.Everything())
		},
		GetStatsSummary:       p.GetStatsSummary,
		GetMetricsResource:    p.GetMetricsResource,
		StreamIdleTimeout:     idle,
		StreamCreationTimeout: create,
	}, false)

	var auth nodeutil.Auth
	switch o.server.Auth {
	case AuthNone:
		auth = nodeutil.NoAuth()
	case AuthWebhook, "":
		var opts []nodeutil.WebhookAuthOption
		if o.server.ClientCAFile != "" {
			ca, err := dynamiccertificates.NewDynamicCAContentFromFile("kubelet-client-ca", o.server.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("kubelet API client CA %q: %w", o.server.ClientCAFile, err)
			}
			opts = append(opts, func(c *nodeutil.WebhookAuthConfig) error {
				c.AuthnConfig.ClientCertificateCAContentProvider = ca
				return nil
			})
		}
		a, err := nodeutil.WebhookAuth(o.client, o.nodeName, opts...)
		if err != nil {
			return nil, fmt.Errorf("kubelet API webhook auth: %w", err)
		}
		auth = a
	default:
		return nil, fmt.Errorf("kubelet API auth: want %q or %q, got %q", AuthWebhook, AuthNone, o.server.Auth)
	}
	authed := nodeutil.WithAuth(auth, pods)

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("/", authed)
	logger := o.logger
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(vklog.WithLogger(r.Context(), logger)))
	}), nil
}
