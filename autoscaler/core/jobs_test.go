package core

import (
	"strings"
	"testing"
)

func TestDecideJobs(t *testing.T) {
	q := func(queue, target float64) JobMetric {
		return JobMetric{QueueLength: queue, Target: target, Active: queue > 0}
	}
	cases := []struct {
		name       string
		in         JobInput
		wantCreate int64
		wantMax    int64
	}{
		{"default: one job per target", JobInput{Metrics: []JobMetric{q(10, 1)}, MaxReplicas: 100}, 10, 10},
		{"default: running jobs are subtracted", JobInput{Metrics: []JobMetric{q(10, 1)}, Running: 4, MaxReplicas: 100}, 6, 10},
		{"default: rounds up", JobInput{Metrics: []JobMetric{q(11, 5)}, MaxReplicas: 100}, 3, 3},
		{"capped at maxReplicaCount", JobInput{Metrics: []JobMetric{q(500, 1)}, MaxReplicas: 20}, 20, 20},
		{"running count caps creation", JobInput{Metrics: []JobMetric{q(500, 1)}, Running: 15, MaxReplicas: 20}, 5, 20},
		{"inactive creates nothing", JobInput{Metrics: []JobMetric{q(0, 1)}, MaxReplicas: 20}, 0, 0},
		{"inactive keeps minReplicaCount", JobInput{Metrics: []JobMetric{q(0, 1)}, Running: 1, MinReplicas: 3, MaxReplicas: 20}, 2, 0},
		{"custom: deduction and running percentage", JobInput{Metrics: []JobMetric{q(10, 1)}, Strategy: JobStrategyCustom,
			CustomDeduction: 1, CustomRunningPercentage: 0.5, Running: 4, MaxReplicas: 100}, 7, 10},
		{"accurate: pending subtracted", JobInput{Metrics: []JobMetric{q(10, 1)}, Strategy: JobStrategyAccurate, Running: 4, Pending: 3, MaxReplicas: 100}, 7, 10},
		{"accurate: near max", JobInput{Metrics: []JobMetric{q(10, 1)}, Strategy: JobStrategyAccurate, Running: 15, MaxReplicas: 20}, 5, 10},
		{"eager: fills up to max", JobInput{Metrics: []JobMetric{q(10, 1)}, Strategy: JobStrategyEager, Running: 5, Pending: 2, MaxReplicas: 20}, 10, 10},
		{"eager: bounded by room", JobInput{Metrics: []JobMetric{q(10, 1)}, Strategy: JobStrategyEager, Running: 15, Pending: 2, MaxReplicas: 20}, 3, 10},
		{"max of two triggers", JobInput{Metrics: []JobMetric{q(4, 1), q(30, 5)}, MaxReplicas: 100}, 6, 6},
		{"min of two triggers", JobInput{Metrics: []JobMetric{q(4, 1), q(30, 5)}, Calculation: JobCalculationMin, MaxReplicas: 100}, 4, 4},
		{"avg of two triggers", JobInput{Metrics: []JobMetric{q(4, 1), q(30, 5)}, Calculation: JobCalculationAvg, MaxReplicas: 100}, 5, 5},
		{"sum of two triggers", JobInput{Metrics: []JobMetric{q(4, 1), q(30, 5)}, Calculation: JobCalculationSum, MaxReplicas: 100}, 10, 10},
		{"negative queue counts as empty", JobInput{Metrics: []JobMetric{{QueueLength: -5, Target: 1, Active: false}}, MaxReplicas: 10}, 0, 0},
		{"zero target asks for nothing", JobInput{Metrics: []JobMetric{{QueueLength: 5, Target: 0, Active: true}}, MaxReplicas: 10}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := DecideJobs(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Create != tc.wantCreate || d.MaxScale != tc.wantMax {
				t.Fatalf("create=%d maxScale=%d, want create=%d maxScale=%d", d.Create, d.MaxScale, tc.wantCreate, tc.wantMax)
			}
			if d.Create+tc.in.Running > max(tc.in.MaxReplicas, tc.in.Running) {
				t.Fatalf("would run %d jobs, above max %d", d.Create+tc.in.Running, tc.in.MaxReplicas)
			}
		})
	}
}

func TestDecideJobsRejectsBadInput(t *testing.T) {
	cases := map[string]JobInput{
		"maxReplicaCount":                   {MaxReplicas: -1},
		"minReplicaCount":                   {MinReplicas: 5, MaxReplicas: 2},
		"scalingStrategy.strategy":          {Strategy: "greedy", MaxReplicas: 2},
		"multipleScalersCalculation":        {Calculation: "median", MaxReplicas: 2},
		"customScalingRunningJobPercentage": {CustomRunningPercentage: -1, MaxReplicas: 2},
		"triggers[0]":                       {Metrics: []JobMetric{{QueueLength: 1, Target: -1}}, MaxReplicas: 2},
	}
	for field, in := range cases {
		t.Run(field, func(t *testing.T) {
			_, err := DecideJobs(in)
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Fatalf("want an error naming %s, got %v", field, err)
			}
		})
	}
}

func FuzzDecideJobs(f *testing.F) {
	f.Add(10.0, 1.0, int64(2), int64(1), int64(0), int64(20), "eager", 0.5)
	f.Fuzz(func(t *testing.T, queue, target float64, running, pending, minR, maxR int64, strategy string, pct float64) {
		in := JobInput{Metrics: []JobMetric{{QueueLength: queue, Target: target, Active: queue > 0}}, Strategy: strategy,
			CustomRunningPercentage: pct, Running: running, Pending: pending, MinReplicas: minR, MaxReplicas: maxR}
		d, err := DecideJobs(in)
		if err != nil {
			return
		}
		if d.Create < 0 {
			t.Fatalf("negative creation %d", d.Create)
		}
		if running+d.Create > max(maxR, running, minR) {
			t.Fatalf("running %d + create %d above max %d", running, d.Create, maxR)
		}
	})
}
