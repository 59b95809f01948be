package gcp

import "cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"

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
