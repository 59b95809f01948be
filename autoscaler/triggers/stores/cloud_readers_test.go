package stores

import (
	"context"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/autoscaler/triggers/stores/awssmfake"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/gcpsmfake"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores/keyvaultfake"
	"github.com/tidalscale/tidal/scalers/gcp/monitoringfake"
)

// These tests drive each provider's real SDK client against a fake speaking the provider's wire format.

func TestAWSReaderReadsVersionsStagesAndJSONKeys(t *testing.T) {
	ctx := context.Background()
	f := awssmfake.New(t, "eu-west-1")
	v1 := f.Put("db", `{"user":"app","password":"first-pw","port":5432}`)
	f.Put("db", `{"user":"app","password":"second-pw","port":5432}`)
	f.Put("token", "plain-token")
	// The SDK's default endpoint, secretsmanager.eu-west-1.amazonaws.com, routed to the fake.
	r, err := NewAWSReader(ctx, AWSClientConfig{Region: "eu-west-1", AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey, HTTPClient: f.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    AWSSecret
		want string
	}{
		{AWSSecret{Name: "token"}, "plain-token"},
		{AWSSecret{Name: "db", SecretKey: "password"}, "second-pw"},
		{AWSSecret{Name: "db", SecretKey: "password", VersionStage: "AWSPREVIOUS"}, "first-pw"},
		{AWSSecret{Name: "db", SecretKey: "password", VersionID: v1}, "first-pw"},
		{AWSSecret{Name: "db", SecretKey: "port"}, "5432"},
	} {
		got, err := r.Get(ctx, tc.s)
		if err != nil || got != tc.want {
			t.Errorf("Get(%+v) = %q, %v; want %q", tc.s, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		s       AWSSecret
		wantErr string
	}{
		{AWSSecret{Name: "absent"}, "HTTP 400 ResourceNotFoundException"},
		{AWSSecret{Name: "db", SecretKey: "nope"}, `secretKey "nope": no such key`},
		{AWSSecret{Name: "token", SecretKey: "x"}, "not a JSON object"},
		{AWSSecret{Name: "db", VersionID: v1, VersionStage: "AWSCURRENT"}, "InvalidRequestException"},
	} {
		_, err := r.Get(ctx, tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Get(%+v) error = %v, want %q", tc.s, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "first-pw") {
			t.Errorf("error carries a secret value: %v", err)
		}
	}
}

func TestAWSReaderWrongCredentials(t *testing.T) {
	ctx := context.Background()
	f := awssmfake.New(t, "eu-west-1")
	f.Put("token", "plain-token")
	for _, tc := range []struct {
		name    string
		cfg     AWSClientConfig
		wantErr string
	}{
		{"unknown key", AWSClientConfig{Region: "eu-west-1", AccessKeyID: "AKIAUNKNOWN", SecretAccessKey: "wrong-secret-key-value"}, "HTTP 400 UnrecognizedClientException"},
		{"wrong secret", AWSClientConfig{Region: "eu-west-1", AccessKeyID: f.AccessKeyID, SecretAccessKey: "wrong-secret-key-value"}, "HTTP 403 InvalidSignatureException"},
		{"wrong region", AWSClientConfig{Region: "us-east-1", AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey}, "scoped to a valid region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoint, tc.cfg.HTTPClient = f.URL, f.HTTPClient()
			r, err := NewAWSReader(ctx, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Get(ctx, AWSSecret{Name: "token"})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			for _, s := range []string{tc.cfg.SecretAccessKey, f.SecretAccessKey, "plain-token"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error carries a secret: %v", err)
				}
			}
		})
	}
	if _, err := NewAWSReader(ctx, AWSClientConfig{Region: "eu-west-1", AccessKeyID: "AKIA"}); err == nil || !strings.Contains(err.Error(), "credentials.accessSecretKey") {
		t.Errorf("missing secret key: error = %v, want it to name credentials.accessSecretKey", err)
	}
}

func TestGCPReaderReadsVersions(t *testing.T) {
	ctx := context.Background()
	f := gcpsmfake.New(t, "tidal-proj")
	f.Add("api-key", "key-one")
	f.Add("api-key", "key-two")
	// The client's default endpoint, secretmanager.googleapis.com:443, routed to the fake.
	r, err := NewGCPReader(ctx, GCPClientConfig{CredentialsJSON: f.Credentials, HTTPClient: f.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		s    GCPSecret
		want string
	}{
		{GCPSecret{ID: "api-key"}, "key-two"},
		{GCPSecret{ID: "api-key", Version: "latest"}, "key-two"},
		{GCPSecret{ID: "api-key", Version: "1"}, "key-one"},
	} {
		got, err := r.Get(ctx, tc.s)
		if err != nil || got != tc.want {
			t.Errorf("Get(%+v) = %q, %v; want %q", tc.s, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		s       GCPSecret
		wantErr string
	}{
		{GCPSecret{ID: "absent"}, "gRPC NotFound"},
		{GCPSecret{ID: "api-key", Version: "7"}, "gRPC NotFound"},
	} {
		if _, err := r.Get(ctx, tc.s); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Get(%+v) error = %v, want %q", tc.s, err, tc.wantErr)
		}
	}
	f.Corrupt(true)
	if _, err := r.Get(ctx, GCPSecret{ID: "api-key"}); err == nil || !strings.Contains(err.Error(), "CRC32C") || strings.Contains(err.Error(), "key-two") {
		t.Errorf("corrupt payload: error = %v, want a CRC32C error without the value", err)
	}
}

func TestGCPReaderWrongCredentials(t *testing.T) {
	ctx := context.Background()
	f := gcpsmfake.New(t, "tidal-proj")
	f.Add("api-key", "key-one")
	other, _ := monitoringfake.ServiceAccount(t, "tidal-proj", "http://127.0.0.1:1/token")
	// The accepted key, claiming another project: the secrets are read in the document's project_id.
	otherProject := strings.Replace(f.Credentials, `"project_id":"tidal-proj"`, `"project_id":"someone-else"`, 1)
	if otherProject == f.Credentials {
		t.Fatal("no project_id to replace in the key document")
	}
	for _, tc := range []struct {
		name, creds, wantErr string
	}{
		{"unknown key", other, "gRPC Unauthenticated"},
		{"other project", otherProject, "gRPC PermissionDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewGCPReader(ctx, GCPClientConfig{CredentialsJSON: tc.creds, Options: f.ClientOptions()})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = r.Get(ctx, GCPSecret{ID: "api-key"})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), monitoringfake.PrivateKeyLine(t, tc.creds)) || strings.Contains(err.Error(), "key-one") {
				t.Errorf("error carries a secret: %v", err)
			}
		})
	}
	if _, err := NewGCPReader(ctx, GCPClientConfig{CredentialsJSON: `{"type":"service_account","private_key":"-----BEGIN`}); err == nil ||
		!strings.Contains(err.Error(), "credentials.clientSecret") || strings.Contains(err.Error(), "BEGIN") {
		t.Errorf("bad document: error = %v, want it to name credentials.clientSecret without the content", err)
	}
}

func TestAzureReaderReadsThroughChallenge(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fake keyvaultfake.Config
		cfg  func(f *keyvaultfake.Server) AzureClientConfig
	}{
		{"public cloud", keyvaultfake.Config{}, func(f *keyvaultfake.Server) AzureClientConfig {
			return AzureClientConfig{VaultURI: f.VaultURI}
		}},
		{"private cloud", keyvaultfake.Config{VaultHost: "kv1.vault.stack.example", Resource: "https://vault.stack.example", AuthorityHost: "login.stack.example"},
			func(f *keyvaultfake.Server) AzureClientConfig {
				return AzureClientConfig{VaultURI: f.VaultURI + "/", CloudType: "Private", KeyVaultResourceURL: "https://vault.stack.example", ActiveDirectoryEndpoint: "https://login.stack.example/"}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := keyvaultfake.New(t, tc.fake)
			v1 := f.Set("conn", "conn-one")
			f.Set("conn", "conn-two")
			cfg := tc.cfg(f)
			cfg.TenantID, cfg.ClientID, cfg.ClientSecret, cfg.HTTPClient = f.TenantID, f.ClientID, f.ClientSecret, f.HTTPClient()
			r, err := NewAzureReader(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []struct {
				sec  AzureSecret
				want string
			}{
				{AzureSecret{Name: "conn"}, "conn-two"},
				{AzureSecret{Name: "conn", Version: v1}, "conn-one"},
			} {
				got, err := r.Get(ctx, s.sec)
				if err != nil || got != s.want {
					t.Errorf("Get(%+v) = %q, %v; want %q", s.sec, got, err, s.want)
				}
			}
			if _, err := r.Get(ctx, AzureSecret{Name: "absent"}); err == nil || !strings.Contains(err.Error(), "HTTP 404 SecretNotFound") {
				t.Errorf("absent secret: error = %v, want HTTP 404 SecretNotFound", err)
			}
			if n := f.TokenCalls.Load(); n != 1 {
				t.Errorf("token requests = %d, want 1 (the token is cached)", n)
			}
		})
	}
}

func TestAzureReaderWrongCredentials(t *testing.T) {
	ctx := context.Background()
	f := keyvaultfake.New(t, keyvaultfake.Config{})
	f.Set("conn", "conn-one")
	for _, tc := range []struct {
		name             string
		clientID, secret string
		wantErr          string
	}{
		{"wrong secret", f.ClientID, "cs~not-the-right-one", "HTTP 401: invalid_client AADSTS7000215"},
		{"unknown application", "00000000-0000-0000-0000-000000000001", f.ClientSecret, "HTTP 400: unauthorized_client AADSTS700016"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewAzureReader(AzureClientConfig{VaultURI: f.VaultURI, TenantID: f.TenantID, ClientID: tc.clientID, ClientSecret: tc.secret, HTTPClient: f.HTTPClient()})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Get(ctx, AzureSecret{Name: "conn"})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			for _, s := range []string{tc.secret, f.ClientSecret, "conn-one"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error carries a secret: %v", err)
				}
			}
		})
	}
	for _, tc := range []struct {
		cfg     AzureClientConfig
		wantErr string
	}{
		{AzureClientConfig{VaultURI: "http://kv.vault.azure.net", TenantID: "t", ClientID: "c", ClientSecret: "s3cr3t"}, "vaultUri"},
		{AzureClientConfig{VaultURI: f.VaultURI, TenantID: "t", ClientID: "c"}, "credentials.clientSecret"},
		{AzureClientConfig{VaultURI: f.VaultURI, TenantID: "t", ClientID: "c", ClientSecret: "s3cr3t", CloudType: "Mars"}, "cloud.type"},
		{AzureClientConfig{VaultURI: f.VaultURI, TenantID: "t", ClientID: "c", ClientSecret: "s3cr3t", CloudType: "Private"}, "keyVaultResourceURL and activeDirectoryEndpoint"},
		{AzureClientConfig{VaultURI: f.VaultURI, TenantID: "t", ClientID: "c", ClientSecret: "s3cr3t", CloudType: "private",
			KeyVaultResourceURL: "https://vault.stack.example", ActiveDirectoryEndpoint: "https://login.stack.example"}, "not under cloud.keyVaultResourceURL"},
	} {
		if _, err := NewAzureReader(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("NewAzureReader(%+v) error = %v, want %q", tc.cfg, err, tc.wantErr)
		}
	}
}
