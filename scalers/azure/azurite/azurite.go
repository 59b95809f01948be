// Package azurite starts Microsoft's Azure Storage emulator for scaler tests: one azurite-queue or azurite-blob
// process per call, on a free loopback port, with its workspace in a temporary directory and
// telemetry off. Tests only; production code never imports it. scalers/azurequeue/CI_SETUP.sh installs Azurite.
package azurite

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Account and Key are Azurite's well-known development account and key.
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Server is one running emulator.
type Server struct {
	// Endpoint is the service URL, http://127.0.0.1:<port>/devstoreaccount1.
	Endpoint string
	// Addr is host:port.
	Addr string
	// Service is "queue" or "blob".
	Service string
}

// ConnectionString returns a connection string for the emulator with the given account key.
func (s Server) ConnectionString(key string) string {
	name := map[string]string{"queue": "QueueEndpoint", "blob": "BlobEndpoint"}[s.Service]
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;%s=%s;", Account, key, name, s.Endpoint)
}

// Start runs azurite-<service> ("queue" or "blob") until the test ends. It skips tb when Azurite is not
// installed outside CI and fails it in CI (CI=true), where CI_SETUP.sh must have installed it.
func Start(tb testing.TB, service string) Server {
	tb.Helper()
	bin, err := exec.LookPath("azurite-" + service)
	if err != nil {
		if ciMode() {
			tb.Fatalf("azurite-%s not found; scalers/azurequeue/CI_SETUP.sh installs it: %v", service, err)
		}
		tb.Skipf("azurite-%s not installed (npm install -g azurite): %v", service, err)
	}
	port := freePort(tb)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--"+service+"Host", "127.0.0.1", "--"+service+"Port", strconv.Itoa(port),
		"--location", tb.TempDir(), "--silent", "--disableTelemetry", "--skipApiVersionCheck")
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("starting azurite-%s: %v", service, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() { cancel(); <-exited })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case <-exited:
			tb.Fatalf("azurite-%s exited before listening on %s", service, addr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("azurite-%s not listening on %s after 60s", service, addr)
		}
	}
	return Server{Endpoint: "http://" + addr + "/" + Account, Addr: addr, Service: service}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ciMode() bool { return os.Getenv("CI") == "true" }
