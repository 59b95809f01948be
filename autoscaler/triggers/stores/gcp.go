package stores

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"strings"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/gcp"
)

// GCPClientConfig says as whom to reach Google Secret Manager: a service-account key document read from the
// authentication's Secret (KEDA's credentials.clientSecret). The secrets are read in the document's project_id,
// as in KEDA.
type GCPClientConfig struct {
	// CredentialsJSON is the key document.
	CredentialsJSON string
	// HTTPClient, when its transport is an *http.Transport, lends its dialer and TLS roots to the gRPC
	// connection (a test's fake served under the real host name); nil is Google's defaults.
	HTTPClient *http.Client
	// Options are extra client options (a test's endpoint and transport).
	Options []option.ClientOption
	// Identity, when set, replaces the key document: a podIdentity gcp's credentials. Project is then the
	// project whose secrets are read (a key document names its own).
	Identity *scalers.PodIdentity
	Project  string
}

// GCPSecret names one secret version (KEDA's gcpSecretManager.secrets[] entry).
type GCPSecret struct {
	// ID is the secret's id in the project.
	ID string
	// Version is a version number or alias; empty is "latest".
	Version string
}

// GCPReader reads secrets from Google Secret Manager with the real gRPC client.
type GCPReader struct {
	client  *secretmanager.Client
	creds   gcp.Credentials
	project string
}

// noRetry makes a call fail at once: a store that is down fails within a resolution, and the last good value is
// kept.
var noRetry = gax.WithRetry(func() gax.Retryer { return gax.OnCodes(nil, gax.Backoff{}) })

// NewGCPReader loads the key document and builds the client. Errors never carry the document.
func NewGCPReader(ctx context.Context, c GCPClientConfig) (*GCPReader, error) {
	creds := gcp.Credentials{JSON: c.CredentialsJSON, Identity: c.Identity}
	project := c.Project
	switch {
	case c.Identity != nil:
		if err := creds.Load(); err != nil {
			return nil, fmt.Errorf("podIdentity: %w", err)
		}
		if project == "" {
			return nil, fmt.Errorf("podIdentity: Tidal was given no Google Cloud project to read the secrets in (%s)", identity.EnvGCPProject)
		}
	case c.CredentialsJSON == "":
		return nil, errors.New("credentials.clientSecret: required (or podIdentity)")
	default:
		if err := creds.Load(); err != nil {
			// Load names the scalers' metadata key; the caller names the field.
			return nil, fmt.Errorf("credentials.clientSecret: %s", strings.TrimPrefix(creds.Redact(err.Error()), creds.Field()+": "))
		}
		if project = creds.ProjectID(); project == "" {
			return nil, errors.New("credentials.clientSecret: the key document has no project_id")
		}
	}
	opts := append([]option.ClientOption{creds.ClientOption()}, grpcOptions(c.HTTPClient)...)
	opts = append(opts, c.Options...)
	client, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("secret manager client: %s", creds.Redact(err.Error()))
	}
	return &GCPReader{client: client, creds: creds, project: project}, nil
}

// grpcOptions carries hc's dialer and TLS roots to a gRPC connection.
func grpcOptions(hc *http.Client) []option.ClientOption {
	if hc == nil {
		return nil
	}
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		return nil
	}
	var opts []option.ClientOption
	if dial := tr.DialContext; dial != nil {
		opts = append(opts, option.WithGRPCDialOption(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dial(ctx, "tcp", addr)
		})))
	}
	if tr.TLSClientConfig != nil && tr.TLSClientConfig.RootCAs != nil {
		opts = append(opts, option.WithGRPCDialOption(grpc.WithTransportCredentials(
			credentials.NewTLS(&tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, MinVersion: tls.VersionTLS12}))))
	}
	return opts
}

// Close releases the client's connection.
func (r *GCPReader) Close() error { return r.client.Close() }

// Get reads one secret version's payload, checking its CRC32C. An error names the secret and the gRPC status
// code, never the payload or the key.
func (r *GCPReader) Get(ctx context.Context, s GCPSecret) (string, error) {
	version := s.Version
	if version == "" {
		version = "latest"
	}
	name := fmt.Sprintf("projects/%s/secrets/%s/versions/%s", r.project, s.ID, version)
	res, err := r.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name}, noRetry)
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return "", fmt.Errorf("%s: AccessSecretVersion: gRPC %s: %s", name, st.Code(), r.creds.Redact(st.Message()))
		}
		return "", fmt.Errorf("%s: AccessSecretVersion: %s", name, r.creds.Redact(err.Error()))
	}
	p := res.GetPayload()
	if p == nil {
		return "", fmt.Errorf("%s: the answer has no payload", name)
	}
	if p.DataCrc32C != nil && int64(crc32.Checksum(p.GetData(), crc32.MakeTable(crc32.Castagnoli))) != p.GetDataCrc32C() {
		return "", fmt.Errorf("%s: the payload does not match its CRC32C checksum", name)
	}
	return string(p.GetData()), nil
}
