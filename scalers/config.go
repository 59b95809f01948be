package scalers

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/client-go/kubernetes"

	"go.uber.org/zap"
)

// TriggerConfig is everything a scaler is built from: the trigger as written in the ScaledObject or ScaledJob,
// the values resolved from its TriggerAuthentication and from the target's container environment, and the
// object it belongs to.
type TriggerConfig struct {
	// Type is the trigger type ("redis", "kafka", ...).
	Type string
	// Name is the trigger's optional name (triggers[].name); used in errors and by scalingModifiers.
	Name string
	// Index is the trigger's position in the object's triggers list; it makes metric names unique (s0-..., s1-...).
	Index int
	// Metadata is triggers[].metadata.
	Metadata map[string]string
	// AuthParams are the values resolved from the TriggerAuthentication: secrets. They must never be logged or
	// appear in an error, an event or a status.
	AuthParams map[string]string
	// PodIdentity is the credential of the TriggerAuthentication's spec.podIdentity; nil when it sets none.
	PodIdentity *PodIdentity
	// ResolvedEnv is the environment of the scale target's container, for metadata keys ending in "FromEnv".
	ResolvedEnv map[string]string
	// MetricType is triggers[].metricType: AverageValue (the default), Value or Utilization.
	MetricType autoscalingv2.MetricTargetType
	// PollingInterval is the object's pollingInterval.
	PollingInterval time.Duration
	// ObjectNamespace and ObjectName identify the ScaledObject or ScaledJob.
	ObjectNamespace string
	ObjectName      string
	// ObjectKind is "ScaledObject" or "ScaledJob"; some scalers (cpu, memory) only fit a ScaledObject.
	ObjectKind string
	// Logger carries the object and trigger keys; never nil after Normalize.
	Logger *zap.Logger
	// Kube is the deployable's own Kubernetes client, for triggers that read the cluster (kubernetes-workload).
	// May be nil (tidalctl, tests): such a trigger's Sample then reports that it has no client.
	Kube kubernetes.Interface
	// Shared lets triggers share one client per distinct (address, credentials). May be nil: then every scaler
	// opens its own.
	Shared *Shared
}

// RefuseUtilization normalizes c and refuses metricType Utilization, which only the cpu and memory triggers
// support: every trigger with an external metric calls it before parsing its metadata.
func (c *TriggerConfig) RefuseUtilization() error {
	c.Normalize()
	if c.MetricType == autoscalingv2.UtilizationMetricType {
		return c.Errorf("metricType: Utilization is only for cpu and memory triggers; use AverageValue or Value")
	}
	return nil
}

// Normalize fills defaults so scalers need not check for nil maps or loggers.
func (c *TriggerConfig) Normalize() {
	if c.Metadata == nil {
		c.Metadata = map[string]string{}
	}
	if c.AuthParams == nil {
		c.AuthParams = map[string]string{}
	}
	if c.ResolvedEnv == nil {
		c.ResolvedEnv = map[string]string{}
	}
	if c.MetricType == "" {
		c.MetricType = autoscalingv2.AverageValueMetricType
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// ID names the trigger in errors and logs: `redis trigger "orders"`, or `redis trigger #2` when unnamed.
func (c *TriggerConfig) ID() string {
	if c.Name != "" {
		return fmt.Sprintf("%s trigger %q", c.Type, c.Name)
	}
	return fmt.Sprintf("%s trigger #%d", c.Type, c.Index)
}

// Errorf builds an error that names the trigger: `redis trigger "orders": listLength: want integer, got "AA"`.
// The message passes through Redact, so an underlying driver error that echoes a credential cannot leak it.
func (c *TriggerConfig) Errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &triggerError{id: c.ID(), err: err, redact: c.secrets()}
}

// String never prints AuthParams values.
func (c *TriggerConfig) String() string {
	keys := make([]string, 0, len(c.AuthParams))
	for k := range c.AuthParams {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Sprintf("%s metadata=%v authParams=%v(redacted)", c.ID(), c.Metadata, keys)
}

// MetricName builds a KEDA-style external metric name: s<index>-<prefix>-<name>, lower-case, with characters the
// metrics API rejects replaced.
func (c *TriggerConfig) MetricName(prefix, name string) string {
	n := fmt.Sprintf("s%d-%s", c.Index, prefix)
	if name != "" {
		n += "-" + name
	}
	return SanitizeMetricName(n)
}

// SanitizeMetricName lower-cases a metric name and replaces characters outside [a-z0-9-] with '-', as KEDA
// does, so a converted KEDA manifest serves the same external metric names.
func SanitizeMetricName(n string) string {
	n = strings.ToLower(n)
	var b strings.Builder
	b.Grow(len(n))
	for _, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func (c *TriggerConfig) secrets() []string {
	var out []string
	for _, v := range c.AuthParams {
		if len(v) >= 3 && !notSecret[strings.ToLower(v)] {
			out = append(out, v)
		}
	}
	// Credentials embedded in URL-shaped metadata (redis://user:pass@host) are secrets too.
	for _, v := range c.Metadata {
		if p := urlPassword(v); p != "" {
			out = append(out, p)
		}
	}
	for _, v := range c.ResolvedEnv {
		if p := urlPassword(v); p != "" {
			out = append(out, p)
		}
	}
	// A value read from the target's environment through "<key>FromEnv" is treated as a secret whatever it looks
	// like: the user chose the environment (often a Secret reference) over plain metadata.
	for k, envName := range c.Metadata {
		if !strings.HasSuffix(k, "FromEnv") {
			continue
		}
		if v := c.ResolvedEnv[envName]; len(v) >= 3 && !notSecret[strings.ToLower(v)] {
			out = append(out, v)
		}
	}
	return out
}

// notSecret lists auth parameter values that are switches, not credentials (tls: enable, sasl: plaintext):
// redacting them would mangle messages ("enableTLS" → "[REDACTED]TLS") and protect nothing.
var notSecret = map[string]bool{
	"enable": true, "disable": true, "true": true, "false": true, "none": true, "plaintext": true,
	"scram_sha256": true, "scram_sha512": true, "basic": true, "bearer": true, "tls": true, "apikey": true,
}

// WithoutUserinfo drops the user and password from a URL shown in an error; s is returned as it is when it does not
// parse or has none.
func WithoutUserinfo(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

func urlPassword(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	if len(p) < 3 {
		return ""
	}
	return p
}

// Redact replaces every secret of this trigger found in s.
func (c *TriggerConfig) Redact(s string) string {
	return RedactSecrets(s, c.secrets())
}

// RedactSecrets replaces every one of secrets found in s with [REDACTED], for a scaler that knows secrets of its
// own beyond the trigger's (a password from the environment, a connection string it built).
func RedactSecrets(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	return s
}

type triggerError struct {
	id     string
	err    error
	redact []string
}

func (e *triggerError) Error() string { return RedactSecrets(e.id+": "+e.err.Error(), e.redact) }
func (e *triggerError) Unwrap() error { return e.err }
