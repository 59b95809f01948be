// Package azureservicebus is Tidal's Azure Service Bus scaler: trigger type "azure-servicebus", with KEDA's
// metadata names, defaults and semantics. The metric is the number of active messages (runtime properties,
// read with the SDK's administration client over the service's ATOM API) of a queue (queueName) or of a topic's
// subscription (topicName with subscriptionName).
//
// messageCountType (a Tidal key; KEDA counts active messages only) chooses the count from the same runtime
// properties: active (the default, KEDA's), deadLetter (the entity's dead-letter sub-queue, e.g. for a worker
// that drains or re-submits dead letters), or activeAndDeadLetter (their sum).
//
// With useRegex "true", queueName (or subscriptionName, within topicName) is a regular expression matched
// against the whole entity name, and operation (sum, max or avg) combines the active-message counts of every
// match; no match is an error, never a silent 0.
//
// Authentication: a Service Bus connection string (authParams connection, or connectionFromEnv), or namespace
// (with cloud / endpointSuffix) and the workload identity of the Tidal pod.
package azureservicebus

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus/admin"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure"
	"github.com/tidalscale/tidal/scalers/onemetric"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "azure-servicebus"

// Metadata is the azure-servicebus trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	QueueName              string `tidal:"name=queueName,optional"`
	TopicName              string `tidal:"name=topicName,optional"`
	SubscriptionName       string `tidal:"name=subscriptionName,optional"`
	MessageCount           int64  `tidal:"name=messageCount;queueLength,default=5,target"`
	ActivationMessageCount int64  `tidal:"name=activationMessageCount,default=0,range=0;"`
	UseRegex               bool   `tidal:"name=useRegex,default=false"`
	Operation              string `tidal:"name=operation,default=sum,enum=sum;max;avg"`
	MessageCountType       string `tidal:"name=messageCountType,default=active,enum=active;deadLetter;activeAndDeadLetter"`

	Connection     string `tidal:"name=connection,order=authParams;triggerMetadata,optional"`
	Namespace      string `tidal:"name=namespace,optional"`
	Cloud          string `tidal:"name=cloud,optional"`
	EndpointSuffix string `tidal:"name=endpointSuffix,optional"`

	pattern *regexp.Regexp
	fqdn    string
}

// Validate checks the entity and the connection, and compiles the pattern when useRegex is set.
func (m *Metadata) Validate() error {
	var errs []error
	switch {
	case m.QueueName != "" && (m.TopicName != "" || m.SubscriptionName != ""):
		errs = append(errs, errors.New("queueName, topicName: give a queue, or a topic with a subscription, not both"))
	case m.QueueName == "" && m.TopicName == "":
		errs = append(errs, errors.New("queueName: required (or topicName with subscriptionName)"))
	case m.TopicName != "" && m.SubscriptionName == "":
		errs = append(errs, errors.New("subscriptionName: required with topicName"))
	}
	if m.UseRegex {
		field, expr := "queueName", m.QueueName
		if m.TopicName != "" {
			field, expr = "subscriptionName", m.SubscriptionName
		}
		if expr != "" {
			p, err := regexp.Compile("^(?:" + expr + ")$")
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: not a regular expression: %w", field, err))
			}
			m.pattern = p
		}
	}
	if err := m.resolveNamespace(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (m *Metadata) resolveNamespace() error {
	if m.Connection != "" {
		if !strings.Contains(m.Connection, "Endpoint=") {
			return errors.New("connection: want a Service Bus connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...)")
		}
		return nil
	}
	if m.Namespace == "" {
		return errors.New("connection: missing: set connection in the TriggerAuthentication (or connectionFromEnv), or namespace for workload identity")
	}
	if strings.ContainsAny(m.Namespace, "/:@ ") {
		return fmt.Errorf("namespace: want a Service Bus namespace name, got %q", m.Namespace)
	}
	suffix, err := azure.ServiceBusEndpointSuffix(m.Cloud, m.EndpointSuffix)
	if err != nil {
		return err
	}
	m.fqdn = m.Namespace + "." + suffix
	return nil
}

// pick is the count messageCountType asks for, from an entity's active and dead-letter counts.
func (m *Metadata) pick(active, deadLetter int32) int64 {
	switch m.MessageCountType {
	case "deadLetter":
		return int64(deadLetter)
	case "activeAndDeadLetter":
		return int64(active) + int64(deadLetter)
	}
	return int64(active)
}

// Scaler reads the active-message count of one entity, or of every entity its pattern matches.
type Scaler struct {
	onemetric.Base
	meta   Metadata
	client *admin.Client
}

// Register adds the azure-servicebus scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger and builds the administration client; nothing is sent until Sample. The one External
// metric targets messageCount; the trigger is active when the count exceeds activationMessageCount.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	s := &Scaler{meta: meta}
	release, err := azure.Connect(cfg, TriggerType, func(o policy.ClientOptions) (err error) {
		opts := &admin.ClientOptions{ClientOptions: o}
		if meta.Connection != "" {
			if s.client, err = admin.NewClientFromConnectionString(meta.Connection, opts); err != nil {
				// The SDK's parse error may quote the connection string: keep it out.
				return errors.New("connection: not a valid Service Bus connection string")
			}
			return nil
		}
		cred, err := azure.WorkloadIdentity(cfg.PodIdentity, o)
		if err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		s.client, err = admin.NewClient(meta.fqdn, cred, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	name := meta.QueueName
	if meta.TopicName != "" {
		name = meta.TopicName + "-" + meta.SubscriptionName
	}
	s.Base = onemetric.New(cfg, cfg.MetricName(TriggerType, name), float64(meta.MessageCount), float64(meta.ActivationMessageCount), s.count)
	s.Source, s.Release = s.entity(), release
	return s, nil
}

func (s *Scaler) entity() string {
	if s.meta.TopicName != "" {
		return fmt.Sprintf("topic %q subscription %q", s.meta.TopicName, s.meta.SubscriptionName)
	}
	return fmt.Sprintf("queue %q", s.meta.QueueName)
}

// count reads the count messageCountType names (active messages by default).
func (s *Scaler) count(ctx context.Context) (float64, error) {
	if s.meta.pattern != nil {
		counts, err := s.matching(ctx)
		if err != nil {
			return 0, err
		}
		if len(counts) == 0 {
			return 0, errors.New("no entity matches the pattern")
		}
		return float64(combine(s.meta.Operation, counts)), nil
	}
	if s.meta.TopicName != "" {
		p, err := s.client.GetSubscriptionRuntimeProperties(ctx, s.meta.TopicName, s.meta.SubscriptionName, nil)
		if err != nil {
			return 0, fmt.Errorf("reading runtime properties: %w", azure.Describe(err))
		}
		if p == nil {
			return 0, errors.New("the subscription does not exist")
		}
		return float64(s.meta.pick(p.ActiveMessageCount, p.DeadLetterMessageCount)), nil
	}
	p, err := s.client.GetQueueRuntimeProperties(ctx, s.meta.QueueName, nil)
	if err != nil {
		return 0, fmt.Errorf("reading runtime properties: %w", azure.Describe(err))
	}
	if p == nil {
		return 0, errors.New("the queue does not exist")
	}
	return float64(s.meta.pick(p.ActiveMessageCount, p.DeadLetterMessageCount)), nil
}

// matching lists the runtime properties of every queue (or subscription of the topic) and returns the counts
// (messageCountType) of those whose name matches.
func (s *Scaler) matching(ctx context.Context) ([]int64, error) {
	var counts []int64
	if s.meta.TopicName != "" {
		pager := s.client.NewListSubscriptionsRuntimePropertiesPager(s.meta.TopicName, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("listing subscriptions: %w", azure.Describe(err))
			}
			for _, p := range page.SubscriptionRuntimeProperties {
				if s.meta.pattern.MatchString(p.SubscriptionName) {
					counts = append(counts, s.meta.pick(p.ActiveMessageCount, p.DeadLetterMessageCount))
				}
			}
		}
		return counts, nil
	}
	pager := s.client.NewListQueuesRuntimePropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing queues: %w", azure.Describe(err))
		}
		for _, p := range page.QueueRuntimeProperties {
			if s.meta.pattern.MatchString(p.QueueName) {
				counts = append(counts, s.meta.pick(p.ActiveMessageCount, p.DeadLetterMessageCount))
			}
		}
	}
	return counts, nil
}

// combine applies KEDA's operation to the counts of the matching entities (avg rounds down, as KEDA's integer
// division does).
func combine(op string, counts []int64) int64 {
	var sum, max int64
	for _, c := range counts {
		sum += c
		if c > max {
			max = c
		}
	}
	switch op {
	case "max":
		return max
	case "avg":
		return sum / int64(len(counts))
	}
	return sum
}
