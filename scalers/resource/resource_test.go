package resource

import (
	"context"
	"errors"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/tidalscale/tidal/scalers"
)

func qty(s string) *apiresource.Quantity {
	q := apiresource.MustParse(s)
	return &q
}

func TestMetricSpecs(t *testing.T) {
	cases := []struct {
		name       string
		typ        string
		metricType autoscalingv2.MetricTargetType
		meta       map[string]string
		want       autoscalingv2.MetricSpec
	}{
		{
			name:       "cpu utilization via metricType",
			typ:        TypeCPU,
			metricType: autoscalingv2.UtilizationMetricType,
			meta:       map[string]string{"value": "60"},
			want: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(60))}}},
		},
		{
			name: "cpu utilization via deprecated type",
			typ:  TypeCPU,
			meta: map[string]string{"type": "Utilization", "value": "75"},
			want: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(75))}}},
		},
		{
			name: "memory average value default metricType",
			typ:  TypeMemory,
			meta: map[string]string{"value": "256Mi"},
			want: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("256Mi")}}},
		},
		{
			name:       "cpu average value millicores",
			typ:        TypeCPU,
			metricType: autoscalingv2.AverageValueMetricType,
			meta:       map[string]string{"value": "500m"},
			want: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("500m")}}},
		},
		{
			name:       "container resource",
			typ:        TypeMemory,
			metricType: autoscalingv2.UtilizationMetricType,
			meta:       map[string]string{"value": "80", "containerName": "app"},
			want: autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
				Name: corev1.ResourceMemory, Container: "app", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(80))}}},
		},
		{
			name:       "deprecated type agrees with metricType",
			typ:        TypeCPU,
			metricType: autoscalingv2.UtilizationMetricType,
			meta:       map[string]string{"type": "Utilization", "value": "50"},
			want: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(50))}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &scalers.TriggerConfig{Type: tc.typ, Metadata: tc.meta, MetricType: tc.metricType, ObjectKind: "ScaledObject"}
			s, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close(context.Background())
			specs := s.MetricSpecs()
			if len(specs) != 1 {
				t.Fatalf("got %d specs, want 1", len(specs))
			}
			got := specs[0]
			if got.Type != tc.want.Type {
				t.Fatalf("type = %s, want %s", got.Type, tc.want.Type)
			}
			var gotName, wantName corev1.ResourceName
			var gotT, wantT autoscalingv2.MetricTarget
			if got.Resource != nil {
				gotName, gotT = got.Resource.Name, got.Resource.Target
				wantName, wantT = tc.want.Resource.Name, tc.want.Resource.Target
			} else {
				if got.ContainerResource.Container != tc.want.ContainerResource.Container {
					t.Errorf("container = %q, want %q", got.ContainerResource.Container, tc.want.ContainerResource.Container)
				}
				gotName, gotT = got.ContainerResource.Name, got.ContainerResource.Target
				wantName, wantT = tc.want.ContainerResource.Name, tc.want.ContainerResource.Target
			}
			if gotName != wantName || gotT.Type != wantT.Type {
				t.Errorf("got %s/%s, want %s/%s", gotName, gotT.Type, wantName, wantT.Type)
			}
			switch {
			case wantT.AverageUtilization != nil:
				if gotT.AverageUtilization == nil || *gotT.AverageUtilization != *wantT.AverageUtilization || gotT.AverageValue != nil {
					t.Errorf("target = %+v, want utilization %d", gotT, *wantT.AverageUtilization)
				}
			default:
				if gotT.AverageValue == nil || gotT.AverageValue.Cmp(*wantT.AverageValue) != 0 || gotT.AverageUtilization != nil {
					t.Errorf("target = %+v, want average value %s", gotT, wantT.AverageValue)
				}
			}
			rs, ok := s.(scalers.ResourceScaler)
			if !ok || !rs.ResourceMetric() {
				t.Error("not a ResourceScaler")
			}
			vals, active, err := s.Sample(context.Background())
			if vals != nil || active || err != nil {
				t.Errorf("Sample = %v, %v, %v; want nil, false, nil", vals, active, err)
			}
			// MetricSpecs hands out copies.
			specs[0].Type = "mutated"
			if s.MetricSpecs()[0].Type == "mutated" {
				t.Error("MetricSpecs returned shared state")
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name       string
		typ        string
		kind       string
		metricType autoscalingv2.MetricTargetType
		meta       map[string]string
		field      string
	}{
		{name: "missing value", typ: TypeCPU, meta: map[string]string{"type": "Utilization"}, field: `"value"`},
		{name: "non-numeric utilization", typ: TypeCPU, metricType: autoscalingv2.UtilizationMetricType, meta: map[string]string{"value": "sixty"}, field: "value"},
		{name: "fractional utilization", typ: TypeCPU, metricType: autoscalingv2.UtilizationMetricType, meta: map[string]string{"value": "60.5"}, field: "value"},
		{name: "zero utilization", typ: TypeMemory, metricType: autoscalingv2.UtilizationMetricType, meta: map[string]string{"value": "0"}, field: "value"},
		{name: "negative utilization", typ: TypeMemory, metricType: autoscalingv2.UtilizationMetricType, meta: map[string]string{"value": "-5"}, field: "value"},
		{name: "bad quantity", typ: TypeMemory, meta: map[string]string{"value": "lots"}, field: "value"},
		{name: "negative quantity", typ: TypeCPU, meta: map[string]string{"value": "-100m"}, field: "value"},
		{name: "zero quantity", typ: TypeCPU, meta: map[string]string{"value": "0"}, field: "value"},
		{name: "bad deprecated type", typ: TypeCPU, meta: map[string]string{"type": "Value", "value": "5"}, field: "type"},
		{name: "value metricType", typ: TypeCPU, metricType: autoscalingv2.ValueMetricType, meta: map[string]string{"value": "5"}, field: "metricType"},
		{name: "conflicting type and metricType", typ: TypeMemory, metricType: autoscalingv2.UtilizationMetricType, meta: map[string]string{"type": "AverageValue", "value": "5"}, field: "metricType"},
		{name: "scaledjob cpu", typ: TypeCPU, kind: "ScaledJob", meta: map[string]string{"value": "50"}, field: "type: cpu triggers are not supported in a ScaledJob"},
		{name: "scaledjob memory", typ: TypeMemory, kind: "ScaledJob", meta: map[string]string{"value": "50"}, field: "type: memory triggers are not supported in a ScaledJob"},
		{name: "unknown type", typ: "gpu", meta: map[string]string{"value": "50"}, field: "type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kind := tc.kind
			if kind == "" {
				kind = "ScaledObject"
			}
			cfg := &scalers.TriggerConfig{Type: tc.typ, Name: "t1", Metadata: tc.meta, MetricType: tc.metricType, ObjectKind: kind}
			s, err := New(context.Background(), cfg)
			if err == nil {
				s.Close(context.Background())
				t.Fatal("New succeeded, want error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.typ+` trigger "t1"`) || !strings.Contains(msg, tc.field) {
				t.Errorf("error %q does not name trigger %q and field %q", msg, tc.typ, tc.field)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	r := scalers.NewRegistry()
	Register(r)
	for _, typ := range []string{TypeCPU, TypeMemory} {
		s, err := r.New(context.Background(), scalers.TriggerConfig{Type: typ, Metadata: map[string]string{"value": "1"}, ObjectKind: "ScaledObject"})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if _, ok := s.(scalers.PushScaler); ok {
			t.Errorf("%s scaler must not be a PushScaler", typ)
		}
	}
}

func TestValidateMinReplicas(t *testing.T) {
	cases := []struct {
		name    string
		types   []string
		min     int32
		wantErr bool
	}{
		{name: "only cpu at zero", types: []string{"cpu"}, min: 0, wantErr: true},
		{name: "cpu and memory at zero", types: []string{"cpu", "memory", "cpu"}, min: 0, wantErr: true},
		{name: "cpu at one", types: []string{"cpu"}, min: 1},
		{name: "cpu and kafka at zero", types: []string{"cpu", "kafka"}, min: 0},
		{name: "event source only at zero", types: []string{"redis"}, min: 0},
		{name: "no triggers", types: nil, min: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateMinReplicas(tc.types, tc.min)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrCannotScaleToZero) || !strings.Contains(err.Error(), "minReplicaCount") {
					t.Errorf("error %q: want ErrCannotScaleToZero naming minReplicaCount", err)
				}
				if strings.Count(err.Error(), "cpu") > 2 {
					t.Errorf("error %q repeats trigger types", err)
				}
			}
		})
	}
	if !CannotActivate("cpu") || !CannotActivate("memory") || CannotActivate("redis") {
		t.Error("CannotActivate wrong")
	}
}

func FuzzParseResourceMetadata(f *testing.F) {
	f.Add("cpu", "Utilization", "50", "", "ScaledObject", "")
	f.Add("memory", "", "256Mi", "app", "ScaledObject", "AverageValue")
	f.Add("cpu", "AverageValue", "1e3", "", "ScaledJob", "Value")
	f.Add("memory", "x", "-1", "c", "", "Utilization")
	f.Add("cpu", "", "9999999999999999999999", "", "ScaledObject", "Utilization")
	f.Fuzz(func(t *testing.T, typ, mtype, value, container, kind, metricType string) {
		meta := map[string]string{"value": value}
		if mtype != "" {
			meta["type"] = mtype
		}
		if container != "" {
			meta["containerName"] = container
		}
		cfg := &scalers.TriggerConfig{Type: typ, Metadata: meta, ObjectKind: kind, MetricType: autoscalingv2.MetricTargetType(metricType)}
		s, err := New(context.Background(), cfg)
		if err != nil {
			if !strings.Contains(err.Error(), typ) {
				t.Fatalf("error %q does not name the trigger type", err)
			}
			return
		}
		if len(s.MetricSpecs()) != 1 {
			t.Fatal("want one spec")
		}
	})
}
