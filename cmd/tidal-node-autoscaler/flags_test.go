package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/autoscaler/nodes/batch"
)

func parse(t *testing.T, args ...string) (*autoscalerFlags, error) {
	t.Helper()
	fs := flag.NewFlagSet("tidal-node-autoscaler", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f autoscalerFlags
	f.register(fs)
	return &f, fs.Parse(args)
}

func TestDefaultsWakeAndQPS(t *testing.T) {
	f, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if want := (batch.Window{Idle: time.Second, Max: 10 * time.Second}); cfg.Batch != want || cfg.ScanInterval != 10*time.Second {
		t.Errorf("batch %+v, scan %s; want %+v, 10s", cfg.Batch, cfg.ScanInterval, want)
	}
	if f.qps != 50 || f.qpsBurst != 100 {
		t.Errorf("QPS %v burst %d, want 50/100", f.qps, f.qpsBurst)
	}
}

func TestBadFlagsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "negative batch idle", args: []string{"--batch-idle-duration=-1s"}, want: "--batch-idle-duration"},
		{name: "negative unneeded time", args: []string{"--scale-down-unneeded-time=-1s"}, want: "--scale-down-unneeded-time"},
		{name: "negative delay after add", args: []string{"--scale-down-delay-after-add=-5m"}, want: "--scale-down-delay-after-add"},
		{name: "negative batch max", args: []string{"--batch-max-duration=-1s"}, want: "--batch-max-duration"},
		{name: "batch idle not a duration", args: []string{"--batch-idle-duration=soon"}, want: "batch-idle-duration"},
		{name: "zero scan interval", args: []string{"--scan-interval=0s"}, want: "--scan-interval"},
		{name: "zero QPS", args: []string{"--kube-api-qps=0"}, want: "--kube-api-qps"},
		{name: "negative burst", args: []string{"--kube-api-burst=-5"}, want: "--kube-api-burst"},
		{name: "threshold above 1", args: []string{"--scale-down-utilization-threshold=1.5"}, want: "--scale-down-utilization-threshold"},
		{name: "memory limit", args: []string{"--max-memory-total=lots"}, want: "--max-memory-total"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parse(t, tc.args...)
			if err == nil {
				_, err = f.config()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: error %v, want one naming %s", tc.args, err, tc.want)
			}
		})
	}
}

// TestZeroScaleDownWaitsMeanNone: as in Cluster Autoscaler, 0 turns the wait off (it used to fall back to 10m).
func TestZeroScaleDownWaitsMeanNone(t *testing.T) {
	f, err := parse(t, "--scale-down-unneeded-time=0s", "--scale-down-delay-after-add=0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScaleDownDelayAfterAdd >= 0 || cfg.ScaleDown.UnneededTime >= 0 {
		t.Errorf("delay after add %s, unneeded time %s; want none (negative)", cfg.ScaleDownDelayAfterAdd, cfg.ScaleDown.UnneededTime)
	}
	f, err = parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = f.config(); err != nil {
		t.Fatal(err)
	}
	if cfg.ScaleDownDelayAfterAdd != 10*time.Minute || cfg.ScaleDown.UnneededTime != 10*time.Minute {
		t.Errorf("defaults: delay after add %s, unneeded time %s; want 10m each", cfg.ScaleDownDelayAfterAdd, cfg.ScaleDown.UnneededTime)
	}
}
