package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/bench/result"
	"github.com/tidalscale/tidal/bench/scenario"
)

func writeResult(t *testing.T, dir string, at time.Time, p99 time.Duration) string {
	t.Helper()
	res := &result.Result{
		SchemaVersion: result.SchemaVersion, Scenario: "scale-from-zero-redis", Kind: scenario.KindScaleFromZero, StartedAt: at,
		TidalVersion: "test", Machine: result.ReadMachine(), Warmup: result.Warmup{Note: "none"},
		Runs: []*result.Run{{Autoscaler: "tidal-direct", Metrics: []*result.Metric{
			result.NewMetric("push-to-replicas", "a", "b", []time.Duration{10 * time.Millisecond, p99})}}},
	}
	files, err := write(res, dir)
	if err != nil {
		t.Fatal(err)
	}
	return files.JSON
}

// baseline writes bench/baseline.json from results; compare passes within the limit and fails past it.
func TestBaselineAndCompareCommands(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	base := writeResult(t, dir, now, 100*time.Millisecond)
	same := writeResult(t, dir, now.Add(time.Second), 110*time.Millisecond)
	worse := writeResult(t, dir, now.Add(2*time.Second), 150*time.Millisecond)
	baseline := filepath.Join(dir, "baseline.json")
	if err := writeBaseline([]string{"--out", baseline, base}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := compareBaseline([]string{"--baseline", baseline, same}, &out); err != nil {
		t.Fatalf("+10 %%: %v\n%s", err, out.String())
	}
	out.Reset()
	err := compareBaseline([]string{"--baseline", baseline, worse}, &out)
	if !errors.Is(err, errRegressed) || !strings.Contains(out.String(), "REGRESSED") {
		t.Fatalf("+50 %%: %v\n%s", err, out.String())
	}
	if err := compareBaseline([]string{"--baseline", baseline, "--max-p99-rise", "60", worse}, &out); err != nil {
		t.Fatalf("+50 %% with a 60 %% limit: %v", err)
	}
	if err := compareBaseline([]string{"--baseline", baseline, "--max-p99-rise", "-1", worse}, &out); err == nil || !strings.Contains(err.Error(), "--max-p99-rise") {
		t.Fatalf("negative limit: %v", err)
	}
	if err := compareBaseline([]string{"--baseline", baseline}, &out); err == nil {
		t.Fatal("no result files: no error")
	}
}
