package stores

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
)

// Vault reads spec.hashiCorpVault from HashiCorp Vault or OpenBao (same HTTP API) with the official client.
//
// Authentication, as in KEDA:
//   - token: credential.token is the Vault token;
//   - kubernetes: a service-account JWT is exchanged at auth/<mount>/login (mount default kubernetes) for role.
//     The JWT is requested with the TokenRequest API for credential.serviceAccountName in Deps.Namespace (the
//     TriggerAuthentication's namespace; the operator's for a ClusterTriggerAuthentication), or read from the
//     file credential.serviceAccount (a token mounted in the operator's pod);
//   - approle (a Tidal addition; KEDA has none): role is the AppRole role ID and credential.secretId the secret
//     ID, read from a Secret in Deps.Namespace, exchanged at auth/<mount>/login (mount default approle).
//
// A token obtained by logging in is revoked after the read.
//
// Secret types: "" (generic: data.data[key] when the response has a data.data object, else data[key]), secret
// (KV version 1: data[key]), secretV2 (KV version 2, a <mount>/data/<name> path: data.data[key]) and pki (a
// certificate issued by writing pkiData to the path, <mount>/issue/<role>: data[key], e.g. certificate or
// private_key). namespace is sent as X-Vault-Namespace.
type Vault struct {
	Spec *tidalv1alpha1.HashiCorpVault
}

// VaultField is the path of the section.
const VaultField = "spec.hashiCorpVault"

// vaultTokenTTL is the lifetime asked for a service-account token used to log in.
const vaultTokenTTL = 10 * time.Minute

// Field implements Store.
func (v *Vault) Field() string { return VaultField }

// Read implements Store.
func (v *Vault) Read(ctx context.Context, d Deps) (map[string]string, error) {
	s := v.Spec
	if s.Address == "" {
		return nil, fmt.Errorf("%s.address: required", VaultField)
	}
	if len(s.Secrets) == 0 {
		return nil, fmt.Errorf("%s.secrets: required", VaultField)
	}
	cfg := &vault.Config{Address: s.Address, Timeout: 30 * time.Second, MaxRetries: 0}
	if d.HTTPClient != nil {
		hc := *d.HTTPClient // NewClient may set the transport: never on the caller's client
		cfg.HttpClient = &hc
	}
	client, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s.address: %w", VaultField, err)
	}
	// NewClient takes VAULT_TOKEN and VAULT_NAMESPACE from the environment: only the spec counts.
	client.ClearToken()
	client.ClearNamespace()
	if s.Namespace != "" {
		client.SetNamespace(s.Namespace)
	}
	revoke, err := v.login(ctx, client, d)
	if err != nil {
		return nil, err
	}
	if revoke {
		defer func() {
			// Best effort: the token expires anyway.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = client.Auth().Token().RevokeSelfWithContext(ctx, "")
		}()
	}
	params := make(map[string]string, len(s.Secrets))
	for i, sec := range s.Secrets {
		field := fmt.Sprintf("%s.secrets[%d]", VaultField, i)
		if sec.Parameter == "" || sec.Path == "" || sec.Key == "" {
			return nil, fmt.Errorf("%s: parameter, path and key are required", field)
		}
		val, err := readVaultSecret(ctx, client, sec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		params[sec.Parameter] = val
	}
	return params, nil
}

// login sets the client's token; revoke reports a token obtained by logging in.
func (v *Vault) login(ctx context.Context, client *vault.Client, d Deps) (revoke bool, err error) {
	s := v.Spec
	var cred tidalv1alpha1.VaultCredential
	if s.Credential != nil {
		cred = *s.Credential
	}
	switch s.Authentication {
	case tidalv1alpha1.VaultAuthenticationToken:
		if cred.Token == "" {
			return false, fmt.Errorf("%s.credential.token: required with authentication token", VaultField)
		}
		client.SetToken(cred.Token)
		return false, nil
	case tidalv1alpha1.VaultAuthenticationKubernetes:
		if s.Role == "" {
			return false, fmt.Errorf("%s.role: required with authentication kubernetes", VaultField)
		}
		var jwt string
		switch {
		case cred.ServiceAccountName != "":
			jwt, err = d.TokenRequester().ServiceAccountToken(ctx, d.Namespace, cred.ServiceAccountName, nil, vaultTokenTTL)
			if err != nil {
				return false, fmt.Errorf("%s.credential.serviceAccountName: token of service account %s/%s: %w", VaultField, d.Namespace, cred.ServiceAccountName, err)
			}
		case cred.ServiceAccount != "":
			b, err := os.ReadFile(cred.ServiceAccount)
			if err != nil {
				// The path error names the file only.
				return false, fmt.Errorf("%s.credential.serviceAccount: %w", VaultField, err)
			}
			jwt = strings.TrimSpace(string(b))
		default:
			return false, fmt.Errorf("%s.credential: serviceAccountName or serviceAccount is required with authentication kubernetes", VaultField)
		}
		mount := s.Mount
		if mount == "" {
			mount = "kubernetes"
		}
		return true, v.loginAt(ctx, client, mount, map[string]any{"role": s.Role, "jwt": jwt})
	case tidalv1alpha1.VaultAuthenticationAppRole:
		if s.Role == "" {
			return false, fmt.Errorf("%s.role: the AppRole role ID is required with authentication approle", VaultField)
		}
		if cred.SecretID == nil {
			return false, fmt.Errorf("%s.credential.secretId: required with authentication approle", VaultField)
		}
		secretID, err := secretValue(ctx, d, VaultField+".credential.secretId", cred.SecretID.ValueFrom)
		if err != nil {
			return false, err
		}
		mount := s.Mount
		if mount == "" {
			mount = "approle"
		}
		return true, v.loginAt(ctx, client, mount, map[string]any{"role_id": s.Role, "secret_id": secretID})
	case "":
		return false, fmt.Errorf("%s.authentication: required (token, kubernetes or approle)", VaultField)
	default:
		return false, fmt.Errorf("%s.authentication: %q is not supported (token, kubernetes or approle)", VaultField, s.Authentication)
	}
}

// loginAt logs in at auth/<mount>/login with body and sets the client's token.
func (v *Vault) loginAt(ctx context.Context, client *vault.Client, mount string, body map[string]any) error {
	path := "auth/" + strings.Trim(mount, "/") + "/login"
	secret, err := client.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return fmt.Errorf("%s: login at %s: %w", VaultField, path, vaultError(err))
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return fmt.Errorf("%s: login at %s: no token in the response", VaultField, path)
	}
	client.SetToken(secret.Auth.ClientToken)
	return nil
}

func readVaultSecret(ctx context.Context, client *vault.Client, sec tidalv1alpha1.VaultSecret) (string, error) {
	var (
		secret *vault.Secret
		err    error
	)
	switch sec.Type {
	case tidalv1alpha1.VaultSecretTypeGeneric, tidalv1alpha1.VaultSecretTypeSecret, tidalv1alpha1.VaultSecretTypeSecretV2:
		secret, err = client.Logical().ReadWithContext(ctx, sec.Path)
	case tidalv1alpha1.VaultSecretTypePki:
		secret, err = client.Logical().WriteWithContext(ctx, sec.Path, pkiRequest(sec.PkiData))
	default:
		return "", fmt.Errorf("type: %q is not one of secret, secretV2, pki or empty", sec.Type)
	}
	if err != nil {
		return "", fmt.Errorf("path %q: %w", sec.Path, vaultError(err))
	}
	if secret == nil || secret.Data == nil {
		return "", fmt.Errorf("path %q: no secret there", sec.Path)
	}
	data := secret.Data
	switch sec.Type {
	case tidalv1alpha1.VaultSecretTypeSecretV2:
		inner, ok := data["data"].(map[string]any)
		if !ok {
			return "", fmt.Errorf("path %q: no data.data object in the response (a KV version 2 path is <mount>/data/<name>)", sec.Path)
		}
		data = inner
	case tidalv1alpha1.VaultSecretTypeGeneric:
		if inner, ok := data["data"].(map[string]any); ok {
			data = inner
		}
	}
	raw, ok := data[sec.Key]
	if !ok || raw == nil {
		return "", fmt.Errorf("path %q has no key %q", sec.Path, sec.Key)
	}
	switch x := raw.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", fmt.Errorf("path %q: key %q is not a string", sec.Path, sec.Key)
		}
		return string(b), nil
	}
}

func pkiRequest(p tidalv1alpha1.VaultPkiData) map[string]any {
	req := map[string]any{}
	for k, v := range map[string]string{
		"common_name": p.CommonName, "alt_names": p.AltNames, "ip_sans": p.IPSans, "uri_sans": p.URISans,
		"other_sans": p.OtherSans, "ttl": p.TTL, "format": p.Format,
	} {
		if v != "" {
			req[k] = v
		}
	}
	return req
}

// vaultError keeps the HTTP status and Vault's error messages (which never carry a secret), without the
// request URL, and without a body Vault did not format (a proxy's page could be anything).
func vaultError(err error) error {
	var re *vault.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	msg := fmt.Sprintf("HTTP %d %s", re.StatusCode, http.StatusText(re.StatusCode))
	if !re.RawError && len(re.Errors) > 0 {
		msg += ": " + strings.Join(re.Errors, "; ")
	}
	return &StatusError{StatusCode: re.StatusCode, msg: msg}
}

// StatusError is an HTTP error of a store, with its status code.
type StatusError struct {
	StatusCode int
	msg        string
}

func (e *StatusError) Error() string { return e.msg }
