package core_test

import (
	"fmt"
	"time"

	"github.com/tidalscale/tidal/autoscaler/core"
)

// The operator's direct mode: one decision per poll, state carried from one decision to the next.
func ExampleDecide() {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := core.ScaledObjectInput{
		CurrentReplicas: 0,
		MinReplicas:     0,
		MaxReplicas:     20,
		CooldownPeriod:  core.DefaultCooldownPeriod,
		CreatedAt:       created,
		Triggers:        []core.TriggerInput{{Name: "orders", Target: 5, ActivationTarget: 0, Value: 42}},
	}
	now := created.Add(time.Hour)

	d, err := core.Decide(in, now) // a message arrived: 0 -> 1
	if err != nil {
		panic(err)
	}
	fmt.Println(d.DesiredReplicas, d.Reason)

	in.CurrentReplicas, in.State = d.DesiredReplicas, d.NewState
	d, _ = core.Decide(in, now.Add(15*time.Second)) // 42 messages / 5 per pod, at most +max(4 pods, 100%) per 15s
	fmt.Println(d.DesiredReplicas, d.Reason)

	in.CurrentReplicas, in.State = d.DesiredReplicas, d.NewState
	in.Triggers[0].Value = 0
	d, _ = core.Decide(in, now.Add(10*time.Minute)) // idle for longer than the cooldown: -> 0
	fmt.Println(d.DesiredReplicas, d.Reason)
	// Output:
	// 1 Activated
	// 5 HPA
	// 0 ScaleToZero
}
