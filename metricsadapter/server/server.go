// Package server assembles the metrics adapter's aggregated API server: one generic API server (TLS, delegated
// authentication and authorization through the cluster, /healthz, /readyz, /livez) serving
// external.metrics.k8s.io through sigs.k8s.io/custom-metrics-apiserver and, optionally, metrics.k8s.io for
// simulated pods (metricsadapter/podmetrics), which that library does not serve.
package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"

	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"
	generatedcore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
	generatedexternalmetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/externalmetrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/tidalscale/tidal/metricsadapter/podmetrics"
)

// Name is the API server's name in logs and metrics.
const Name = "tidal-metrics-adapter"

// ReadyCheck is an extra /readyz check.
type ReadyCheck struct {
	Name  string
	Check func(*http.Request) error
}

// Options configures the API server. Serving, ClientConfig, Informers and External are required.
type Options struct {
	// Serving holds the secure serving, delegated authentication/authorization, audit and feature options (the
	// library's flags: --secure-port, --tls-cert-file, --authentication-kubeconfig, --authorization-kubeconfig,
	// --requestheader-*, ...).
	Serving *cmoptions.CustomMetricsAdapterServerOptions
	// ClientConfig reaches the cluster (informers; the delegated auth clients use their own kubeconfig flags,
	// or the in-cluster config).
	ClientConfig *rest.Config
	// Informers is the shared factory the server starts (PostStartHook) and podmetrics reads.
	Informers informers.SharedInformerFactory
	// External answers external.metrics.k8s.io.
	External provider.ExternalMetricsProvider
	// PodMetrics, when set, serves metrics.k8s.io for simulated pods; its Pods and Nodes listers are filled from
	// Informers when nil, and its Scrape.Config from ClientConfig.
	PodMetrics *podmetrics.Options
	// ReadyChecks are added to /readyz.
	ReadyChecks []ReadyCheck
}

// openAPIConfigs describes both groups: the library's generated definitions for external.metrics.k8s.io and
// hand-written ones for metrics.k8s.io (podmetrics.OpenAPIDefinitions).
func openAPIConfigs() (*openapicommon.Config, *openapicommon.OpenAPIV3Config) {
	defs := func(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
		out := map[string]openapicommon.OpenAPIDefinition{}
		for _, get := range []openapicommon.GetOpenAPIDefinitions{
			generatedcore.GetOpenAPIDefinitions, generatedexternalmetrics.GetOpenAPIDefinitions, podmetrics.OpenAPIDefinitions,
		} {
			maps.Copy(out, get(ref))
		}
		return out
	}
	namer := openapinamer.NewDefinitionNamer(cmapiserver.Scheme, podmetrics.NewScheme())
	v2 := genericapiserver.DefaultOpenAPIConfig(defs, namer)
	v2.Info.Title, v2.Info.Version = Name, "v1beta1"
	v3 := genericapiserver.DefaultOpenAPIV3Config(defs, namer)
	v3.Info.Title, v3.Info.Version = Name, "v1beta1"
	return v2, v3
}

// Server is a built, not yet running, aggregated API server.
type Server struct {
	generic *genericapiserver.GenericAPIServer
}

// New builds the server and installs the API groups.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Serving == nil:
		return nil, errors.New("metrics adapter server: options: serving options are required")
	case opts.ClientConfig == nil:
		return nil, errors.New("metrics adapter server: options: client config is required")
	case opts.Informers == nil:
		return nil, errors.New("metrics adapter server: options: informers are required")
	case opts.External == nil:
		return nil, errors.New("metrics adapter server: options: external metrics provider is required")
	}
	if errs := opts.Serving.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("metrics adapter server: options: %w", errors.Join(errs...))
	}
	opts.Serving.OpenAPIConfig, opts.Serving.OpenAPIV3Config = openAPIConfigs()

	cfg := genericapiserver.NewRecommendedConfig(cmapiserver.Codecs)
	cfg.ClientConfig = opts.ClientConfig
	cfg.SharedInformerFactory = opts.Informers
	if err := opts.Serving.ApplyTo(cfg); err != nil {
		return nil, fmt.Errorf("metrics adapter server: %w", err)
	}
	checks := make([]healthz.HealthChecker, 0, len(opts.ReadyChecks))
	for _, rc := range opts.ReadyChecks {
		checks = append(checks, healthz.NamedCheck(rc.Name, rc.Check))
	}
	cfg.ReadyzChecks = append(cfg.ReadyzChecks, checks...)

	completed := (&cmapiserver.Config{GenericConfig: &cfg.Config}).Complete(opts.Informers)
	srv, err := completed.New(Name, nil, opts.External)
	if err != nil {
		return nil, fmt.Errorf("metrics adapter server: %w", err)
	}
	if opts.PodMetrics != nil {
		pm := *opts.PodMetrics
		if pm.Pods == nil {
			pm.Pods = opts.Informers.Core().V1().Pods().Lister()
		}
		if pm.Nodes == nil {
			pm.Nodes = opts.Informers.Core().V1().Nodes().Lister()
		}
		if pm.Scrape != nil && pm.Scrape.Config == nil {
			sc := *pm.Scrape
			sc.Config = opts.ClientConfig // the adapter's own credentials, as metrics-server presents its own
			pm.Scrape = &sc
		}
		if err := podmetrics.Install(srv.GenericAPIServer, pm); err != nil {
			return nil, fmt.Errorf("metrics adapter server: %w", err)
		}
	}
	return &Server{generic: srv.GenericAPIServer}, nil
}

// Run serves until ctx is done and the server has shut down.
func (s *Server) Run(ctx context.Context) error {
	return s.generic.PrepareRun().RunWithContext(ctx)
}
