package v1alpha1

// External secret stores a TriggerAuthentication reads parameters from, with KEDA's schema (JSON names and
// shapes) so KEDA manifests decode unchanged. Which of them Tidal acts on is listed in NotSupportedYet; the
// others are refused at admission naming the field.

// HashiCorpVault reads parameters from HashiCorp Vault or OpenBao.
type HashiCorpVault struct {
	// Address of the server, e.g. https://vault.example.com:8200.
	// +kubebuilder:validation:MinLength=1
	Address string `json:"address"`
	// Authentication is the login method: token or kubernetes.
	Authentication VaultAuthentication `json:"authentication"`
	// Secrets maps Vault paths and keys to trigger parameters.
	Secrets []VaultSecret `json:"secrets"`
	// Namespace is the Vault Enterprise / OpenBao namespace (X-Vault-Namespace); empty is the root namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Credential holds what the authentication method needs.
	// +optional
	Credential *VaultCredential `json:"credential,omitempty"`
	// Role is the role of the kubernetes authentication method.
	// +optional
	Role string `json:"role,omitempty"`
	// Mount is the path the kubernetes authentication method is mounted at (auth/<mount>/login).
	// +optional
	Mount string `json:"mount,omitempty"`
}

// VaultCredential is the credential of a Vault authentication method.
type VaultCredential struct {
	// Token is the Vault token (authentication token).
	// +optional
	Token string `json:"token,omitempty"`
	// ServiceAccount is the path of a service-account token file the operator reads (authentication kubernetes).
	// +optional
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// ServiceAccountName is a service account, in the authentication's namespace, whose token is requested with
	// the TokenRequest API for authentication kubernetes.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// SecretID is the AppRole secret ID, read from a Secret in the authentication's namespace (authentication
	// approle; the role ID is the section's role).
	// +optional
	SecretID *VaultSecretIDSource `json:"secretId,omitempty"`
}

// VaultSecretIDSource reads an AppRole secret ID from a Secret.
type VaultSecretIDSource struct {
	ValueFrom ValueFromSecret `json:"valueFrom"`
}

// VaultAuthentication is a Vault login method.
// +kubebuilder:validation:Enum=token;kubernetes;approle
type VaultAuthentication string

// Vault login methods: KEDA's token and kubernetes, and AppRole (role ID in role, secret ID from a Secret).
const (
	VaultAuthenticationToken      VaultAuthentication = "token"
	VaultAuthenticationKubernetes VaultAuthentication = "kubernetes"
	VaultAuthenticationAppRole    VaultAuthentication = "approle"
)

// VaultSecretType is how a Vault path is read.
type VaultSecretType string

// Vault secret types (KEDA's).
const (
	// VaultSecretTypeGeneric reads the path and looks the key up in data.data (KV v2 style) or, failing that, data.
	VaultSecretTypeGeneric VaultSecretType = ""
	// VaultSecretTypeSecret reads a KV version 1 path: the key is in data.
	VaultSecretTypeSecret VaultSecretType = "secret"
	// VaultSecretTypeSecretV2 reads a KV version 2 path (<mount>/data/<name>): the key is in data.data.
	VaultSecretTypeSecretV2 VaultSecretType = "secretV2"
	// VaultSecretTypePki issues a certificate (write <mount>/issue/<role> with pkiData): the key is a field of
	// the response, e.g. certificate or private_key.
	VaultSecretTypePki VaultSecretType = "pki"
)

// VaultPkiData are the parameters of a PKI certificate request.
type VaultPkiData struct {
	// +optional
	CommonName string `json:"commonName,omitempty"`
	// +optional
	AltNames string `json:"altNames,omitempty"`
	// +optional
	IPSans string `json:"ipSans,omitempty"`
	// +optional
	URISans string `json:"uriSans,omitempty"`
	// +optional
	OtherSans string `json:"otherSans,omitempty"`
	// +optional
	TTL string `json:"ttl,omitempty"`
	// +optional
	Format string `json:"format,omitempty"`
}

// VaultSecret maps one key of a Vault path to a trigger parameter.
type VaultSecret struct {
	// Parameter is the trigger parameter.
	// +kubebuilder:validation:MinLength=1
	Parameter string `json:"parameter"`
	// Path in Vault, e.g. secret/data/redis for KV version 2.
	// +kubebuilder:validation:MinLength=1
	Path string `json:"path"`
	// Key in the secret's data.
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
	// Type says how the path is read: "" (generic), secret (KV v1), secretV2 (KV v2) or pki.
	// +optional
	Type VaultSecretType `json:"type,omitempty"`
	// PkiData is the certificate request of type pki.
	// +optional
	PkiData VaultPkiData `json:"pkiData,omitempty"`
}

// AzureKeyVault reads parameters from Azure Key Vault.
type AzureKeyVault struct {
	// VaultURI is the vault's URI, e.g. https://myvault.vault.azure.net.
	VaultURI string `json:"vaultUri"`
	// Secrets maps Key Vault secrets to trigger parameters.
	Secrets []AzureKeyVaultSecret `json:"secrets"`
	// Credentials is a service principal.
	// +optional
	Credentials *AzureKeyVaultCredentials `json:"credentials,omitempty"`
	// PodIdentity is the workload identity to read with.
	// +optional
	PodIdentity *AuthPodIdentity `json:"podIdentity,omitempty"`
	// Cloud selects a sovereign or private cloud.
	// +optional
	Cloud *AzureKeyVaultCloudInfo `json:"cloud,omitempty"`
}

// AzureKeyVaultCredentials is a service principal whose secret is in a Kubernetes Secret.
type AzureKeyVaultCredentials struct {
	ClientID     string                     `json:"clientId"`
	TenantID     string                     `json:"tenantId"`
	ClientSecret *AzureKeyVaultClientSecret `json:"clientSecret"`
}

// AzureKeyVaultClientSecret is where the service principal's secret is.
type AzureKeyVaultClientSecret struct {
	ValueFrom ValueFromSecret `json:"valueFrom"`
}

// ValueFromSecret reads a value from a Secret in the authentication's namespace.
type ValueFromSecret struct {
	SecretKeyRef SecretKeyRef `json:"secretKeyRef"`
}

// SecretKeyRef names a key of a Secret.
type SecretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// AzureKeyVaultSecret maps a Key Vault secret to a trigger parameter.
type AzureKeyVaultSecret struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	// +optional
	Version string `json:"version,omitempty"`
}

// AzureKeyVaultCloudInfo selects the Azure cloud.
type AzureKeyVaultCloudInfo struct {
	Type string `json:"type"`
	// +optional
	KeyVaultResourceURL string `json:"keyVaultResourceURL,omitempty"`
	// +optional
	ActiveDirectoryEndpoint string `json:"activeDirectoryEndpoint,omitempty"`
}

// GCPSecretManager reads parameters from Google Cloud Secret Manager.
type GCPSecretManager struct {
	Secrets []GCPSecretManagerSecret `json:"secrets"`
	// +optional
	Credentials *GCPCredentials `json:"credentials,omitempty"`
	// +optional
	PodIdentity *AuthPodIdentity `json:"podIdentity,omitempty"`
}

// GCPCredentials is a service account key in a Kubernetes Secret.
type GCPCredentials struct {
	ClientSecret GCPSecretmanagerClientSecret `json:"clientSecret"`
}

// GCPSecretmanagerClientSecret is where the service account key is.
type GCPSecretmanagerClientSecret struct {
	ValueFrom ValueFromSecret `json:"valueFrom"`
}

// GCPSecretManagerSecret maps a Secret Manager secret to a trigger parameter.
type GCPSecretManagerSecret struct {
	Parameter string `json:"parameter"`
	ID        string `json:"id"`
	// +optional
	Version string `json:"version,omitempty"`
}

// AwsSecretManager reads parameters from AWS Secrets Manager.
type AwsSecretManager struct {
	Secrets []AwsSecretManagerSecret `json:"secrets"`
	// +optional
	Credentials *AwsSecretManagerCredentials `json:"credentials,omitempty"`
	// +optional
	PodIdentity *AuthPodIdentity `json:"podIdentity,omitempty"`
	// +optional
	Region string `json:"region,omitempty"`
}

// AwsSecretManagerCredentials are access keys in Kubernetes Secrets.
type AwsSecretManagerCredentials struct {
	AccessKey       *AwsSecretManagerValue `json:"accessKey"`
	AccessSecretKey *AwsSecretManagerValue `json:"accessSecretKey"`
	// +optional
	AccessToken *AwsSecretManagerValue `json:"accessToken,omitempty"`
}

// AwsSecretManagerValue is where one credential value is.
type AwsSecretManagerValue struct {
	ValueFrom ValueFromSecret `json:"valueFrom"`
}

// AwsSecretManagerSecret maps a Secrets Manager secret to a trigger parameter.
type AwsSecretManagerSecret struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	// +optional
	VersionID string `json:"versionId,omitempty"`
	// +optional
	VersionStage string `json:"versionStage,omitempty"`
	// SecretKey reads that key of a secret whose value is a JSON object (KEDA 2.18); empty takes the whole value.
	// +optional
	SecretKey string `json:"secretKey,omitempty"`
}
