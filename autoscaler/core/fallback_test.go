package core

import (
	"strings"
	"testing"
)

func TestFallbackReplicas(t *testing.T) {
	cases := []struct {
		name     string
		behavior FallbackBehavior
		current  int32
		want     int32
	}{
		{"default is static", "", 9, 5},
		{"static", FallbackStatic, 9, 5},
		{"currentReplicas", FallbackCurrentReplicas, 9, 9},
		{"currentReplicasIfHigher with higher current", FallbackCurrentReplicasIfHigher, 9, 9},
		{"currentReplicasIfHigher with lower current", FallbackCurrentReplicasIfHigher, 2, 5},
		{"currentReplicasIfLower with lower current", FallbackCurrentReplicasIfLower, 2, 2},
		{"currentReplicasIfLower with higher current", FallbackCurrentReplicasIfLower, 9, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &Fallback{FailureThreshold: 3, Replicas: 5, Behavior: tc.behavior}
			if got := f.ReplicasFor(tc.current); got != tc.want {
				t.Fatalf("ReplicasFor(%d) = %d, want %d", tc.current, got, tc.want)
			}
		})
	}
}

func TestFallbackTriggered(t *testing.T) {
	f := &Fallback{FailureThreshold: 3, Replicas: 5}
	for failures, want := range map[int32]bool{0: false, 3: false, 4: true, 100: true} {
		if got := f.Triggered(failures); got != want {
			t.Errorf("Triggered(%d) = %v, want %v", failures, got, want)
		}
	}
	var none *Fallback
	if none.Triggered(100) {
		t.Error("nil fallback triggered")
	}
}

func TestFallbackValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Fallback
		want string
	}{
		{"negative threshold", Fallback{FailureThreshold: -1}, "fallback.failureThreshold"},
		{"negative replicas", Fallback{Replicas: -1}, "fallback.replicas"},
		{"unknown behavior", Fallback{Behavior: "sometimes"}, "fallback.behavior"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.f.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}
