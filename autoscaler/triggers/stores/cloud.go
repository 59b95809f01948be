package stores

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// Fields of the cloud secret managers' sections.
const (
	AWSSecretManagerField = "spec.awsSecretManager"
	GCPSecretManagerField = "spec.gcpSecretManager"
	AzureKeyVaultField    = "spec.azureKeyVault"
)

// AWSSecretManager reads an authentication's awsSecretManager section: each secret with GetSecretValue, as the
// access keys in credentials (KEDA's accessKey, accessSecretKey and optional accessToken, each from a Secret).
type AWSSecretManager struct {
	Spec *tidalv1alpha1.AwsSecretManager
}

// Field implements Store.
func (a *AWSSecretManager) Field() string { return AWSSecretManagerField }

// Read implements Store; errors start with the field's path.
func (a *AWSSecretManager) Read(ctx context.Context, d Deps) (map[string]string, error) {
	v, err := a.read(ctx, d)
	return v, inField(a.Field(), err)
}

func (a *AWSSecretManager) read(ctx context.Context, d Deps) (map[string]string, error) {
	s := a.Spec
	if err := requireSecrets(len(s.Secrets)); err != nil {
		return nil, err
	}
	var cfg AWSClientConfig
	pi, err := podIdentity(ctx, d, s.PodIdentity, tidalv1alpha1.PodIdentityProviderAWS, "awsSecretManager")
	if err != nil {
		return nil, err
	}
	switch {
	case pi != nil && pi.AWS != nil:
		cfg.Credentials = pi.AWS
	case pi != nil:
		cfg.OperatorChain = true
	case s.Credentials == nil:
		return nil, errors.New("credentials: required (or podIdentity)")
	}
	for _, c := range credentialFields(s.Credentials, &cfg) {
		if c.v == nil {
			if c.field == "credentials.accessToken" {
				continue
			}
			return nil, fmt.Errorf("%s: required", c.field)
		}
		v, err := secretValue(ctx, d, c.field, c.v.ValueFrom)
		if err != nil {
			return nil, err
		}
		*c.into = v
	}
	cfg.Region, cfg.HTTPClient = s.Region, d.HTTPClient
	r, err := NewAWSReader(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return readSecrets(ctx, s.Secrets, func(sec tidalv1alpha1.AwsSecretManagerSecret) (string, string, string) {
		return sec.Parameter, "name", sec.Name
	}, func(ctx context.Context, sec tidalv1alpha1.AwsSecretManagerSecret) (string, error) {
		return r.Get(ctx, AWSSecret{Name: sec.Name, VersionID: sec.VersionID, VersionStage: sec.VersionStage, SecretKey: sec.SecretKey})
	})
}

// awsCredentialField is one of an awsSecretManager section's credentials, read into a field of the client's
// configuration.
type awsCredentialField struct {
	field string
	v     *tidalv1alpha1.AwsSecretManagerValue
	into  *string
}

// credentialFields lists the static credentials to read; none when the section has no credentials (podIdentity).
func credentialFields(c *tidalv1alpha1.AwsSecretManagerCredentials, cfg *AWSClientConfig) []awsCredentialField {
	if c == nil || cfg.Credentials != nil || cfg.OperatorChain {
		return nil
	}
	return []awsCredentialField{
		{"credentials.accessKey", c.AccessKey, &cfg.AccessKeyID},
		{"credentials.accessSecretKey", c.AccessSecretKey, &cfg.SecretAccessKey},
		{"credentials.accessToken", c.AccessToken, &cfg.SessionToken},
	}
}

// GCPSecretManager reads an authentication's gcpSecretManager section: each secret version with
// AccessSecretVersion in the project of the service-account key in credentials.clientSecret, as KEDA does.
type GCPSecretManager struct {
	Spec *tidalv1alpha1.GCPSecretManager
}

// Field implements Store.
func (g *GCPSecretManager) Field() string { return GCPSecretManagerField }

// Read implements Store; errors start with the field's path.
func (g *GCPSecretManager) Read(ctx context.Context, d Deps) (map[string]string, error) {
	v, err := g.read(ctx, d)
	return v, inField(g.Field(), err)
}

func (g *GCPSecretManager) read(ctx context.Context, d Deps) (map[string]string, error) {
	s := g.Spec
	if err := requireSecrets(len(s.Secrets)); err != nil {
		return nil, err
	}
	pi, err := podIdentity(ctx, d, s.PodIdentity, tidalv1alpha1.PodIdentityProviderGCP, "gcpSecretManager")
	if err != nil {
		return nil, err
	}
	cfg := GCPClientConfig{HTTPClient: d.HTTPClient, Identity: pi, Project: d.GCPProject}
	if pi == nil {
		if s.Credentials == nil {
			return nil, errors.New("credentials: required (or podIdentity)")
		}
		if cfg.CredentialsJSON, err = secretValue(ctx, d, "credentials.clientSecret", s.Credentials.ClientSecret.ValueFrom); err != nil {
			return nil, err
		}
	}
	r, err := NewGCPReader(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	return readSecrets(ctx, s.Secrets, func(sec tidalv1alpha1.GCPSecretManagerSecret) (string, string, string) {
		return sec.Parameter, "id", sec.ID
	}, func(ctx context.Context, sec tidalv1alpha1.GCPSecretManagerSecret) (string, error) {
		return r.Get(ctx, GCPSecret{ID: sec.ID, Version: sec.Version})
	})
}

// AzureKeyVault reads an authentication's azureKeyVault section: each secret from the vault at vaultUri, as the
// service principal in credentials (clientId, tenantId, and clientSecret from a Secret), in the cloud of cloud.
type AzureKeyVault struct{ Spec *tidalv1alpha1.AzureKeyVault }

// Field implements Store.
func (a *AzureKeyVault) Field() string { return AzureKeyVaultField }

// Read implements Store; errors start with the field's path.
func (a *AzureKeyVault) Read(ctx context.Context, d Deps) (map[string]string, error) {
	v, err := a.read(ctx, d)
	return v, inField(a.Field(), err)
}

func (a *AzureKeyVault) read(ctx context.Context, d Deps) (map[string]string, error) {
	s := a.Spec
	if err := requireSecrets(len(s.Secrets)); err != nil {
		return nil, err
	}
	pi, err := podIdentity(ctx, d, s.PodIdentity, tidalv1alpha1.PodIdentityProviderAzureWorkload, "azureKeyVault")
	if err != nil {
		return nil, err
	}
	cfg := AzureClientConfig{VaultURI: s.VaultURI, HTTPClient: d.HTTPClient}
	switch {
	case pi != nil:
		cfg.Credential = pi.Azure
	case s.Credentials == nil:
		return nil, errors.New("credentials: required (or podIdentity)")
	case s.Credentials.ClientSecret == nil:
		return nil, errors.New("credentials.clientSecret: required")
	default:
		secret, err := secretValue(ctx, d, "credentials.clientSecret", s.Credentials.ClientSecret.ValueFrom)
		if err != nil {
			return nil, err
		}
		cfg.TenantID, cfg.ClientID, cfg.ClientSecret = s.Credentials.TenantID, s.Credentials.ClientID, secret
	}
	if s.Cloud != nil {
		cfg.CloudType, cfg.KeyVaultResourceURL, cfg.ActiveDirectoryEndpoint = s.Cloud.Type, s.Cloud.KeyVaultResourceURL, s.Cloud.ActiveDirectoryEndpoint
	}
	r, err := NewAzureReader(cfg)
	if err != nil {
		return nil, err
	}
	return readSecrets(ctx, s.Secrets, func(sec tidalv1alpha1.AzureKeyVaultSecret) (string, string, string) {
		return sec.Parameter, "name", sec.Name
	}, func(ctx context.Context, sec tidalv1alpha1.AzureKeyVaultSecret) (string, error) {
		return r.Get(ctx, AzureSecret{Name: sec.Name, Version: sec.Version})
	})
}

// inField prefixes err, whose text starts with a path relative to field (secrets[0], credentials.clientSecret),
// with field.
func inField(field string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s.%w", field, err)
}

// podIdentity resolves a section's podIdentity with d.PodIdentity: nil for none (or provider none). The provider
// must be want (the section's cloud). Errors name podIdentity.
func podIdentity(ctx context.Context, d Deps, p *tidalv1alpha1.AuthPodIdentity, want tidalv1alpha1.PodIdentityProvider, section string) (*scalers.PodIdentity, error) {
	if p == nil || p.Provider == "" || p.Provider == tidalv1alpha1.PodIdentityProviderNone {
		return nil, nil
	}
	if p.Provider != want && !(want == tidalv1alpha1.PodIdentityProviderAWS && p.Provider == tidalv1alpha1.PodIdentityProviderAWSEKS) {
		return nil, fmt.Errorf("podIdentity.provider: want %s (or none) in an %s section, got %s", want, section, p.Provider)
	}
	if d.PodIdentity == nil {
		return nil, fmt.Errorf("podIdentity: provider %s: no identity provider configured", p.Provider)
	}
	if p.IdentityOwner != nil && *p.IdentityOwner == "workload" || p.Provider == tidalv1alpha1.PodIdentityProviderAWSEKS {
		return nil, errors.New("podIdentity: identityOwner workload (and provider aws-eks) does not apply to a secret store, read once per authentication; use roleArn")
	}
	pi, err := d.PodIdentity(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("podIdentity: %w", err)
	}
	return pi, nil
}

func requireSecrets(n int) error {
	if n == 0 {
		return errors.New("secrets: at least one is required")
	}
	return nil
}

// readSecrets reads each of a section's secrets with get into a map by the secret's parameter. key gives a
// secret's parameter, the name of the field that names it in the store (name, id) and that name; both are
// required. Errors start with secrets[<index>].
func readSecrets[S any](ctx context.Context, secrets []S, key func(S) (parameter, nameField, name string), get func(context.Context, S) (string, error)) (map[string]string, error) {
	out := make(map[string]string, len(secrets))
	for i, sec := range secrets {
		parameter, nameField, name := key(sec)
		switch {
		case parameter == "":
			return nil, fmt.Errorf("secrets[%d].parameter: required", i)
		case name == "":
			return nil, fmt.Errorf("secrets[%d].%s: required", i, nameField)
		}
		v, err := get(ctx, sec)
		if err != nil {
			return nil, fmt.Errorf("secrets[%d]: %w", i, err)
		}
		out[parameter] = v
	}
	return out, nil
}

// secretValue reads a credential from a Secret in d.Namespace; errors name field, the Secret and the key.
func secretValue(ctx context.Context, d Deps, field string, v tidalv1alpha1.ValueFromSecret) (string, error) {
	ref := v.SecretKeyRef
	if ref.Name == "" || ref.Key == "" {
		return "", fmt.Errorf("%s.valueFrom.secretKeyRef: name and key are required", field)
	}
	sec, err := d.Kube.CoreV1().Secrets(d.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("%s.valueFrom.secretKeyRef: secret %q: %w", field, ref.Name, err)
	}
	b, ok := sec.Data[ref.Key]
	if !ok || len(b) == 0 {
		return "", fmt.Errorf("%s.valueFrom.secretKeyRef: secret %q has no key %q", field, ref.Name, ref.Key)
	}
	return string(b), nil
}
