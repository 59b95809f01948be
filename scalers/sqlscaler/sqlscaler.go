// Package sqlscaler holds what the SQL query triggers (mysql, postgresql) share: refusing a secret in plain
// metadata, the query and connection field rules, and the secrets a driver's message must never repeat.
package sqlscaler

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tidalscale/tidal/scalers"
)

// minSecretChars is the length below which a value is too short to redact without mangling messages.
const minSecretChars = 3

// ParseMetadata parses and validates a SQL trigger's metadata M without connecting, after refusing a
// Utilization metricType and a plain metadata value for each of secretKeys: a secret belongs in a
// TriggerAuthentication (authParams) or a "<key>FromEnv" variable, never in plain metadata. (A secret field's tag
// lists triggerMetadata only so that its "<key>FromEnv" form resolves.)
func ParseMetadata[M any](cfg *scalers.TriggerConfig, secretKeys ...string) (M, error) {
	var m M
	if err := cfg.RefuseUtilization(); err != nil {
		return m, err
	}
	for _, k := range secretKeys {
		if _, plain := cfg.Metadata[k]; plain {
			return m, cfg.Errorf("%s: must come from authParams (TriggerAuthentication) or %sFromEnv, not plain metadata", k, k)
		}
	}
	err := scalers.Parse(cfg, &m)
	return m, err
}

// Field is a metadata field's name and value.
type Field struct{ Name, Value string }

// Validate checks the rules every SQL trigger's metadata follows: the query is not blank, and without the
// connection string (connKey, conn) each of fields is given.
func Validate(query, connKey, conn string, fields ...Field) error {
	var errs []error
	if strings.TrimSpace(query) == "" {
		errs = append(errs, errors.New("query: must not be empty"))
	}
	if conn == "" {
		for _, f := range fields {
			if f.Value == "" {
				errs = append(errs, fmt.Errorf("%s: required when %s is not given", f.Name, connKey))
			}
		}
	}
	return errors.Join(errs...)
}

// Secrets returns the values of vals long enough to redact (a password, a connection string), for
// scalers.RedactSecrets.
func Secrets(vals ...string) []string {
	var out []string
	for _, v := range vals {
		if len(v) >= minSecretChars {
			out = append(out, v)
		}
	}
	return out
}
