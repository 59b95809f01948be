// Package gcppubsub implements the gcp-pubsub trigger: KEDA's Google Cloud Pub/Sub scaler. Like KEDA it reads
// the subscription's or topic's Pub/Sub metrics from Cloud Monitoring (ListTimeSeries), the only place Google
// publishes a subscription's backlog and oldest unacked age.
//
// Metadata (KEDA names):
//
//	subscriptionName | topicName   exactly one; a name in the credentials' project or a full
//	                               projects/<p>/subscriptions/<s> (projects/<p>/topics/<t>); "<name>FromEnv" reads
//	                               it from the target's container
//	mode              SubscriptionSize (default: subscription/num_undelivered_messages),
//	                  OldestUnackedMessageAge (seconds), or any other Pub/Sub metric in PascalCase
//	                  (PullRequestCount → subscription/pull_request_count, topic/... for topicName)
//	value             target, default 10; activationValue default 0 (active above it)
//	timeHorizon       how far back to look for the newest point, default 2m (Monitoring samples each minute)
//	valueIfNull       value when Monitoring has no point in the window; without it that is an error, so a
//	                  metric gap never scales a workload to zero
//	aggregation       refused for now: Pub/Sub's distribution metrics (sizes, latencies) need it, and a field
//	                  accepted but ignored would read the wrong number
//	credentials       authParams GoogleApplicationCredentials (the key JSON), credentialsFromEnv (a variable
//	                  holding the JSON) or credentialsFromEnvFile (a variable holding a path): see scalers/gcp.
//	                  podIdentity gcp (the operator's own identity) is left to the TriggerAuthentication work.
//
// Pub/Sub cannot notify about its backlog, so this trigger polls. The metric is s<index>-gcp-ps-<name>.
package gcppubsub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/gcp"
	"github.com/tidalscale/tidal/scalers/onemetric"
)

// Type is the trigger type served by this package.
const Type = "gcp-pubsub"

// Register adds the gcp-pubsub trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the gcp-pubsub trigger's metadata.
type Metadata struct {
	SubscriptionName string        `tidal:"name=subscriptionName,optional"`
	TopicName        string        `tidal:"name=topicName,optional"`
	Mode             string        `tidal:"name=mode,default=SubscriptionSize"`
	Value            float64       `tidal:"name=value,default=10,target"`
	ActivationValue  float64       `tidal:"name=activationValue,default=0,range=0;"`
	TimeHorizon      time.Duration `tidal:"name=timeHorizon,default=2m,range=60;"` // Monitoring samples Pub/Sub each minute
	ValueIfNull      *float64      `tidal:"name=valueIfNull,optional"`
	Aggregation      string        `tidal:"name=aggregation,optional"`

	gcp.Credentials

	project, resourceType, resourceID, metricType string
}

// Validate applies the cross-field rules and derives the Monitoring metric type and resource.
func (m *Metadata) Validate() error {
	var errs []error
	name := m.SubscriptionName
	m.resourceType = "subscription"
	switch {
	case m.SubscriptionName != "" && m.TopicName != "":
		errs = append(errs, errors.New("subscriptionName, topicName: give exactly one"))
	case m.SubscriptionName == "" && m.TopicName == "":
		errs = append(errs, errors.New("subscriptionName: required (or topicName)"))
	case m.TopicName != "":
		name, m.resourceType = m.TopicName, "topic"
	}
	field := m.resourceType + "Name"
	if name != "" {
		parts := strings.Split(name, "/")
		switch {
		case len(parts) == 1:
			m.resourceID = name
		case len(parts) == 4 && parts[0] == "projects" && parts[2] == m.resourceType+"s" && parts[1] != "" && parts[3] != "":
			m.project, m.resourceID = parts[1], parts[3]
		default:
			errs = append(errs, fmt.Errorf("%s: want a name or projects/<project>/%ss/<name>, got %q", field, m.resourceType, name))
		}
	}
	switch m.Mode {
	case "":
		errs = append(errs, errors.New("mode: must not be empty"))
	case "SubscriptionSize":
		m.metricType = m.resourceType + "/num_undelivered_messages"
	default:
		snake, ok := pascalToSnake(m.Mode)
		if !ok {
			errs = append(errs, fmt.Errorf("mode: want SubscriptionSize, OldestUnackedMessageAge or another Pub/Sub metric in PascalCase, got %q", m.Mode))
		}
		m.metricType = m.resourceType + "/" + snake
	}
	m.metricType = "pubsub.googleapis.com/" + m.metricType
	if m.Aggregation != "" {
		errs = append(errs, errors.New("aggregation: not supported yet; choose a mode whose metric is a count or an age"))
	}
	if err := m.credentials(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// credentials loads the key document and takes the project from it unless the name gave one.
func (m *Metadata) credentials() error {
	if err := m.Load(); err != nil {
		return err
	}
	if m.project == "" {
		m.project = m.ProjectID()
	}
	if m.project == "" {
		return fmt.Errorf("%s: no project_id in the credentials; name the %s as projects/<project>/%ss/<name>", m.Field(), m.resourceType, m.resourceType)
	}
	return nil
}

// pascalToSnake turns a Pub/Sub metric's PascalCase name into its snake_case Monitoring name.
func pascalToSnake(s string) (string, bool) {
	if s == "" || !unicode.IsUpper(rune(s[0])) {
		return "", false
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case unicode.IsUpper(r):
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsLower(r), unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	return b.String(), true
}

// ParseMetadata parses and validates a gcp-pubsub trigger's metadata without connecting. KEDA's
// credentialsFromEnv names a variable holding the JSON; credentialsFromEnvFile one holding a path.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	return gcp.ParseMetadata[Metadata](cfg)
}

// Scaler is a gcp-pubsub trigger.
type Scaler struct {
	gcp.Monitor
	meta   Metadata
	filter string
}

// New builds a gcp-pubsub trigger with a Cloud Monitoring client: one External metric, s<index>-gcp-ps-<name>,
// targeting value and active above activationValue. The connection opens lazily.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	return newScaler(ctx, cfg, time.Now)
}

// newScaler lets tests add client options (the fake Monitoring endpoint) and a clock.
func newScaler(ctx context.Context, cfg *scalers.TriggerConfig, now func() time.Time, opts ...option.ClientOption) (*Scaler, error) {
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return nil, err
	}
	s := &Scaler{meta: meta, filter: fmt.Sprintf(`metric.type = %q AND resource.labels.%s_id = %q`,
		meta.metricType, meta.resourceType, meta.resourceID)}
	base := onemetric.New(cfg, cfg.MetricName("gcp-ps", meta.resourceID), meta.Value, meta.ActivationValue, s.read)
	if s.Monitor, err = meta.NewMonitor(ctx, base, now, opts...); err != nil {
		return nil, err
	}
	return s, nil
}

// read returns the newest point of the metric within timeHorizon.
func (s *Scaler) read(ctx context.Context) (float64, error) {
	now := s.Now()
	it := s.Client.ListTimeSeries(ctx, &monitoringpb.ListTimeSeriesRequest{
		Name:   "projects/" + s.meta.project,
		Filter: s.filter,
		Interval: &monitoringpb.TimeInterval{
			StartTime: timestamppb.New(now.Add(-s.meta.TimeHorizon)),
			EndTime:   timestamppb.New(now),
		},
		View: monitoringpb.ListTimeSeriesRequest_FULL,
	})
	var newest gcp.Newest
	for {
		ts, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return 0, s.Cfg.Errorf("%sName %s: Monitoring ListTimeSeries %s: %s", s.meta.resourceType, s.meta.resourceID, s.meta.metricType, s.Redact(err.Error()))
		}
		if bad := newest.Add(ts.GetPoints()); bad != nil {
			return 0, s.Cfg.Errorf("mode: metric %s is not a number (%T); it needs an aggregation, which is not supported yet", s.meta.metricType, bad.GetValue())
		}
	}
	if !newest.Found {
		if s.meta.ValueIfNull != nil {
			return *s.meta.ValueIfNull, nil
		}
		return 0, s.Cfg.Errorf("%sName %s: Monitoring has no %s point in the last %v (set valueIfNull to use a default)",
			s.meta.resourceType, s.meta.resourceID, s.meta.metricType, s.meta.TimeHorizon)
	}
	return newest.Value, nil
}
