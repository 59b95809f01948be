package core

import (
	"math"
	"strings"
	"testing"
)

func TestFormula(t *testing.T) {
	names := []string{"queue", "backlog", "rate"}
	values := map[string]float64{"queue": 10, "backlog": 30, "rate": 4}
	cases := []struct {
		name    string
		formula string
		want    float64
		wantErr string // at compile or evaluation
	}{
		{name: "sum of triggers", formula: "queue + backlog", want: 40},
		{name: "average", formula: "(queue + backlog) / 2", want: 20},
		{name: "integer literal result", formula: "7", want: 7},
		{name: "builtin max", formula: "max(queue, backlog, rate)", want: 30},
		{name: "conditional", formula: "queue > 5 ? backlog : rate", want: 30},
		{name: "negative result clamps to zero", formula: "queue - backlog", want: 0},
		{name: "unknown trigger name", formula: "queue + missing", wantErr: "unknown name missing"},
		{name: "boolean result", formula: "queue > 5", wantErr: "scalingModifiers.formula"},
		{name: "string result", formula: `"ten"`, wantErr: "scalingModifiers.formula"},
		{name: "syntax error", formula: "queue +", wantErr: "scalingModifiers.formula"},
		{name: "empty formula", formula: "  ", wantErr: "must not be empty"},
		{name: "division by zero is not finite", formula: "queue / (rate - 4)", wantErr: "want a finite number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := CompileFormula(tc.formula, names)
			var got float64
			if err == nil {
				got, err = f.Eval(values)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("result = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFormulaErrorNamesKnownTriggers(t *testing.T) {
	_, err := CompileFormula("a + c", []string{"b", "a"})
	if err == nil || !strings.Contains(err.Error(), "a, b") || !strings.Contains(err.Error(), `"a + c"`) {
		t.Fatalf("error = %v, want the formula and the trigger names", err)
	}
}

func TestFormulaMissingValue(t *testing.T) {
	f, err := CompileFormula("a + b", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Eval(map[string]float64{"a": 1}); err == nil || !strings.Contains(err.Error(), `no value for trigger "b"`) {
		t.Fatalf("error = %v", err)
	}
	if v, err := f.Eval(map[string]float64{"a": math.MaxFloat64, "b": math.MaxFloat64}); err == nil {
		t.Fatalf("overflowing sum evaluated to %v without error", v)
	}
}
