package core

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"
)

func TestActivate(t *testing.T) {
	created := testNow.Add(-time.Hour)
	recent := testNow.Add(-time.Minute)
	old := testNow.Add(-10 * time.Minute)
	cases := []struct {
		name string
		in   activationInput
		want activationStep
	}{
		{name: "active at zero scales to minReplicas", in: activationInput{current: 0, minReplicas: 3, active: true},
			want: activationStep{replicas: 3, reason: ReasonActivated}},
		{name: "active at zero with min 0 scales to 1", in: activationInput{current: 0, minReplicas: 0, active: true},
			want: activationStep{replicas: 1, reason: ReasonActivated}},
		{name: "active at idle scales to minReplicas", in: activationInput{current: 0, minReplicas: 2, idle: ptr.To(int32(0)), active: true},
			want: activationStep{replicas: 2, reason: ReasonActivated}},
		{name: "active above zero hands over to the HPA", in: activationInput{current: 4, minReplicas: 0, active: true},
			want: activationStep{useHPA: true, reason: ReasonHPA}},
		{name: "inactive past cooldown scales to zero", in: activationInput{current: 4, cooldown: 5 * time.Minute, createdAt: created, lastActive: &old},
			want: activationStep{replicas: 0, reason: ReasonScaleToZero}},
		{name: "inactive never active scales to zero", in: activationInput{current: 4, cooldown: 5 * time.Minute, createdAt: created},
			want: activationStep{replicas: 0, reason: ReasonScaleToZero}},
		{name: "inactive inside cooldown keeps the HPA", in: activationInput{current: 4, cooldown: 5 * time.Minute, createdAt: created, lastActive: &recent},
			want: activationStep{useHPA: true, reason: ReasonCooldown}},
		{name: "cooldown boundary is exclusive", in: activationInput{current: 4, cooldown: time.Minute, createdAt: created, lastActive: &recent},
			want: activationStep{useHPA: true, reason: ReasonCooldown}},
		{name: "initial cooldown since creation blocks scale to zero", in: activationInput{current: 4, cooldown: 0, initialCool: 2 * time.Hour, createdAt: created},
			want: activationStep{useHPA: true, reason: ReasonInitialCooldown}},
		{name: "initial cooldown elapsed", in: activationInput{current: 4, cooldown: 0, initialCool: 30 * time.Minute, createdAt: created},
			want: activationStep{replicas: 0, reason: ReasonScaleToZero}},
		{name: "inactive past cooldown scales to idle", in: activationInput{current: 5, minReplicas: 3, idle: ptr.To(int32(1)), cooldown: time.Minute, createdAt: created, lastActive: &old},
			want: activationStep{replicas: 1, reason: ReasonScaleToIdle}},
		{name: "inactive at idle stays", in: activationInput{current: 1, minReplicas: 3, idle: ptr.To(int32(1)), createdAt: created},
			want: activationStep{replicas: 1, reason: ReasonInactive}},
		{name: "inactive below min without idle goes to min", in: activationInput{current: 1, minReplicas: 3, createdAt: created},
			want: activationStep{replicas: 3, reason: ReasonScaleToMin}},
		{name: "inactive at zero with min 0 stays", in: activationInput{current: 0, createdAt: created},
			want: activationStep{replicas: 0, reason: ReasonInactive}},
		{name: "inactive above min leaves it to the HPA", in: activationInput{current: 5, minReplicas: 2, createdAt: created},
			want: activationStep{useHPA: true, reason: ReasonHPA}},
		{name: "errors never scale to zero", in: activationInput{current: 4, failing: true, createdAt: created, lastActive: &old},
			want: activationStep{useHPA: true, reason: ReasonTriggerError}},
		{name: "errors at zero stay at zero", in: activationInput{current: 0, failing: true, createdAt: created},
			want: activationStep{replicas: 0, reason: ReasonTriggerError}},
		{name: "errors never scale to idle", in: activationInput{current: 5, minReplicas: 3, idle: ptr.To(int32(0)), failing: true, createdAt: created},
			want: activationStep{useHPA: true, reason: ReasonTriggerError}},
		{name: "active with a failing trigger still activates", in: activationInput{current: 0, minReplicas: 2, active: true, failing: true},
			want: activationStep{replicas: 2, reason: ReasonActivated}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.now = testNow
			if got := activate(tc.in); got != tc.want {
				t.Fatalf("activate = %+v, want %+v", got, tc.want)
			}
		})
	}
}
