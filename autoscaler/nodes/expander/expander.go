// Package expander chooses which node group to grow when several could help the pending pods. Strategies are
// filters over scale-up options and chain: each keeps the options it likes best and hands the rest to the next,
// and the first survivor wins (as cluster-autoscaler's --expander=priority,least-waste).
//
// Pure: no client, no clock; the random strategy takes its source of randomness as an argument.
package expander

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tidalscale/tidal/autoscaler/nodes/estimator"
)

// Strategy names.
const (
	LeastWaste = "least-waste"
	MostPods   = "most-pods"
	Priority   = "priority"
	Price      = "price"
	Random     = "random"
)

// Option is one possible scale-up: NodeCount nodes of Group would run Pods.
type Option struct {
	Group     string
	NodeCount int
	Pods      []*corev1.Pod
	// Allocatable of one node of the group.
	Allocatable corev1.ResourceList
	// PricePerHour of one node; negative when unknown.
	PricePerHour float64
	// Priority from the NodeGroup spec; used when no priority ConfigMap is configured.
	Priority int32
}

// Filter keeps the best options by one criterion. It never returns an empty slice for non-empty input.
type Filter interface {
	Name() string
	BestOptions(options []Option) []Option
}

// Chain applies filters in order and returns the winning option (the first survivor), or false for no options.
// Options should arrive in a stable order (sorted by group name) so ties are deterministic.
func Chain(filters []Filter, options []Option) (Option, bool) {
	if len(options) == 0 {
		return Option{}, false
	}
	for _, f := range filters {
		if len(options) == 1 {
			break
		}
		options = f.BestOptions(options)
	}
	return options[0], true
}

// Config is what New needs to build a chain.
type Config struct {
	// Names of the strategies in order, e.g. ["priority", "least-waste"].
	Names []string
	// Priorities for the priority strategy, parsed by ParsePriorities; nil uses each NodeGroup's spec.priority.
	Priorities *Priorities
	// Rand for the random strategy; nil seeds one.
	Rand *rand.Rand
}

// New builds the filters named in cfg. Unknown names are an error naming the field.
func New(cfg Config) ([]Filter, error) {
	if len(cfg.Names) == 0 {
		cfg.Names = []string{LeastWaste}
	}
	var out []Filter
	for _, n := range cfg.Names {
		switch strings.TrimSpace(n) {
		case LeastWaste:
			out = append(out, leastWaste{})
		case MostPods:
			out = append(out, mostPods{})
		case Priority:
			out = append(out, priority{p: cfg.Priorities})
		case Price:
			out = append(out, price{})
		case Random:
			r := cfg.Rand
			if r == nil {
				r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			}
			out = append(out, random{r: r})
		default:
			return nil, fmt.Errorf("expander: unknown strategy %q (want one of %s, %s, %s, %s, %s)", n, LeastWaste, MostPods, Priority, Price, Random)
		}
	}
	return out, nil
}

// keepBest keeps options whose score equals the best; higher is better.
func keepBest(options []Option, score func(Option) float64) []Option {
	best := math.Inf(-1)
	scores := make([]float64, len(options))
	for i, o := range options {
		scores[i] = score(o)
		if scores[i] > best {
			best = scores[i]
		}
	}
	var out []Option
	for i, o := range options {
		if scores[i] >= best-1e-9 {
			out = append(out, o)
		}
	}
	return out
}

// leastWaste prefers the option leaving the smallest fraction of the new nodes' CPU and memory unrequested,
// as cluster-autoscaler's least-waste: score = -(wastedCPU + wastedMemory)/2.
type leastWaste struct{}

func (leastWaste) Name() string { return LeastWaste }

func (leastWaste) BestOptions(options []Option) []Option {
	return keepBest(options, func(o Option) float64 { return -Waste(o) })
}

// Waste is the mean of the unrequested CPU and memory fractions of the option's new nodes.
func Waste(o Option) float64 {
	if o.NodeCount == 0 {
		return 1
	}
	var reqCPU, reqMem int64
	for _, p := range o.Pods {
		req := estimator.PodRequests(p)
		reqCPU += req.Cpu().MilliValue()
		reqMem += req.Memory().Value()
	}
	totalCPU := o.Allocatable.Cpu().MilliValue() * int64(o.NodeCount)
	totalMem := o.Allocatable.Memory().Value() * int64(o.NodeCount)
	frac := func(req, total int64) float64 {
		if total <= 0 {
			return 1
		}
		return float64(total-req) / float64(total)
	}
	return (frac(reqCPU, totalCPU) + frac(reqMem, totalMem)) / 2
}

// mostPods prefers the option that schedules the most pods.
type mostPods struct{}

func (mostPods) Name() string { return MostPods }

func (mostPods) BestOptions(options []Option) []Option {
	return keepBest(options, func(o Option) float64 { return float64(len(o.Pods)) })
}

// price prefers the lowest price per scheduled pod; options with an unknown price rank last.
type price struct{}

func (price) Name() string { return Price }

func (price) BestOptions(options []Option) []Option {
	return keepBest(options, func(o Option) float64 {
		if o.PricePerHour < 0 || len(o.Pods) == 0 {
			return math.Inf(-1) + 1 // below every known price, equal among unknowns
		}
		return -o.PricePerHour * float64(o.NodeCount) / float64(len(o.Pods))
	})
}

// random picks one option uniformly.
type random struct{ r *rand.Rand }

func (random) Name() string { return Random }

func (r random) BestOptions(options []Option) []Option {
	i := r.r.IntN(len(options))
	return options[i : i+1]
}

// priority prefers the highest priority: from the ConfigMap's regex tiers when configured, else the NodeGroup's
// spec.priority.
type priority struct{ p *Priorities }

func (priority) Name() string { return Priority }

func (p priority) BestOptions(options []Option) []Option {
	return keepBest(options, func(o Option) float64 {
		if p.p == nil {
			return float64(o.Priority)
		}
		v, ok := p.p.Of(o.Group)
		if !ok {
			return math.Inf(-1) + 1
		}
		return float64(v)
	})
}

// Priorities are cluster-autoscaler's priority-expander tiers: a priority maps to regular expressions over
// node group names; a group takes the highest priority whose expression matches it fully.
type Priorities struct {
	tiers []tier // highest first
}

type tier struct {
	priority int
	patterns []*regexp.Regexp
}

// ErrNoPriorities is returned by ParsePriorities for a ConfigMap without the "priorities" key.
var ErrNoPriorities = errors.New(`priority ConfigMap has no "priorities" key`)

// ParsePriorities reads the "priorities" value of a ConfigMap in cluster-autoscaler's format:
//
//	10:
//	  - .*-spot-.*
//	50:
//	  - ^gpu$
func ParsePriorities(data map[string]string) (*Priorities, error) {
	raw, ok := data["priorities"]
	if !ok {
		return nil, ErrNoPriorities
	}
	var parsed map[string][]string
	if err := yaml.Unmarshal([]byte(raw), &parsed); err != nil {
		return nil, fmt.Errorf("priority ConfigMap: priorities: %w", err)
	}
	p := &Priorities{}
	for key, exprs := range parsed {
		prio, err := strconv.Atoi(key)
		if err != nil {
			return nil, fmt.Errorf("priority ConfigMap: priorities: key %q: want integer", key)
		}
		t := tier{priority: prio}
		for _, e := range exprs {
			re, err := regexp.Compile("^(?:" + e + ")$")
			if err != nil {
				return nil, fmt.Errorf("priority ConfigMap: priorities[%d]: %q: %w", prio, e, err)
			}
			t.patterns = append(t.patterns, re)
		}
		p.tiers = append(p.tiers, t)
	}
	sort.Slice(p.tiers, func(i, j int) bool { return p.tiers[i].priority > p.tiers[j].priority })
	return p, nil
}

// Of returns the priority of a group, false when no expression matches it.
func (p *Priorities) Of(group string) (int, bool) {
	for _, t := range p.tiers {
		for _, re := range t.patterns {
			if re.MatchString(group) {
				return t.priority, true
			}
		}
	}
	return 0, false
}
