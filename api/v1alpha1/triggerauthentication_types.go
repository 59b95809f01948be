package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TriggerAuthentication holds the credentials of triggers in its namespace.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=triggerauthentications,scope=Namespaced,shortName=ta;triggerauth,categories=tidal
// +kubebuilder:printcolumn:name="PodIdentity",type="string",JSONPath=".spec.podIdentity.provider"
// +kubebuilder:printcolumn:name="Secret",type="string",JSONPath=".spec.secretTargetRef[*].name"
// +kubebuilder:printcolumn:name="Env",type="string",JSONPath=".spec.env[*].name"
// +kubebuilder:printcolumn:name="VaultAddress",type="string",JSONPath=".spec.hashiCorpVault.address"
// +kubebuilder:printcolumn:name="ScaledObjects",type="string",JSONPath=".status.scaledobjects",priority=1
// +kubebuilder:printcolumn:name="ScaledJobs",type="string",JSONPath=".status.scaledjobs",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type TriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TriggerAuthenticationSpec `json:"spec"`
	// +optional
	Status TriggerAuthenticationStatus `json:"status,omitempty"`
}

// TriggerAuthenticationList is a list of TriggerAuthentications.
//
// +kubebuilder:object:root=true
type TriggerAuthenticationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TriggerAuthentication `json:"items"`
}

// ClusterTriggerAuthentication is a cluster-wide TriggerAuthentication. Secrets and ConfigMaps it names are read
// from the operator's namespace, as in KEDA.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=clustertriggerauthentications,scope=Cluster,shortName=cta;clustertriggerauth,categories=tidal
// +kubebuilder:printcolumn:name="PodIdentity",type="string",JSONPath=".spec.podIdentity.provider"
// +kubebuilder:printcolumn:name="Secret",type="string",JSONPath=".spec.secretTargetRef[*].name"
// +kubebuilder:printcolumn:name="Env",type="string",JSONPath=".spec.env[*].name"
// +kubebuilder:printcolumn:name="VaultAddress",type="string",JSONPath=".spec.hashiCorpVault.address"
// +kubebuilder:printcolumn:name="ScaledObjects",type="string",JSONPath=".status.scaledobjects",priority=1
// +kubebuilder:printcolumn:name="ScaledJobs",type="string",JSONPath=".status.scaledjobs",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type ClusterTriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TriggerAuthenticationSpec `json:"spec"`
	// +optional
	Status TriggerAuthenticationStatus `json:"status,omitempty"`
}

// ClusterTriggerAuthenticationList is a list of ClusterTriggerAuthentications.
//
// +kubebuilder:object:root=true
type ClusterTriggerAuthenticationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterTriggerAuthentication `json:"items"`
}

// TriggerAuthenticationSpec says where each trigger parameter (password, token, ...) comes from.
//
// Parameters come from secretTargetRef, configMapTargetRef, env, then the external secret stores
// (hashiCorpVault, azureKeyVault, gcpSecretManager, awsSecretManager, in that order): a later source wins for a
// parameter set twice. Store values are cached (--secret-store-ttl, autoscaler/triggers/stores). Fields listed in
// NotSupportedYet are refused by the webhook naming the field, and a trigger using one admitted earlier reports
// that error.
type TriggerAuthenticationSpec struct {
	// PodIdentity authenticates with a workload identity: Tidal exchanges a service-account token from the
	// TokenRequest API at the provider and the trigger uses the credentials issued. aws: AssumeRoleWithWebIdentity
	// (audience sts.amazonaws.com) of roleArn with Tidal's own token, or with identityOwner workload (and aws-eks)
	// of the eks.amazonaws.com/role-arn of the scale target's service account with that account's token; without
	// either, Tidal's own AWS credential chain. azure-workload: Tidal's token (audience api://AzureADTokenExchange) as
	// the client assertion of identityId in identityTenantId (defaults: Tidal's AZURE_CLIENT_ID, AZURE_TENANT_ID).
	// gcp: Google workload identity federation of Tidal's token at the pool provider named by Tidal's
	// TIDAL_GCP_WORKLOAD_IDENTITY_PROVIDER, impersonating TIDAL_GCP_SERVICE_ACCOUNT when set.
	// +optional
	PodIdentity *AuthPodIdentity `json:"podIdentity,omitempty"`

	// SecretTargetRef reads parameters from Secret keys.
	// +optional
	SecretTargetRef []AuthSecretTargetRef `json:"secretTargetRef,omitempty"`

	// Env reads parameters from the scale target's container environment.
	// +optional
	Env []AuthEnvironment `json:"env,omitempty"`

	// ConfigMapTargetRef reads parameters from ConfigMap keys.
	// +optional
	ConfigMapTargetRef []AuthConfigMapTargetRef `json:"configMapTargetRef,omitempty"`

	// FilePath (ClusterTriggerAuthentication only, as in KEDA) names a JSON file of parameter → value, relative to
	// the directory the operator and metrics adapter were given with --filepath-auth-root-path (a mounted Secret,
	// for instance). When set, the parameters come from that file alone.
	// +optional
	FilePath string `json:"filePath,omitempty"`

	// BoundServiceAccountToken puts a token of a service account (in the TriggerAuthentication's namespace, the
	// operator's for a ClusterTriggerAuthentication) into a parameter. Tidal requests it with the TokenRequest API
	// and requests a new one when 80% of its lifetime has passed.
	// +optional
	BoundServiceAccountToken []BoundServiceAccountToken `json:"boundServiceAccountToken,omitempty"`

	// OAuth2 (KEDA 2.20) gives the OAuth 2 client-credentials grant's settings as the parameters the scalers'
	// authModes oauth reads: tokenUrl → oauthTokenURI, clientId → clientID, clientSecret (from a Secret) →
	// clientSecret, scopes → scopes (comma separated), tokenUrlParams → endpointParams (URL-encoded). type is
	// clientCredentials, the only grant. The trigger still selects authModes: oauth.
	// +optional
	OAuth2 *OAuth2 `json:"oauth2,omitempty"`

	// HashiCorpVault reads parameters from HashiCorp Vault or OpenBao: authentication token (credential.token)
	// or kubernetes (login at auth/<mount>/login with role, as credential.serviceAccountName, whose token the
	// operator requests, or with the token file credential.serviceAccount); secret types secret (KV v1),
	// secretV2 (KV v2, <mount>/data/<name>), pki or generic; namespace is sent as X-Vault-Namespace.
	// +optional
	HashiCorpVault *HashiCorpVault `json:"hashiCorpVault,omitempty"`

	// AzureKeyVault reads parameters from Azure Key Vault (vaultUri, secrets with an optional version) as a service
	// principal: credentials clientId, tenantId and clientSecret from a Secret, or with podIdentity
	// azure-workload as Tidal's own service account (its token the federated assertion of identityId); cloud
	// selects a sovereign or Private cloud (keyVaultResourceURL, activeDirectoryEndpoint).
	// +optional
	AzureKeyVault *AzureKeyVault `json:"azureKeyVault,omitempty"`

	// GCPSecretManager reads parameters from Google Cloud Secret Manager (secrets by id, version default latest)
	// in the project of the service-account key in credentials.clientSecret (a Secret), or with podIdentity gcp
	// as Tidal's own service account (workload identity federation, as spec.podIdentity) in the project Tidal's
	// CLOUDSDK_CORE_PROJECT names.
	// +optional
	GCPSecretManager *GCPSecretManager `json:"gcpSecretManager,omitempty"`

	// AwsSecretManager reads parameters from AWS Secrets Manager (secrets by name or ARN, versionId/versionStage,
	// secretKey for a key of a JSON secret) in region, with the access keys in credentials (accessKey,
	// accessSecretKey, optional accessToken, each from a Secret), or with podIdentity aws as Tidal's own
	// identity: roleArn assumed with Tidal's service-account token, or without it Tidal's AWS credential chain
	// (identityOwner workload and aws-eks are refused at admission).
	// +optional
	AwsSecretManager *AwsSecretManager `json:"awsSecretManager,omitempty"`
}

// PodIdentityProvider names a workload identity mechanism (KEDA's values).
// +kubebuilder:validation:Enum=none;azure-workload;gcp;aws;aws-eks
type PodIdentityProvider string

const (
	PodIdentityProviderNone          PodIdentityProvider = "none"
	PodIdentityProviderAzureWorkload PodIdentityProvider = "azure-workload"
	PodIdentityProviderGCP           PodIdentityProvider = "gcp"
	PodIdentityProviderAWS           PodIdentityProvider = "aws"
	PodIdentityProviderAWSEKS        PodIdentityProvider = "aws-eks"
)

// AuthPodIdentity selects a workload identity.
type AuthPodIdentity struct {
	// Provider of the identity.
	Provider PodIdentityProvider `json:"provider"`
	// IdentityID is the client id of the identity (azure-workload).
	// +optional
	IdentityID *string `json:"identityId,omitempty"`
	// IdentityTenantID is the tenant of the identity (azure-workload).
	// +optional
	IdentityTenantID *string `json:"identityTenantId,omitempty"`
	// IdentityAuthorityHost is the authority host (azure-workload).
	// +optional
	IdentityAuthorityHost *string `json:"identityAuthorityHost,omitempty"`
	// RoleArn is the role to assume (aws).
	// +optional
	RoleArn *string `json:"roleArn,omitempty"`
	// IdentityOwner is whose identity is used: keda (the operator's, default) or workload (aws).
	// +optional
	// +kubebuilder:validation:Enum=keda;workload
	IdentityOwner *string `json:"identityOwner,omitempty"`
}

// AuthSecretTargetRef maps a trigger parameter to a Secret key.
type AuthSecretTargetRef struct {
	// Parameter is the trigger parameter, e.g. password.
	// +kubebuilder:validation:MinLength=1
	Parameter string `json:"parameter"`
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key in the Secret.
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// AuthEnvironment maps a trigger parameter to an environment variable of the scale target.
type AuthEnvironment struct {
	// Parameter is the trigger parameter.
	// +kubebuilder:validation:MinLength=1
	Parameter string `json:"parameter"`
	// Name of the environment variable.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// ContainerName is the container to read; default the target's envSourceContainerName or first container.
	// +optional
	ContainerName string `json:"containerName,omitempty"`
}

// AuthConfigMapTargetRef maps a trigger parameter to a ConfigMap key.
type AuthConfigMapTargetRef struct {
	// Parameter is the trigger parameter.
	// +kubebuilder:validation:MinLength=1
	Parameter string `json:"parameter"`
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key in the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// OAuth2GrantType is an OAuth 2 grant (KEDA's values).
type OAuth2GrantType string

// OAuth2GrantTypeClientCredentials is the client-credentials grant (RFC 6749 section 4.4).
const OAuth2GrantTypeClientCredentials OAuth2GrantType = "clientCredentials"

// OAuth2 is an OAuth 2 client of a token endpoint.
type OAuth2 struct {
	// Type is the grant: clientCredentials.
	// +kubebuilder:default=clientCredentials
	// +optional
	Type OAuth2GrantType `json:"type"`
	// ClientID is the client's id.
	ClientID string `json:"clientId"`
	// ClientSecret is the client's secret, from a Secret.
	// +optional
	ClientSecret OAuth2ClientSecret `json:"clientSecret,omitempty"`
	// TokenURL is the token endpoint, an absolute http(s) URL.
	TokenURL string `json:"tokenUrl"`
	// Scopes are requested with the token.
	// +optional
	Scopes []string `json:"scopes,omitempty"`
	// TokenURLParams are extra form parameters of the token request (e.g. audience).
	// +optional
	TokenURLParams map[string]string `json:"tokenUrlParams,omitempty"`
}

// OAuth2ClientSecret names the Secret key holding an OAuth 2 client secret.
type OAuth2ClientSecret struct {
	ValueFrom ValueFromSecret `json:"valueFrom"`
}

// BoundServiceAccountToken maps a trigger parameter to a token of a service account.
type BoundServiceAccountToken struct {
	// Parameter is the trigger parameter.
	// +kubebuilder:validation:MinLength=1
	Parameter string `json:"parameter"`
	// ServiceAccountName in the TriggerAuthentication's namespace.
	// +kubebuilder:validation:MinLength=1
	ServiceAccountName string `json:"serviceAccountName"`
}

// TriggerAuthenticationStatus lists the users of the authentication, as in KEDA.
type TriggerAuthenticationStatus struct {
	// ScaledObjects is a comma-separated list of ScaledObjects using this authentication.
	// +optional
	ScaledObjectNamesStr string `json:"scaledobjects,omitempty"`
	// ScaledJobs is a comma-separated list of ScaledJobs using this authentication.
	// +optional
	ScaledJobNamesStr string `json:"scaledjobs,omitempty"`
}
