// Package scalertest holds helpers for scaler tests only: a throwaway PKI for TLS servers and clients, legacy
// key encryption for keyPassword tests, the zap observer check that no secret reaches an error or a log line,
// metadata maps and the metadata table runner (ParseTable), building and sampling a scaler (Config, New, First,
// SampleFails), the checks of a Sample table row and of an unreachable source (ExpectSample, ExpectConnectError),
// in-process API fakes (Serve, Canned, ClosedURL), the metadata fuzz body (Poke), and the Sample latency benchmark.
// Production code never imports it.
package scalertest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/scalers"
)

// PKI is a throwaway CA with a server certificate for 127.0.0.1 and localhost and a client certificate, PEM
// encoded, valid from an hour ago for a day.
type PKI struct {
	// CA is the CA certificate (PEM).
	CA string
	// ServerCert and ServerKey are the server certificate and its EC private key (PEM).
	ServerCert, ServerKey string
	// ClientCert and ClientKey are the client certificate and its EC private key (PEM).
	ClientCert, ClientKey string
	// Server is the parsed server key pair, ready for a tls.Config.
	Server tls.Certificate
	// Pool holds the CA, for servers that verify client certificates.
	Pool *x509.CertPool
}

// NewPKI creates a fresh PKI (internal/testpki); it fails t on error.
func NewPKI(t testing.TB) PKI {
	t.Helper()
	ca := testpki.NewCA(t, "tidal-test-ca")
	server := ca.Server(t, "127.0.0.1", "127.0.0.1", "localhost")
	client := ca.Client(t, "tidal-test-client", "127.0.0.1", "localhost")
	p := PKI{
		CA:         string(ca.CertPEM),
		ServerCert: string(server.CertPEM), ServerKey: string(server.KeyPEM),
		ClientCert: string(client.CertPEM), ClientKey: string(client.KeyPEM),
		Pool: ca.Pool(),
	}
	var err error
	if p.Server, err = tls.X509KeyPair(server.CertPEM, server.KeyPEM); err != nil {
		t.Fatal(err)
	}
	return p
}

// EncryptKey protects a PEM key with password the legacy (RFC 1423) way KEDA's keyPassword refers to.
func EncryptKey(t testing.TB, keyPEM, password string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil {
		t.Fatal("EncryptKey: no PEM block in the key")
	}
	//lint:ignore SA1019 producing the legacy format on purpose
	enc, err := x509.EncryptPEMBlock(rand.Reader, block.Type, block.Bytes, []byte(password), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(enc))
}

// ObservedLogger returns a logger that records every entry at debug level and above, and the recorded entries.
func ObservedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// AssertNoSecret fails t when secret appears in errText or in any logged message or field.
func AssertNoSecret(t testing.TB, secret, errText string, entries []observer.LoggedEntry) {
	t.Helper()
	if strings.Contains(errText, secret) {
		t.Errorf("error leaks the secret: %q", errText)
	}
	for _, e := range entries {
		if strings.Contains(e.Message, secret) {
			t.Errorf("log message leaks the secret: %q", e.Message)
		}
		for k, v := range e.ContextMap() {
			if strings.Contains(fmt.Sprint(v), secret) {
				t.Errorf("log field %s leaks the secret: %v", k, v)
			}
		}
	}
}

// BenchmarkSample times s.Sample b.N times and reports allocations and the per-call p50-µs and p99-µs
// latencies. One untimed call first opens connections and loads scripts; any Sample error fails b.
func BenchmarkSample(b *testing.B, s scalers.Scaler) {
	b.Helper()
	ctx := context.Background()
	if _, _, err := s.Sample(ctx); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, _, err := s.Sample(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
}

// Sample calls s.Sample with a 30s deadline and returns its single value and whether the trigger is active. It
// fails t on an error, on anything but exactly one value, and, when metricName is not empty, on a value under
// another name.
func Sample(t testing.TB, s scalers.Scaler, metricName string) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vals, active, err := s.Sample(ctx)
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	if len(vals) != 1 || (metricName != "" && vals[0].MetricName != metricName) {
		t.Fatalf("Sample returned %+v, want one value named %q", vals, metricName)
	}
	return vals[0].Value, active
}
