package podmetrics

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func container(name, cpu, mem string) corev1.Container {
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: req}}
}

func TestPodUsage(t *testing.T) {
	type want struct{ cpuMilli, memBytes int64 }
	cases := []struct {
		name       string
		annotation string // "" means none
		containers []corev1.Container
		want       []want
		wantErr    string
	}{
		{
			name:       "default is half the requests",
			containers: []corev1.Container{container("a", "200m", "64Mi")},
			want:       []want{{100, 32 << 20}},
		},
		{
			name:       "whole pod split by requests",
			annotation: "cpu=300m,memory=96Mi",
			containers: []corev1.Container{container("a", "100m", "32Mi"), container("b", "200m", "64Mi")},
			want:       []want{{100, 32 << 20}, {200, 64 << 20}},
		},
		{
			name:       "whole pod split evenly without requests",
			annotation: "cpu=1",
			containers: []corev1.Container{container("a", "", ""), container("b", "", "")},
			want:       []want{{500, 0}, {500, 0}},
		},
		{
			name:       "resource not given falls back to the default",
			annotation: "cpu=250m",
			containers: []corev1.Container{container("a", "500m", "100Mi")},
			want:       []want{{250, 50 << 20}},
		},
		{
			name:       "per container",
			annotation: "a: cpu=10m, memory=1Mi; b: cpu=20m",
			containers: []corev1.Container{container("a", "100m", "8Mi"), container("b", "100m", "8Mi"), container("c", "100m", "8Mi")},
			want:       []want{{10, 1 << 20}, {20, 4 << 20}, {0, 0}},
		},
		{
			name:       "invalid annotation: default used, error names it",
			annotation: "cpu=lots",
			containers: []corev1.Container{container("a", "100m", "")},
			want:       []want{{50, 0}},
			wantErr:    `annotation tidal.dev/sim-usage: cpu: want a quantity, got "lots"`,
		},
		{
			name:       "unknown resource",
			annotation: "gpu=1",
			containers: []corev1.Container{container("a", "100m", "")},
			want:       []want{{50, 0}},
			wantErr:    `resource: want cpu or memory, got "gpu"`,
		},
		{
			name:       "negative quantity",
			annotation: "cpu=-1",
			containers: []corev1.Container{container("a", "100m", "")},
			want:       []want{{50, 0}},
			wantErr:    "cpu: must not be negative",
		},
		{
			name:       "container given twice",
			annotation: "a: cpu=1; a: cpu=2",
			containers: []corev1.Container{container("a", "100m", "")},
			want:       []want{{50, 0}},
			wantErr:    `container "a" given twice`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{Containers: tc.containers}}
			if tc.annotation != "" {
				pod.Annotations = map[string]string{AnnotationSimUsage: tc.annotation}
			}
			got, err := PodUsage(pod, DefaultFraction)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d containers, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				cpu, mem := got[i].Usage[corev1.ResourceCPU], got[i].Usage[corev1.ResourceMemory]
				if cpu.MilliValue() != w.cpuMilli || mem.Value() != w.memBytes {
					t.Fatalf("container %s: cpu=%dm memory=%d, want cpu=%dm memory=%d", got[i].Name, cpu.MilliValue(), mem.Value(), w.cpuMilli, w.memBytes)
				}
			}
		})
	}
}
