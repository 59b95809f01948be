package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/wait"
)

// component is one control-plane part running in a goroutine with its own context.
type component struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// run starts fn in a goroutine with a context that only Stop cancels. If fn returns before that, the cluster is
// reported as failed.
func (c *Cluster) run(ctx context.Context, name string, fn func(ctx context.Context) error) *component {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	comp := &component{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(comp.done)
		comp.err = fn(cctx)
		if cctx.Err() == nil {
			err := comp.err
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			select {
			case c.failed <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
	return comp
}

func (comp *component) stop(ctx context.Context, logger *zap.Logger) error {
	comp.cancel()
	t := time.NewTimer(componentStopTimeout)
	defer t.Stop()
	select {
	case <-comp.done:
		logger.Debug("stopped", zap.String("component", comp.name))
		if comp.err != nil && !errors.Is(comp.err, context.Canceled) {
			return fmt.Errorf("%s: %w", comp.name, comp.err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s: not stopped after %s", comp.name, componentStopTimeout)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", comp.name, ctx.Err())
	}
}

// waitHealthy polls check until it succeeds, a component fails, or ctx ends.
func (c *Cluster) waitHealthy(ctx context.Context, what string, check func(ctx context.Context) error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-c.failed:
			return false, err
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		last = check(pctx)
		return last == nil, nil
	})
	if err != nil {
		if last != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, err, last)
		}
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

// componentHealthz checks a component's /healthz on its loopback secure port. /healthz is always allowed without
// authentication; the component's self-signed serving certificate is not verified (loopback only).
func componentHealthz(port int) func(ctx context.Context) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health probe of a self-signed component
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}
