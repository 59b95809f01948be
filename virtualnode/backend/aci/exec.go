package aci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	armci "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
	"github.com/gorilla/websocket"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

var _ backend.Executor = (*Backend)(nil)

// Exec implements backend.Executor with ACI's exec API: POST .../containers/{name}/exec returns a WebSocket URI
// and a password; the client sends the password as the first message, then stdin, and receives the output.
// ACI runs one command string (no argv) and reports no exit code, so a command that fails is indistinguishable
// from one that succeeds; stdout and stderr arrive merged on stdout.
func (b *Backend) Exec(ctx context.Context, key backend.Key, container string, cmd []string, s backend.Streams) error {
	b.mu.Lock()
	ap, ok := b.pods[key]
	b.mu.Unlock()
	if !ok {
		return backend.NotFound(key)
	}
	if len(cmd) == 0 {
		return &backend.PodError{Reason: backend.ReasonInvalidPod, Message: "exec: empty command"}
	}
	req := armci.ContainerExecRequest{Command: to.Ptr(strings.Join(cmd, " "))}
	if s.TTY {
		req.TerminalSize = &armci.ContainerExecRequestTerminalSize{Rows: to.Ptr(int32(24)), Cols: to.Ptr(int32(80))}
	}
	resp, err := b.containers.ExecuteCommand(ctx, b.opts.ResourceGroup, ap.group, container, req, nil)
	if err != nil {
		return fmt.Errorf("exec in container group %q container %q: %w", ap.group, container, err)
	}
	if resp.WebSocketURI == nil || resp.Password == nil {
		return fmt.Errorf("exec in container group %q container %q: ACI returned no websocket", ap.group, container)
	}
	conn, _, err := b.dialer().DialContext(ctx, *resp.WebSocketURI, nil)
	if err != nil {
		return fmt.Errorf("exec in container group %q: websocket: %w", ap.group, err)
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(*resp.Password)); err != nil {
		return fmt.Errorf("exec in container group %q: websocket auth: %w", ap.group, err)
	}
	if s.Stdin != nil {
		go func() {
			buf := make([]byte, 32*1024)
			for {
				n, err := s.Stdin.Read(buf)
				if n > 0 && conn.WriteMessage(websocket.BinaryMessage, buf[:n]) != nil {
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		_ = conn.Close()
	}()
	out := s.Stdout
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) || errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("exec in container group %q: websocket: %w", ap.group, err)
		}
		if out != nil {
			if _, err := out.Write(msg); err != nil {
				return err
			}
		}
	}
}

// dialer returns the websocket dialer, using the test transport's TLS settings when one is configured.
func (b *Backend) dialer() *websocket.Dialer {
	d := *websocket.DefaultDialer
	if b.opts.WebSocketTLS != nil {
		d.TLSClientConfig = b.opts.WebSocketTLS
	}
	return &d
}
