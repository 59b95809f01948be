package expander_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tidalscale/tidal/autoscaler/nodes/expander"
)

func pods(n int, cpu, mem string) []*corev1.Pod {
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		}}}}}
	}
	return out
}

func alloc(cpu, mem string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
}

// Crafted options: 8 one-CPU/2Gi pods.
//   - "big":    one 16-CPU/64Gi node, $0.80: waste (8/16 + 48/64)/2 = 0.625
//   - "medium": two 3-CPU/6Gi nodes, $0.50 each: waste (0 + 0)/2 = 0, but only 6 pods fit
//   - "small":  four 2-CPU/8Gi nodes, $0.10 each, priority 10: waste (0 + 16/32)/2 = 0.25
func crafted() []expander.Option {
	return []expander.Option{
		{Group: "big", NodeCount: 1, Pods: pods(8, "1", "2Gi"), Allocatable: alloc("16", "64Gi"), PricePerHour: 0.8, Priority: 1},
		{Group: "medium", NodeCount: 2, Pods: pods(6, "1", "2Gi")[:6], Allocatable: alloc("3", "6Gi"), PricePerHour: 0.5, Priority: 5},
		{Group: "small", NodeCount: 4, Pods: pods(8, "1", "2Gi"), Allocatable: alloc("2", "8Gi"), PricePerHour: 0.1, Priority: 10},
	}
}

func TestStrategies(t *testing.T) {
	cases := []struct {
		name       string
		strategies []string
		options    []expander.Option
		priorities map[string]string
		want       string
	}{
		{name: "least-waste picks the fullest nodes", strategies: []string{expander.LeastWaste}, options: crafted(), want: "medium"},
		{name: "most-pods ignores waste", strategies: []string{expander.MostPods}, options: crafted(), want: "big"},
		{name: "most-pods tie broken by least-waste", strategies: []string{expander.MostPods, expander.LeastWaste}, options: crafted(), want: "small"},
		{name: "price per pod: 4x0.10/8 beats 0.80/8 and 2x0.50/6", strategies: []string{expander.Price}, options: crafted(), want: "small"},
		{name: "priority from spec", strategies: []string{expander.Priority}, options: crafted(), want: "small"},
		{name: "priority from ConfigMap regexes", strategies: []string{expander.Priority}, options: crafted(),
			priorities: map[string]string{"priorities": "50:\n  - big\n10:\n  - sm.*\n"}, want: "big"},
		{name: "priority ConfigMap: unmatched groups rank last, tie to least-waste", strategies: []string{expander.Priority, expander.LeastWaste}, options: crafted(),
			priorities: map[string]string{"priorities": "5:\n  - big\n  - small\n"}, want: "small"},
		{name: "unknown price ranks last", strategies: []string{expander.Price}, options: []expander.Option{
			{Group: "unknown", NodeCount: 1, Pods: pods(1, "1", "1Gi"), Allocatable: alloc("1", "1Gi"), PricePerHour: -1},
			{Group: "costly", NodeCount: 1, Pods: pods(1, "1", "1Gi"), Allocatable: alloc("1", "1Gi"), PricePerHour: 9},
		}, want: "costly"},
		{name: "single option wins without filtering", strategies: []string{expander.Random}, options: crafted()[:1], want: "big"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := expander.Config{Names: tc.strategies, Rand: rand.New(rand.NewPCG(1, 2))}
			if tc.priorities != nil {
				p, err := expander.ParsePriorities(tc.priorities)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Priorities = p
			}
			filters, err := expander.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := expander.Chain(filters, tc.options)
			if !ok || got.Group != tc.want {
				t.Fatalf("chose %q (ok=%v), want %q", got.Group, ok, tc.want)
			}
		})
	}
}

func TestRandomChoosesEveryOption(t *testing.T) {
	filters, err := expander.New(expander.Config{Names: []string{expander.Random}, Rand: rand.New(rand.NewPCG(7, 7))})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i := 0; i < 300; i++ {
		got, _ := expander.Chain(filters, crafted())
		seen[got.Group]++
	}
	for _, o := range crafted() {
		if seen[o.Group] < 50 {
			t.Errorf("random chose %q %d times of 300, want roughly 100", o.Group, seen[o.Group])
		}
	}
}

func TestWaste(t *testing.T) {
	got := expander.Waste(crafted()[0])
	if got < 0.624 || got > 0.626 {
		t.Fatalf("Waste(big) = %v, want 0.625", got)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{name: "unknown strategy", run: func() error { _, err := expander.New(expander.Config{Names: []string{"cheapest"}}); return err }, want: `unknown strategy "cheapest"`},
		{name: "missing key", run: func() error { _, err := expander.ParsePriorities(map[string]string{}); return err }, want: `no "priorities" key`},
		{name: "non-integer priority", run: func() error {
			_, err := expander.ParsePriorities(map[string]string{"priorities": "high:\n  - a\n"})
			return err
		}, want: `key "high": want integer`},
		{name: "bad regex", run: func() error {
			_, err := expander.ParsePriorities(map[string]string{"priorities": "1:\n  - '('\n"})
			return err
		}, want: `priorities[1]: "("`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, ok := expander.Chain(nil, nil); ok {
		t.Fatal("Chain of no options reported a winner")
	}
}
