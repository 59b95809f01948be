package scenario_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/bench/scenario"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		wantErr string // substring; "" means valid
	}{
		{name: "valid scale from zero", yaml: "kind: scale-from-zero\nparams: {source: redis, repeats: 3, pollingInterval: 30s}\n"},
		{name: "unknown kind", yaml: "kind: warp\nparams: {}\n", wantErr: `kind: want one of`},
		{name: "unknown key", yaml: "kind: burst\nparams: {sauce: redis}\n", wantErr: `unknown field "sauce"`},
		{name: "bad source", yaml: "kind: scale-from-zero\nparams: {source: sqs, repeats: 1}\n", wantErr: `params: source: want redis or kafka, got "sqs"`},
		{name: "bad duration", yaml: "kind: scale-from-zero\nparams: {source: redis, repeats: 1, cooldown: soon}\n", wantErr: `want a duration such as "1.5s", got "soon"`},
		{name: "numeric duration is seconds", yaml: "kind: scale-from-zero\nparams: {source: redis, repeats: 1, cooldown: 2}\n"},
		{name: "short breaks it", yaml: "kind: scale-from-zero\nparams: {source: redis, repeats: 1}\nshort: {warmup: -1}\n", wantErr: `short: warmup: must not be negative`},
		{name: "burst without load", yaml: "kind: burst\nparams: {source: redis, repeats: 1, targetPerReplica: 5, maxReplicas: 3, itemsPerPodSecond: 1}\n", wantErr: `load: at least one step`},
		{name: "burst step without rate", yaml: "kind: burst\nparams: {source: redis, repeats: 1, targetPerReplica: 5, maxReplicas: 3, itemsPerPodSecond: 1, load: [{rate: 0, for: 1s}]}\n", wantErr: `load[0]: rate and for must be positive`},
		{name: "adapter load needs sizes", yaml: "kind: adapter-load\nparams: {scaledObjects: 10}\n", wantErr: `requests: must be positive`},
		{name: "node scale-up bad size", yaml: "kind: node-scale-up\nparams: {nodes: [0], pods: 1, repeats: 1}\n", wantErr: `nodes[0]: must be positive`},
		{name: "event to running", yaml: "kind: event-to-running\nparams: {variants: [signal-off, signal-on, auto], pods: 20, repeats: 1, maxPendingSeconds: 5}\n"},
		{name: "event to running unknown variant", yaml: "kind: event-to-running\nparams: {variants: [keda], pods: 20, repeats: 1}\n", wantErr: `variants[0]: want one of signal-off, signal-on, auto, got "keda"`},
		{name: "event to running auto needs a target", yaml: "kind: event-to-running\nparams: {variants: [signal-off, auto], pods: 20, repeats: 1}\n", wantErr: `maxPendingSeconds: auto needs 1..3600, got 0`},
		{name: "bad compare mode", yaml: "kind: scale-from-zero\nparams: {source: redis, repeats: 1}\ncompare: {mode: keda}\n", wantErr: `compare.mode: want direct or hpa, got "keda"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scenario.Parse([]byte(tc.yaml))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestEffectiveShortOverridesOnlyWhatItSets(t *testing.T) {
	s, err := scenario.Parse([]byte(`kind: burst
params: {source: redis, repeats: 5, warmup: 2, cooldown: 10s, targetPerReplica: 20, maxReplicas: 20, itemsPerPodSecond: 8, load: [{rate: 100, for: 10s}]}
short: {repeats: 1, cooldown: 1s, load: [{rate: 10, for: 1s}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	full, short := s.Effective(false), s.Effective(true)
	if full.Repeats != 5 || full.Cooldown.D() != 10*time.Second || full.Load[0].Rate != 100 {
		t.Fatalf("full = %+v", full)
	}
	if short.Repeats != 1 || short.Cooldown.D() != time.Second || short.Load[0].Rate != 10 {
		t.Fatalf("short did not override: %+v", short)
	}
	if short.Warmup != 2 || short.TargetPerReplica != 20 || short.Source != "redis" {
		t.Fatalf("short lost the full form's values: %+v", short)
	}
}

// Every shipped scenario file parses and validates in both forms.
func TestShippedScenarios(t *testing.T) {
	files, err := scenario.List(filepath.Join("..", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("want at least 6 scenarios, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := scenario.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != strings.TrimSuffix(filepath.Base(f), ".yaml") || s.Description == "" {
				t.Fatalf("name %q, description %q", s.Name, s.Description)
			}
		})
	}
}
