package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/autoscaler/operator/webhook"
)

// WebhookOptions turns on the validating webhook.
type WebhookOptions struct {
	// Addr is the TLS listen address (":9443"; "127.0.0.1:0" picks a port).
	Addr string
	// Hosts are the names and IPs in the serving certificate (the Service DNS name in a cluster).
	Hosts []string
	// Service, when set, is how the API server reaches the webhook (namespace/name/port of the Service). When
	// nil, the configuration uses a URL to Hosts[0] and the listen port (the dev cluster's way).
	Service *admissionregistrationv1.ServiceReference
	// NamespaceSelector limits the namespaces whose objects are validated (nil: all).
	NamespaceSelector *metav1.LabelSelector
}

// serveWebhook serves the webhook with a certificate signed by the shared CA and keeps the
// ValidatingWebhookConfiguration pointing at it. Every replica serves; the webhook does not need the lease.
func (o *Operator) serveWebhook(ctx context.Context, l net.Listener) error {
	wo := o.opts.Webhook
	ca, err := webhook.LoadOrCreateCA(ctx, o.kube, o.opts.Namespace)
	if err != nil {
		return err
	}
	rot, err := webhook.NewRotator(ca, wo.Hosts)
	if err != nil {
		return err
	}
	client := admissionregistrationv1.WebhookClientConfig{Service: wo.Service}
	if wo.Service == nil {
		_, port, _ := net.SplitHostPort(l.Addr().String())
		url := fmt.Sprintf("https://%s%s", net.JoinHostPort(wo.Hosts[0], port), webhook.Path)
		client.URL = &url
	}
	if err := webhook.EnsureConfiguration(ctx, o.kube, webhook.Configuration(client, ca.CertPEM, wo.NamespaceSelector)); err != nil {
		return err
	}
	v := &webhook.Validator{Kube: o.kube, Tidal: o.tidal, Registry: o.opts.Registry, Logger: o.log.Named("webhook"),
		Resolver: o.resolver()}
	mux := http.NewServeMux()
	mux.Handle(webhook.Path, v)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: rot.GetCertificate}}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	o.log.Info("serving validating webhook", zap.String("addr", l.Addr().String()))
	if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
