package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tidalscale/tidal/bench/result"
)

// errRegressed is compare's answer when a p99 rose past the limit (exit status 1).
var errRegressed = errors.New("p99 regressed against the baseline")

// writeBaseline makes bench/baseline.json from results (run `make bench` on a quiet machine first).
func writeBaseline(args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	out := fs.String("out", "bench/baseline.json", "the baseline file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	results, err := readResults(fs.Args())
	if err != nil {
		return err
	}
	b, err := result.NewBaseline(results)
	if err != nil {
		return err
	}
	if err := b.Write(*out); err != nil {
		return err
	}
	fmt.Printf("%s: %d figures from %d results\n", *out, len(b.Figures), len(results))
	return nil
}

// compareBaseline sets results against the baseline and fails when any p99 rose by more than --max-p99-rise %.
func compareBaseline(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	path := fs.String("baseline", "bench/baseline.json", "the baseline (tidal-bench baseline writes it)")
	maxRise := fs.Float64("max-p99-rise", 20, "percent a p99 may rise over the baseline's before compare fails")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *maxRise < 0 {
		return fmt.Errorf("--max-p99-rise: %v is negative", *maxRise)
	}
	b, err := result.ReadBaseline(*path)
	if err != nil {
		return err
	}
	results, err := readResults(fs.Args())
	if err != nil {
		return err
	}
	c := b.Compare(results, *maxRise/100)
	fmt.Fprint(w, c.Markdown())
	if len(c.Verdicts) == 0 {
		return fmt.Errorf("no figure of these results is in %s (same scenario, form, autoscaler and metric)", *path)
	}
	if r := c.Regressions(); len(r) > 0 {
		return fmt.Errorf("%w: %d of %d figures", errRegressed, len(r), len(c.Verdicts))
	}
	return nil
}

func readResults(paths []string) ([]*result.Result, error) {
	if len(paths) == 0 {
		return nil, errors.New("name at least one result file (bench/results/<scenario>-<date>.json)")
	}
	var out []*result.Result
	for _, p := range paths {
		r, err := result.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
