package gcp

import (
	"testing"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
)

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		v    *monitoringpb.TypedValue
		want float64
		ok   bool
	}{
		{&monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: 42}}, 42, true},
		{&monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: 2.5}}, 2.5, true},
		{&monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_BoolValue{BoolValue: true}}, 0, false},
		{&monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_StringValue{StringValue: "7"}}, 0, false},
		{nil, 0, false},
	} {
		if got, ok := Number(tc.v); got != tc.want || ok != tc.ok {
			t.Errorf("Number(%v) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
