package core

import (
	"fmt"
	"math"
)

// Job scaling strategies and multi-trigger calculations, as in KEDA's ScaledJob.
const (
	JobStrategyDefault  = "default"
	JobStrategyCustom   = "custom"
	JobStrategyAccurate = "accurate"
	JobStrategyEager    = "eager"

	JobCalculationMax = "max"
	JobCalculationMin = "min"
	JobCalculationAvg = "avg"
	JobCalculationSum = "sum"
)

// JobMetric is one ScaledJob trigger's latest sample.
type JobMetric struct {
	// QueueLength is the metric value (pending events); Target is the events one Job handles.
	QueueLength float64
	Target      float64
	Active      bool
}

// JobInput is a ScaledJob's spec and observed state, as plain values.
type JobInput struct {
	Metrics []JobMetric
	// Calculation combines several triggers: max (default), min, avg or sum.
	Calculation string
	// Strategy is scalingStrategy.strategy: default, custom, accurate or eager.
	Strategy string
	// CustomDeduction and CustomRunningPercentage are the custom strategy's parameters.
	CustomDeduction         int64
	CustomRunningPercentage float64
	// Running counts Jobs that have not finished; Pending those whose pods are not yet running (accurate, eager).
	Running, Pending int64
	MinReplicas      int64
	MaxReplicas      int64
}

// JobDecision says how many Jobs to create now.
type JobDecision struct {
	Active bool
	// QueueLength and MaxScale are the combined metric and the Jobs it asks for (capped at MaxReplicas).
	QueueLength float64
	MaxScale    int64
	// Create is the number of new Jobs.
	Create int64
}

// DecideJobs applies KEDA's ScaledJob arithmetic: each trigger asks for ceil(queue/target) Jobs (capped at
// maxReplicaCount), triggers combine by Calculation, the strategy subtracts what already runs, and the result
// keeps the Job count within [minReplicaCount, maxReplicaCount].
func DecideJobs(in JobInput) (JobDecision, error) {
	if err := in.validate(); err != nil {
		return JobDecision{}, err
	}
	var d JobDecision
	if len(in.Metrics) > 0 {
		queues := make([]float64, 0, len(in.Metrics))
		scales := make([]int64, 0, len(in.Metrics))
		for _, m := range in.Metrics {
			d.Active = d.Active || m.Active
			q := max(m.QueueLength, 0)
			queues = append(queues, q)
			scales = append(scales, min(in.MaxReplicas, ceilRatio(q, m.Target)))
		}
		d.QueueLength, d.MaxScale = combineJobMetrics(in.Calculation, queues, scales)
		d.MaxScale = min(d.MaxScale, in.MaxReplicas)
	}
	running := in.Running
	var effective int64
	if d.Active {
		switch in.Strategy {
		case JobStrategyCustom:
			effective = d.MaxScale - in.CustomDeduction - int64(float64(running)*in.CustomRunningPercentage)
		case JobStrategyAccurate:
			if d.MaxScale+running > in.MaxReplicas {
				effective = in.MaxReplicas - running
			} else {
				effective = d.MaxScale - in.Pending
			}
		case JobStrategyEager:
			effective = min(in.MaxReplicas-running-in.Pending, d.MaxScale)
		default:
			effective = d.MaxScale - running
		}
	}
	effective = max(effective, 0)
	// Never above maxReplicaCount running Jobs, never below minReplicaCount.
	effective = min(effective, max(in.MaxReplicas-running, 0))
	if running+effective < in.MinReplicas {
		effective = in.MinReplicas - running
	}
	d.Create = effective
	return d, nil
}

func ceilRatio(q, target float64) int64 {
	if target <= 0 {
		return 0
	}
	r := math.Ceil(q / target)
	if r > math.MaxInt32 || math.IsNaN(r) {
		return math.MaxInt32
	}
	return int64(r)
}

func combineJobMetrics(calc string, queues []float64, scales []int64) (float64, int64) {
	switch calc {
	case JobCalculationMin:
		i := 0
		for j := range scales {
			if scales[j] < scales[i] {
				i = j
			}
		}
		return queues[i], scales[i]
	case JobCalculationAvg, JobCalculationSum:
		var q float64
		var s int64
		for i := range queues {
			q += queues[i]
			s += scales[i]
		}
		if calc == JobCalculationAvg {
			n := float64(len(queues))
			return q / n, int64(math.Ceil(float64(s) / n))
		}
		return q, s
	default:
		i := 0
		for j := range scales {
			if scales[j] > scales[i] {
				i = j
			}
		}
		return queues[i], scales[i]
	}
}

func (in *JobInput) validate() error {
	switch {
	case in.MaxReplicas < 0:
		return fmt.Errorf("maxReplicaCount: must not be negative, got %d", in.MaxReplicas)
	case in.MinReplicas < 0 || in.MinReplicas > in.MaxReplicas:
		return fmt.Errorf("minReplicaCount: must be within [0, maxReplicaCount=%d], got %d", in.MaxReplicas, in.MinReplicas)
	case in.Running < 0 || in.Pending < 0:
		return fmt.Errorf("running/pending job counts must not be negative")
	case in.CustomRunningPercentage < 0 || math.IsNaN(in.CustomRunningPercentage):
		return fmt.Errorf("scalingStrategy.customScalingRunningJobPercentage: must be a non-negative number")
	}
	switch in.Strategy {
	case "", JobStrategyDefault, JobStrategyCustom, JobStrategyAccurate, JobStrategyEager:
	default:
		return fmt.Errorf("scalingStrategy.strategy: want default, custom, accurate or eager, got %q", in.Strategy)
	}
	switch in.Calculation {
	case "", JobCalculationMax, JobCalculationMin, JobCalculationAvg, JobCalculationSum:
	default:
		return fmt.Errorf("scalingStrategy.multipleScalersCalculation: want max, min, avg or sum, got %q", in.Calculation)
	}
	for i, m := range in.Metrics {
		if math.IsNaN(m.QueueLength) || math.IsInf(m.QueueLength, 0) || !(m.Target >= 0) || math.IsInf(m.Target, 0) {
			return fmt.Errorf("triggers[%d]: queue length and target must be finite numbers, target non-negative", i)
		}
	}
	return nil
}
