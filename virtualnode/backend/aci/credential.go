package aci

import (
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Keys of the credential Secret.
const (
	SecretTenantID     = "tenantId"
	SecretClientID     = "clientId"
	SecretClientSecret = "clientSecret"
)

// CredentialFromSecret returns the Azure credential a Secret describes: a service principal when it holds
// clientSecret (with tenantId and clientId), otherwise the managed identity (user-assigned when clientId is set).
// Errors name the missing key, never a value.
func CredentialFromSecret(data map[string][]byte) (azcore.TokenCredential, error) {
	get := func(k string) string { return strings.TrimSpace(string(data[k])) }
	if secret := get(SecretClientSecret); secret != "" {
		var missing []string
		for _, k := range []string{SecretTenantID, SecretClientID} {
			if get(k) == "" {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("aci credential secret: service principal needs %s", strings.Join(missing, " and "))
		}
		cred, err := azidentity.NewClientSecretCredential(get(SecretTenantID), get(SecretClientID), secret, nil)
		if err != nil {
			return nil, fmt.Errorf("aci credential secret: service principal %q: %w", get(SecretClientID), err)
		}
		return cred, nil
	}
	opts := &azidentity.ManagedIdentityCredentialOptions{}
	if id := get(SecretClientID); id != "" {
		opts.ID = azidentity.ClientID(id)
	}
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		return nil, fmt.Errorf("aci credential: managed identity: %w", err)
	}
	return cred, nil
}
