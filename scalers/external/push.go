package external

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
)

// Backoff between StreamIsActive reconnects, as in KEDA: it starts at minBackoff, doubles up to maxBackoff, and
// starts over once a stream delivered a message or ended cleanly.
const (
	minBackoff = 2 * time.Second
	maxBackoff = time.Minute
)

// PushScaler is an external-push trigger: an external trigger that also watches StreamIsActive.
type PushScaler struct {
	*Scaler
	minBackoff, maxBackoff time.Duration
}

var _ scalers.PushScaler = (*PushScaler)(nil)

// NewPush builds an external-push trigger.
func NewPush(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	s, err := build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &PushScaler{Scaler: s, minBackoff: minBackoff, maxBackoff: maxBackoff}, nil
}

// Watch keeps a StreamIsActive stream open and makes a non-blocking send on changed for every message whose
// result is true. A broken stream is reopened with backoff until ctx is done. Watch returns an error (so the
// caller polls instead) only when the scaler does not implement StreamIsActive.
func (p *PushScaler) Watch(ctx context.Context, changed chan<- struct{}) error {
	backoff := p.minBackoff
	for {
		progressed, err := p.streamOnce(ctx, changed)
		if ctx.Err() != nil {
			return nil
		}
		if status.Code(err) == codes.Unimplemented {
			return p.rpcError("StreamIsActive (not implemented; polling instead)", err)
		}
		if progressed {
			backoff = p.minBackoff
		}
		p.log.Info("StreamIsActive ended; reconnecting",
			zap.Duration("backoff", backoff), zap.String("error", p.cfg.Redact(errString(err))))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, p.maxBackoff)
	}
}

// streamOnce runs one stream until it fails. progressed reports that it delivered a message or ended cleanly.
func (p *PushScaler) streamOnce(ctx context.Context, changed chan<- struct{}) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.client.StreamIsActive(ctx, p.ref)
	if err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return true, err
		}
		if err != nil {
			return progressed, err
		}
		progressed = true
		if !resp.GetResult() {
			continue
		}
		select {
		case changed <- struct{}{}:
		default:
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
