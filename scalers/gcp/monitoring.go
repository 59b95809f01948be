package gcp

import (
	"context"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/option"
)

// NewMetricClient builds a Cloud Monitoring client authenticated with c, then opts (tests add the fake
// endpoint). The client outlives ctx: its owner closes it.
func (c *Credentials) NewMetricClient(ctx context.Context, opts ...option.ClientOption) (*monitoring.MetricClient, error) {
	opts = append([]option.ClientOption{c.ClientOption()}, opts...)
	return monitoring.NewMetricClient(context.WithoutCancel(ctx), opts...)
}

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
