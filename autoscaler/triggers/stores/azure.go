package stores

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tidalscale/tidal/scalers/azure"
)

// AzureClientConfig says which Key Vault to read and as whom: a service principal's client secret read from
// the authentication's Secret (KEDA's credentials.clientId, tenantId and clientSecret), in a named cloud or a
// private one.
type AzureClientConfig struct {
	// VaultURI is the vault, e.g. https://my-vault.vault.azure.net.
	VaultURI string
	// TenantID, ClientID and ClientSecret are the service principal.
	TenantID, ClientID, ClientSecret string
	// CloudType is KEDA's cloud.type: AzurePublicCloud (also when empty), AzureUSGovernmentCloud,
	// AzureChinaCloud or Private.
	CloudType string
	// KeyVaultResourceURL and ActiveDirectoryEndpoint are the private cloud's Key Vault resource (the vault's
	// host must be under it) and its Entra ID authority host.
	KeyVaultResourceURL, ActiveDirectoryEndpoint string
	// HTTPClient carries the requests to the vault and to Entra ID; nil is the SDK's default.
	HTTPClient *http.Client
	// Credential, when set, replaces the service principal: a podIdentity azure-workload's credential.
	Credential azcore.TokenCredential
}

// AzureSecret names one secret (KEDA's azureKeyVault.secrets[] entry).
type AzureSecret struct {
	Name string
	// Version empty is the secret's current version.
	Version string
}

// AzureReader reads secrets from Azure Key Vault with the real SDK client, authenticating through the vault's
// bearer challenge with a client-secret credential.
type AzureReader struct {
	client *azsecrets.Client
	secret string
}

// azureClouds are KEDA's named clouds, keyed by upper-cased name.
var azureClouds = map[string]cloud.Configuration{
	"AZUREPUBLICCLOUD":       cloud.AzurePublic,
	"AZUREUSGOVERNMENTCLOUD": cloud.AzureGovernment,
	"AZURECHINACLOUD":        cloud.AzureChina,
}

// NewAzureReader builds the credential and the vault client. It does not connect. Errors name the field and
// never carry the client secret.
func NewAzureReader(c AzureClientConfig) (*AzureReader, error) {
	vault, err := url.Parse(c.VaultURI)
	if err != nil || vault.Scheme != "https" || vault.Host == "" {
		return nil, fmt.Errorf("vaultUri: want an https URL, got %q", c.VaultURI)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"credentials.clientId", c.ClientID}, {"credentials.tenantId", c.TenantID}, {"credentials.clientSecret", c.ClientSecret},
	} {
		if f.v == "" && c.Credential == nil {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: required (or podIdentity)", strings.Join(missing, ", "))
	}
	opts := azure.ClientOptions(c.HTTPClient)
	if c.HTTPClient == nil {
		opts.Transport = nil
	}
	credOpts := &azidentity.ClientSecretCredentialOptions{}
	switch {
	case c.CloudType == "":
		opts.Cloud = cloud.AzurePublic
	case strings.EqualFold(c.CloudType, azure.PrivateCloud):
		if c.KeyVaultResourceURL == "" || c.ActiveDirectoryEndpoint == "" {
			return nil, errors.New("cloud: keyVaultResourceURL and activeDirectoryEndpoint are required when type is Private")
		}
		res, err := url.Parse(c.KeyVaultResourceURL)
		if err != nil || res.Host == "" {
			return nil, fmt.Errorf("cloud.keyVaultResourceURL: want a URL, got %q", c.KeyVaultResourceURL)
		}
		if !strings.HasSuffix(vault.Hostname(), "."+res.Hostname()) {
			return nil, fmt.Errorf("vaultUri: host %q is not under cloud.keyVaultResourceURL %q", vault.Host, c.KeyVaultResourceURL)
		}
		ad, err := url.Parse(c.ActiveDirectoryEndpoint)
		if err != nil || ad.Scheme != "https" || ad.Host == "" {
			return nil, fmt.Errorf("cloud.activeDirectoryEndpoint: want an https URL, got %q", c.ActiveDirectoryEndpoint)
		}
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: c.ActiveDirectoryEndpoint, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}}
		// A private cloud (Azure Stack) has no instance discovery at the public authority.
		credOpts.DisableInstanceDiscovery = true
	default:
		cl, ok := azureClouds[strings.ToUpper(c.CloudType)]
		if !ok {
			return nil, fmt.Errorf("cloud.type: want AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud or Private, got %q", c.CloudType)
		}
		opts.Cloud = cl
	}
	credOpts.ClientOptions = opts
	var cred azcore.TokenCredential = c.Credential
	if cred == nil {
		if cred, err = azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret, credOpts); err != nil {
			return nil, fmt.Errorf("credentials: %s", redact(err.Error(), c.ClientSecret))
		}
	}
	client, err := azsecrets.NewClient(strings.TrimSuffix(c.VaultURI, "/"), cred, &azsecrets.ClientOptions{ClientOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("vaultUri: %s", redact(err.Error(), c.ClientSecret))
	}
	return &AzureReader{client: client, secret: c.ClientSecret}, nil
}

// Get reads one secret's value. An error names the secret and the HTTP status and error code of Key Vault or
// of Entra ID, never the value or the client secret.
func (r *AzureReader) Get(ctx context.Context, s AzureSecret) (string, error) {
	res, err := r.client.GetSecret(ctx, s.Name, s.Version, nil)
	if err != nil {
		var authErr *azidentity.AuthenticationFailedError
		if errors.As(err, &authErr) && authErr.RawResponse != nil {
			return "", fmt.Errorf("secret %q: token request: HTTP %d: %s", s.Name, authErr.RawResponse.StatusCode, entraCode(authErr))
		}
		return "", fmt.Errorf("secret %q: %s", s.Name, redact(azure.Describe(err).Error(), r.secret))
	}
	if res.Value == nil {
		return "", fmt.Errorf("secret %q: Key Vault returned no value", s.Name)
	}
	return *res.Value, nil
}

// entraCode is the AADSTS code and error of a failed token request (e.g. "invalid_client AADSTS7000215"), without
// the rest of the response.
func entraCode(e *azidentity.AuthenticationFailedError) string {
	msg := e.Error()
	var parts []string
	for _, f := range strings.Fields(msg) {
		f = strings.Trim(f, `",:.`)
		if strings.HasPrefix(f, "AADSTS") || f == "invalid_client" || f == "unauthorized_client" || f == "invalid_request" {
			parts = append(parts, f)
		}
	}
	if len(parts) == 0 {
		return "authentication failed"
	}
	return strings.Join(dedupe(parts), " ")
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
		}
	}
	return msg
}
