package core

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// ScalingModifiers is KEDA's advanced.scalingModifiers: a formula over trigger values that replaces the
// triggers with one composite metric.
type ScalingModifiers struct {
	// Formula is an expr-lang expression over trigger names, e.g. "(queue + backlog) / 2".
	Formula string
	// Target is the composite metric's target (KEDA's target, parsed).
	Target float64
	// ActivationTarget: the ScaledObject is active when the formula result is above it (default 0).
	ActivationTarget float64
	// MetricType is AverageValue (default) or Value.
	MetricType autoscalingv2.MetricTargetType
	// Compiled optionally carries the formula compiled with CompileFormula for the same trigger names, so that a
	// caller evaluating many decisions does not recompile; nil compiles on every call.
	Compiled *Formula
}

// Formula is a compiled scalingModifiers formula.
type Formula struct {
	source  string
	program *vm.Program
	names   []string
}

// CompileFormula compiles a formula whose variables are the given trigger names. Referring to a name that is not
// a trigger, or a formula whose result is not a number, is an error naming the formula.
func CompileFormula(formula string, triggerNames []string) (*Formula, error) {
	if strings.TrimSpace(formula) == "" {
		return nil, errors.New("scalingModifiers.formula: must not be empty")
	}
	env := make(map[string]float64, len(triggerNames))
	for _, n := range triggerNames {
		env[n] = 0
	}
	program, err := expr.Compile(formula, expr.Env(env), expr.AsFloat64())
	if err != nil {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range env {
				if !yield(n) {
					return
				}
			}
		})
		return nil, fmt.Errorf("scalingModifiers.formula %q: %w (the formula may use only numbers, operators, builtin functions and the trigger names %s)",
			formula, err, strings.Join(names, ", "))
	}
	return &Formula{source: formula, program: program, names: slices.Clone(triggerNames)}, nil
}

// Source returns the formula text.
func (f *Formula) Source() string { return f.source }

// Eval runs the formula on trigger values keyed by trigger name. A NaN or infinite result is an error; a negative
// result is clamped to 0 (the composite metric, like every metric, is non-negative).
func (f *Formula) Eval(values map[string]float64) (float64, error) {
	for _, n := range f.names {
		if _, ok := values[n]; !ok {
			return 0, fmt.Errorf("scalingModifiers.formula %q: no value for trigger %q", f.source, n)
		}
	}
	out, err := expr.Run(f.program, values)
	if err != nil {
		return 0, fmt.Errorf("scalingModifiers.formula %q: %w", f.source, err)
	}
	v, ok := out.(float64)
	if !ok {
		return 0, fmt.Errorf("scalingModifiers.formula %q: result is %T, want a number", f.source, out)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("scalingModifiers.formula %q: result is %v, want a finite number", f.source, v)
	}
	return max(v, 0), nil
}

// compatible reports whether f was compiled for exactly these trigger names.
func (f *Formula) compatible(names []string) bool {
	return slices.Equal(f.names, names)
}
