// Command tidalctl is Tidal's kubectl-style command line:
//
//	tidalctl status [NAME...] [-n NS | -A]     ScaledObjects with target, replicas, activity and trigger samples
//	tidalctl explain NAME [-n NS]              why a ScaledObject has the replica count it has
//	tidalctl convert -f keda.yaml [--to keda]  KEDA manifests to Tidal (and back)
//	tidalctl dev up [tidal-dev flags]          start the embedded dev cluster (runs tidal-dev up)
//	tidalctl version
//
// It honours KUBECONFIG, --kubeconfig, --context and -n like kubectl, and prints -o table|json|yaml. Errors are
// one line on stderr with a non-zero exit code: 2 for bad usage, 1 for everything else.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tidalscale/tidal/cmd/tidalctl/tablefmt"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, now: time.Now})
	stop()
	os.Exit(code)
}

// streams is the command's environment: standard streams and the clock.
type streams struct {
	in       io.Reader
	out, err io.Writer
	now      func() time.Time
}

// usageError marks bad flags or arguments (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, s streams) int {
	root := newRoot(s)
	root.SetArgs(args)
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(s.err, "tidalctl: "+tablefmt.OneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return 2
	}
	return 1
}

// isCobraUsage recognizes cobra's own argument errors, which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires ", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
