// Package awsauth holds what every AWS trigger shares: KEDA's region, endpoint and credential parameters, and
// the aws-sdk-go-v2 configuration built from them. The aws-sqs-queue, aws-cloudwatch, aws-kinesis-stream and
// aws-dynamodb scalers embed Metadata and parse it and build their SDK configuration with Build (ParseMetadata
// and TriggerConfig).
//
// Credentials (KEDA names, from a TriggerAuthentication or "<name>FromEnv"):
//
//	awsAccessKeyID, awsSecretAccessKey   static keys; both or neither
//	awsSessionToken                      optional, with static keys (temporary credentials)
//	identityOwner                        metadata: pod (default) needs the keys above; operator uses the
//	                                     operator's own credential chain (environment, web identity, IMDS)
//	awsRoleArn / roleArn                 refused (KEDA deprecated it): use the TriggerAuthentication's
//	                                     podIdentity roleArn
//
// A TriggerAuthentication with spec.podIdentity provider aws or aws-eks (scalers.TriggerConfig.PodIdentity)
// replaces the keys: its credentials come from STS AssumeRoleWithWebIdentity (autoscaler/triggers/identity), or
// from the operator's own chain when it names no role.
package awsauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tidalscale/tidal/scalers"
)

// Metadata is the part of an AWS trigger's metadata that says where and as whom to connect.
type Metadata struct {
	Region        string `tidal:"name=awsRegion"`
	Endpoint      string `tidal:"name=awsEndpoint,optional"`
	IdentityOwner string `tidal:"name=identityOwner,default=pod,enum=pod;operator"`

	AccessKeyID     string `tidal:"name=awsAccessKeyID,order=authParams;triggerMetadata,optional"`
	SecretAccessKey string `tidal:"name=awsSecretAccessKey,order=authParams;triggerMetadata,optional"`
	SessionToken    string `tidal:"name=awsSessionToken,order=authParams;triggerMetadata,optional"`
	RoleArn         string `tidal:"name=awsRoleArn;roleArn,order=authParams;triggerMetadata,optional"`

	// podIdentity is the trigger's TriggerAuthentication podIdentity, set by ParseMetadata.
	podIdentity *scalers.PodIdentity
}

// awsMetadata lets ParseMetadata reach the Metadata a trigger's metadata struct embeds.
func (m *Metadata) awsMetadata() *Metadata { return m }

// Validate checks the credential rules; call it from the embedding trigger's Validate.
func (m *Metadata) Validate() error {
	var errs []error
	if m.Endpoint != "" {
		u, err := url.Parse(m.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("awsEndpoint: want an http or https URL, got %q", m.Endpoint))
		}
	}
	if m.RoleArn != "" {
		errs = append(errs, errors.New("awsRoleArn: not supported (KEDA deprecated it); use the TriggerAuthentication's spec.podIdentity with provider aws and roleArn"))
	}
	switch {
	case m.podIdentity != nil && !m.podIdentity.IsAWS():
		errs = append(errs, fmt.Errorf("spec.podIdentity: provider %s does not apply to an AWS trigger; use aws", m.podIdentity.Provider))
	case m.podIdentity != nil, m.IdentityOwner == "operator":
	case m.AccessKeyID == "" && m.SecretAccessKey == "":
		errs = append(errs, errors.New("awsAccessKeyID: required with awsSecretAccessKey in authParams (or set identityOwner: operator)"))
	case m.AccessKeyID == "":
		errs = append(errs, errors.New("awsAccessKeyID: required when awsSecretAccessKey is given"))
	case m.SecretAccessKey == "":
		errs = append(errs, errors.New("awsSecretAccessKey: required when awsAccessKeyID is given"))
	}
	return errors.Join(errs...)
}

// Secrets lists the values that must never reach an error or a log line.
func (m *Metadata) Secrets() []string {
	var out []string
	for _, s := range []string{m.SecretAccessKey, m.SessionToken} {
		if len(s) >= 3 {
			out = append(out, s)
		}
	}
	return out
}

// Redact replaces the secret key and session token in msg (values from "<name>FromEnv" are not in the
// trigger's authParams, so cfg.Errorf alone would not catch them).
func (m *Metadata) Redact(msg string) string {
	for _, sec := range m.Secrets() {
		msg = strings.ReplaceAll(msg, sec, "[REDACTED]")
	}
	return msg
}

// ParseMetadata parses and validates an AWS trigger's metadata (M embeds Metadata) without connecting, after
// refusing a Utilization metricType: every AWS trigger's metric is an External value.
func ParseMetadata[M any](cfg *scalers.TriggerConfig) (M, error) {
	var m M
	if err := cfg.RefuseUtilization(); err != nil {
		return m, err
	}
	if a, ok := any(&m).(interface{ awsMetadata() *Metadata }); ok {
		a.awsMetadata().podIdentity = cfg.PodIdentity
	}
	err := scalers.Parse(cfg, &m)
	return m, err
}

// Build parses an AWS trigger's metadata (ParseMetadata; M embeds Metadata) and builds its SDK configuration
// (TriggerConfig): the first steps of every AWS trigger's constructor.
func Build[M any](ctx context.Context, cfg *scalers.TriggerConfig) (M, aws.Config, error) {
	m, err := ParseMetadata[M](cfg)
	if err != nil {
		return m, aws.Config{}, err
	}
	a, ok := any(&m).(interface{ awsMetadata() *Metadata })
	if !ok {
		return m, aws.Config{}, cfg.Errorf("%T does not embed awsauth.Metadata", m)
	}
	c, err := a.awsMetadata().TriggerConfig(ctx, cfg)
	return m, c, err
}

// TriggerConfig is Config with the SDK's default HTTP client, for a trigger's constructor: an error names the
// trigger and never repeats a secret.
func (m *Metadata) TriggerConfig(ctx context.Context, cfg *scalers.TriggerConfig) (aws.Config, error) {
	c, err := m.Config(ctx, nil)
	if err != nil {
		return c, cfg.Errorf("%s", m.Redact(err.Error()))
	}
	return c, nil
}

// Config builds the SDK configuration: the TriggerAuthentication's podIdentity, static credentials from the
// trigger, or the operator's default chain for identityOwner operator (and podIdentity aws naming no role). The
// HTTP client is the caller's (nil: the SDK's default).
func (m *Metadata) Config(ctx context.Context, httpClient *http.Client) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithRegion(m.Region)}
	if httpClient != nil {
		opts = append(opts, config.WithHTTPClient(httpClient))
	}
	var creds aws.CredentialsProvider
	switch {
	case m.podIdentity.IsAWS():
		if m.podIdentity.AWS != nil {
			creds = m.podIdentity.AWS(m.Region)
		}
	case m.IdentityOwner != "operator":
		creds = credentials.NewStaticCredentialsProvider(m.AccessKeyID, m.SecretAccessKey, m.SessionToken)
	}
	if creds != nil {
		opts = append(opts, config.WithCredentialsProvider(creds))
		// Static keys must not be mixed with shared config files or profiles from the operator's environment.
		opts = append(opts, config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws configuration: %w", err)
	}
	if m.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(m.Endpoint)
	}
	return cfg, nil
}
