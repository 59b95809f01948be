package stores

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/tidalscale/tidal/scalers/awsauth"
)

// AWSClientConfig says how to reach AWS Secrets Manager and as whom: static keys read from the
// authentication's Secrets (KEDA's credentials.accessKey, accessSecretKey and optional accessToken).
type AWSClientConfig struct {
	// Region of the secrets; empty takes the operator's AWS_REGION.
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken (optional) are the static credentials.
	AccessKeyID, SecretAccessKey, SessionToken string
	// Endpoint overrides the service endpoint (a VPC endpoint or a test's fake); empty is AWS's.
	Endpoint string
	// HTTPClient carries the requests (its TLS roots replace AWS_CA_BUNDLE's); nil is the SDK's default.
	HTTPClient *http.Client
	// Credentials, when set, replace the static keys: a podIdentity's role credentials for the client's region
	// (Region, or the operator's AWS_REGION). OperatorChain, with no Credentials, uses the deployable's own AWS
	// credential chain (podIdentity aws naming no role).
	Credentials   func(region string) aws.CredentialsProvider
	OperatorChain bool
}

// AWSSecret names one value in AWS Secrets Manager (KEDA's awsSecretManager.secrets[] entry).
type AWSSecret struct {
	// Name is the secret's name or ARN.
	Name string
	// VersionID and VersionStage select a version; both empty is the AWSCURRENT stage.
	VersionID, VersionStage string
	// SecretKey, when set, reads that key of a secret whose value is a JSON object.
	SecretKey string
}

// AWSReader reads secrets from AWS Secrets Manager with the real SDK client.
type AWSReader struct {
	client *secretsmanager.Client
	meta   awsauth.Metadata
}

// NewAWSReader builds the Secrets Manager client. It does not connect. Errors never carry a credential.
func NewAWSReader(ctx context.Context, c AWSClientConfig) (*AWSReader, error) {
	m := awsauth.Metadata{
		Region: c.Region, Endpoint: c.Endpoint, IdentityOwner: "pod",
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
	}
	switch {
	case c.Credentials != nil || c.OperatorChain:
		m.IdentityOwner = "operator"
	case c.AccessKeyID == "" || c.SecretAccessKey == "":
		return nil, errors.New("credentials.accessKey and credentials.accessSecretKey: both required (or podIdentity)")
	}
	cfg, err := m.Config(ctx, nil)
	if err != nil {
		return nil, errors.New(m.Redact(err.Error()))
	}
	if c.HTTPClient != nil {
		// After loading: the SDK can only add AWS_CA_BUNDLE to its own buildable client.
		cfg.HTTPClient = c.HTTPClient
	}
	if cfg.Region == "" {
		return nil, errors.New("region: required (or AWS_REGION in the operator's environment)")
	}
	if c.Credentials != nil {
		cfg.Credentials = c.Credentials(cfg.Region)
	}
	// One retry: a store that is down fails within a resolution, and the last good value is kept.
	cfg.RetryMaxAttempts = 2
	return &AWSReader{client: secretsmanager.NewFromConfig(cfg), meta: m}, nil
}

// Get reads one secret's string value (or the SecretKey of its JSON object). An error names the secret, the
// HTTP status and AWS's error code, never a value or a credential.
func (r *AWSReader) Get(ctx context.Context, s AWSSecret) (string, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.Name)}
	if s.VersionID != "" {
		in.VersionId = aws.String(s.VersionID)
	}
	if s.VersionStage != "" {
		in.VersionStage = aws.String(s.VersionStage)
	}
	out, err := r.client.GetSecretValue(ctx, in)
	if err != nil {
		return "", fmt.Errorf("secret %q: %s", s.Name, r.meta.Redact(describeAWS(err)))
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("secret %q: has a binary value (SecretBinary); Tidal reads string secrets only", s.Name)
	}
	if s.SecretKey == "" {
		return *out.SecretString, nil
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(*out.SecretString), &obj); err != nil {
		// Not the decoder's message: it may quote the value.
		return "", fmt.Errorf("secret %q: secretKey %q: the secret's value is not a JSON object", s.Name, s.SecretKey)
	}
	v, ok := obj[s.SecretKey]
	if !ok {
		return "", fmt.Errorf("secret %q: secretKey %q: no such key in the secret's JSON object", s.Name, s.SecretKey)
	}
	if str, ok := v.(string); ok {
		return str, nil
	}
	b, _ := json.Marshal(v)
	return string(b), nil
}

// describeAWS shortens an SDK error to "HTTP <status> <code>: <message>" when AWS answered, so callers see the
// status and code without the SDK's request-id noise.
func describeAWS(err error) string {
	var re *awshttp.ResponseError
	var ae smithy.APIError
	switch {
	case errors.As(err, &re) && errors.As(err, &ae):
		return fmt.Sprintf("GetSecretValue: HTTP %d %s: %s", re.HTTPStatusCode(), ae.ErrorCode(), ae.ErrorMessage())
	case errors.As(err, &ae):
		return fmt.Sprintf("GetSecretValue: %s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err.Error()
}
