// Package gcp holds what the Google Cloud triggers share: KEDA's credential parameters and the client option
// built from them. The gcp-pubsub and gcp-stackdriver scalers embed Credentials, parse with ParseMetadata (which
// passes their trigger config through ParseConfig), call Load from their Validate and read Cloud Monitoring
// through a Monitor.
//
// Credentials (KEDA names):
//
//	GoogleApplicationCredentials   authParams: the service-account (or external-account) key JSON
//	credentialsFromEnv             metadata: a variable of the target's container holding that JSON
//	credentialsFromEnvFile         metadata: a variable holding the path of a key file
//
// A TriggerAuthentication's spec.podIdentity gcp (scalers.TriggerConfig.PodIdentity, set into Identity by the
// trigger's ParseMetadata) replaces them: Google workload identity federation (autoscaler/triggers/identity).
package gcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/api/option"

	"github.com/tidalscale/tidal/scalers"
)

// Credentials is the part of a GCP trigger's metadata that says as whom to connect.
type Credentials struct {
	// JSON is the key document.
	JSON string `tidal:"name=GoogleApplicationCredentials;credentials,order=authParams;triggerMetadata,optional"`
	// CredentialsFile is a path read from the variable named by credentialsFromEnvFile.
	CredentialsFile string `tidal:"name=credentialsFile,optional"`
	// Identity is the trigger's spec.podIdentity; the trigger sets it before parsing. When set, no key is read.
	Identity *scalers.PodIdentity

	credType   option.CredentialsType
	projectID  string
	privateKey string
	// field is the metadata key the credentials came from, for error messages.
	field string
}

// ParseConfig returns cfg with KEDA's credentialsFromEnvFile renamed to the key the parser reads
// (credentialsFileFromEnv: a variable holding credentialsFile); cfg itself is not changed.
func ParseConfig(cfg *scalers.TriggerConfig) *scalers.TriggerConfig {
	v, ok := cfg.Metadata["credentialsFromEnvFile"]
	if !ok {
		return cfg
	}
	md := make(map[string]string, len(cfg.Metadata)+1)
	for k, val := range cfg.Metadata {
		md[k] = val
	}
	md["credentialsFileFromEnv"] = v
	delete(md, "credentialsFromEnvFile")
	c := *cfg
	c.Metadata = md
	return &c
}

// gcpCredentials lets ParseMetadata reach the Credentials a trigger's metadata struct embeds.
func (c *Credentials) gcpCredentials() *Credentials { return c }

// ParseMetadata parses and validates a GCP trigger's metadata (M embeds Credentials) without connecting: it
// refuses a Utilization metricType (every GCP trigger's metric is an External value), sets Identity from the
// trigger's podIdentity and parses cfg through ParseConfig.
func ParseMetadata[M any](cfg *scalers.TriggerConfig) (M, error) {
	var m M
	if err := cfg.RefuseUtilization(); err != nil {
		return m, err
	}
	if c, ok := any(&m).(interface{ gcpCredentials() *Credentials }); ok {
		c.gcpCredentials().Identity = cfg.PodIdentity
	}
	err := scalers.Parse(ParseConfig(cfg), &m)
	return m, err
}

// Load reads the key JSON (from the file when the trigger named one) and its type and project, never echoing its
// content. A document without project_id is accepted: ProjectID is then empty.
func (c *Credentials) Load() error {
	if c.Identity != nil {
		c.field = "spec.podIdentity"
		if c.Identity.Provider != "gcp" {
			return fmt.Errorf("spec.podIdentity: provider %s does not apply to a GCP trigger; use gcp", c.Identity.Provider)
		}
		return nil
	}
	c.field = "GoogleApplicationCredentials"
	if c.JSON == "" && c.CredentialsFile != "" {
		b, err := os.ReadFile(c.CredentialsFile)
		if err != nil {
			return fmt.Errorf("credentialsFromEnvFile: cannot read the credentials file: %w", err)
		}
		c.JSON, c.field = string(b), "credentialsFromEnvFile"
	}
	if c.JSON == "" {
		return errors.New("GoogleApplicationCredentials: required in authParams, or credentialsFromEnv / credentialsFromEnvFile (podIdentity gcp is not supported yet)")
	}
	var key struct {
		Type       string `json:"type"`
		ProjectID  string `json:"project_id"`
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal([]byte(c.JSON), &key); err != nil {
		return fmt.Errorf("%s: not a Google credentials JSON document", c.field)
	}
	switch key.Type {
	case "service_account":
		c.credType = option.ServiceAccount
	case "external_account":
		c.credType = option.ExternalAccount
	case "authorized_user":
		c.credType = option.AuthorizedUser
	case "impersonated_service_account":
		c.credType = option.ImpersonatedServiceAccount
	default:
		return fmt.Errorf("%s: unsupported credentials type %q", c.field, key.Type)
	}
	c.projectID, c.privateKey = key.ProjectID, key.PrivateKey
	return nil
}

// ProjectID is the credentials' project_id (empty when the document has none).
func (c *Credentials) ProjectID() string { return c.projectID }

// Field is the metadata key the credentials came from.
func (c *Credentials) Field() string { return c.field }

// ClientOption authenticates a Google client with the loaded credentials.
func (c *Credentials) ClientOption() option.ClientOption {
	if c.Identity != nil && c.Identity.GCP != nil {
		return option.WithTokenSource(c.Identity.GCP)
	}
	return option.WithAuthCredentialsJSON(c.credType, []byte(c.JSON))
}

// Redact replaces the key document and its private key in msg (credentials read from a variable or a file are
// not in the trigger's authParams, so cfg.Errorf alone would not catch them).
func (c *Credentials) Redact(msg string) string {
	for _, sec := range []string{c.JSON, c.privateKey} {
		if len(sec) >= 3 {
			msg = strings.ReplaceAll(msg, sec, "[REDACTED]")
		}
	}
	return msg
}
