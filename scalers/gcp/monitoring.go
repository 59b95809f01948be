package gcp

import (
	"context"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/option"

	"github.com/tidalscale/tidal/scalers/onemetric"
)

// NewMetricClient builds a Cloud Monitoring client authenticated with c, then opts (tests add the fake
// endpoint). The client outlives ctx: its owner closes it.
func (c *Credentials) NewMetricClient(ctx context.Context, opts ...option.ClientOption) (*monitoring.MetricClient, error) {
	opts = append([]option.ClientOption{c.ClientOption()}, opts...)
	return monitoring.NewMetricClient(context.WithoutCancel(ctx), opts...)
}

// Monitor is what a Cloud Monitoring trigger holds besides its metadata: its one-metric skeleton, whose Close
// closes the Monitoring client, the client, and the clock that places its query window.
type Monitor struct {
	onemetric.Base
	Client *monitoring.MetricClient
	Now    func() time.Time

	creds Credentials
}

// NewMonitor builds the Monitoring client (NewMetricClient, with opts) of the trigger base reads, for a clock now.
// An error names the credentials' field and never repeats the key.
func (c *Credentials) NewMonitor(ctx context.Context, base onemetric.Base, now func() time.Time, opts ...option.ClientOption) (Monitor, error) {
	m := Monitor{Base: base, Now: now, creds: *c}
	client, err := c.NewMetricClient(ctx, opts...)
	if err != nil {
		return m, base.Cfg.Errorf("%s: cannot build the Monitoring client: %s", c.Field(), m.Redact(err.Error()))
	}
	m.Client, m.Release = client, client.Close
	return m, nil
}

// Redact removes the trigger's key document and authParams from msg.
func (m *Monitor) Redact(msg string) string { return m.Cfg.Redact(m.creds.Redact(msg)) }

// Number is a Cloud Monitoring point's value as a float: int64 and double values are numbers, others (bool,
// string, distribution) are not.
func Number(v *monitoringpb.TypedValue) (float64, bool) {
	switch tv := v.GetValue().(type) {
	case *monitoringpb.TypedValue_Int64Value:
		return float64(tv.Int64Value), true
	case *monitoringpb.TypedValue_DoubleValue:
		return tv.DoubleValue, true
	}
	return 0, false
}

// Newest is the newest point of the time series read so far, for the triggers that scale on a metric's newest
// value.
type Newest struct {
	// End is the end time of the point's interval; Value its value. Found reports that a point was read.
	End   time.Time
	Value float64
	Found bool
}

// Add reads points: one whose interval ends later than the newest so far becomes the newest. It returns the
// value of the first such point that is not a number (Number), or nil.
func (n *Newest) Add(points []*monitoringpb.Point) *monitoringpb.TypedValue {
	for _, p := range points {
		end := p.GetInterval().GetEndTime().AsTime()
		if n.Found && !end.After(n.End) {
			continue
		}
		v, ok := Number(p.GetValue())
		if !ok {
			return p.GetValue()
		}
		n.End, n.Value, n.Found = end, v, true
	}
	return nil
}
