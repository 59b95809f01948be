package status

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
)

func TestRowsAndTable(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	three := int32(3)
	items := []tidalv1alpha1.ScaledObject{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "b-orders", Namespace: "shop"},
			Spec: tidalv1alpha1.ScaledObjectSpec{
				ScaleTargetRef: tidalv1alpha1.ScaleTarget{Name: "worker", Kind: "StatefulSet"}, Mode: tidalv1alpha1.ScalingModeHPA,
				Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "redis", Name: "queue"}, {Type: "kafka"}},
			},
			Status: tidalv1alpha1.ScaledObjectStatus{
				CurrentReplicas: &three, DesiredReplicas: &three,
				LastActiveTime: &metav1.Time{Time: now.Add(-90 * time.Second)},
				Conditions:     []metav1.Condition{{Type: "Ready", Status: "False"}, {Type: "Active", Status: "True"}},
				Triggers: []tidalv1alpha1.TriggerStatus{
					{Name: "queue", Type: "redis", Value: "12", Active: true, LastSampleTime: &metav1.Time{Time: now.Add(-2 * time.Second)}},
					{Name: "s1-kafka", Type: "kafka", Error: "kafka trigger #1:\n  broker down", LastSampleTime: &metav1.Time{Time: now.Add(-2 * time.Second)}},
				},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "a-new", Namespace: "shop"},
			Spec: tidalv1alpha1.ScaledObjectSpec{ScaleTargetRef: tidalv1alpha1.ScaleTarget{Name: "api"},
				Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "cron"}}},
		},
	}
	rows := Rows(items)
	if len(rows) != 2 || rows[0].Name != "a-new" || rows[1].Target != "StatefulSet/worker" || rows[0].Max != tidalv1alpha1.DefaultMaxReplicaCount {
		t.Fatalf("rows = %+v", rows)
	}
	if rows[0].Triggers[0].Name != "s0-cron" {
		t.Errorf("unsampled trigger name %q, want the operator's s0-cron", rows[0].Triggers[0].Name)
	}
	var out bytes.Buffer
	if err := WriteTable(&out, rows, TableOptions{AllNamespaces: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE  NAME      TARGET              MODE    MIN  MAX  CURRENT  DESIRED  READY  ACTIVE  LAST ACTIVE  TRIGGER   TYPE   VALUE  TRIGGER ACTIVE  SAMPLED  ERROR
shop       a-new     Deployment/api      direct  0    100  -        -        -      -       -            s0-cron   cron   -      -               -        
shop       b-orders  StatefulSet/worker  hpa     0    100  3        3        False  True    90s          queue     redis  12     true            2s       
                                                                                                         s1-kafka  kafka  -      false           2s       kafka trigger #1: broker down
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	if strings.Count(out.String(), "\n") != 4 {
		t.Error("an error with a newline broke a table row")
	}
}
