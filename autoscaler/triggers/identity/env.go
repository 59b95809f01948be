package identity

import (
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
)

// Environment variables FromEnvironment reads. The chart sets POD_NAMESPACE and SERVICE_ACCOUNT_NAME (downward
// API); Azure's workload identity webhook sets the AZURE_ ones on a pod labelled azure.workload.identity/use;
// the TIDAL_ ones come from the chart's extraEnv.
const (
	EnvNamespace          = "POD_NAMESPACE"
	EnvServiceAccount     = "SERVICE_ACCOUNT_NAME"
	EnvAzureClientID      = "AZURE_CLIENT_ID"
	EnvAzureTenantID      = "AZURE_TENANT_ID"
	EnvAzureAuthorityHost = "AZURE_AUTHORITY_HOST"
	EnvAWSSTSEndpoint     = "TIDAL_AWS_STS_ENDPOINT"
	EnvGCPProvider        = "TIDAL_GCP_WORKLOAD_IDENTITY_PROVIDER"
	EnvGCPServiceAccount  = "TIDAL_GCP_SERVICE_ACCOUNT"
	EnvGCPProject         = "CLOUDSDK_CORE_PROJECT"
)

// FromEnvironment is the Provider of a deployable whose own namespace is namespace (its --namespace; the
// POD_NAMESPACE variable when empty), configured from getenv (os.Getenv in a deployable). Tokens are cached for
// the deployable's lifetime: build one Provider per process.
func FromEnvironment(kube kubernetes.Interface, logger *zap.Logger, namespace string, getenv func(string) string) *Provider {
	if namespace == "" {
		namespace = getenv(EnvNamespace)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Provider{
		Tokens:             &Tokens{Kube: kube, Logger: logger.Named("identity")},
		SelfNamespace:      namespace,
		SelfServiceAccount: getenv(EnvServiceAccount),
		AWSSTSEndpoint:     getenv(EnvAWSSTSEndpoint),
		AzureClientID:      getenv(EnvAzureClientID),
		AzureTenantID:      getenv(EnvAzureTenantID),
		AzureAuthorityHost: getenv(EnvAzureAuthorityHost),
		GCP: GCPFederation{Audience: getenv(EnvGCPProvider), ServiceAccount: getenv(EnvGCPServiceAccount),
			Project: getenv(EnvGCPProject)},
	}
}
