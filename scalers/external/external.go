// Package external implements the external and external-push triggers: KEDA's external scalers, reached over
// gRPC with KEDA's externalscaler contract (see externalscaler/externalscaler.proto), so scalers written for
// KEDA work unchanged.
//
// Metadata (KEDA names):
//
//	scalerAddress  required: host:port (or any gRPC target) of the external scaler
//	enableTLS      optional: use TLS even without certificates (system roots)
//	unsafeSsl      optional: skip server certificate verification
//	tlsCertFile    optional, deprecated (older KEDA): path to a PEM CA bundle on the Tidal pod
//	caCert         authParams: PEM CA bundle that signs the scaler's certificate
//	tlsClientCert  authParams: PEM client certificate (mTLS), with tlsClientKey
//	tlsClientKey   authParams: PEM client key
//
// Every trigger metadata entry (these included) is passed to the external scaler in
// ScaledObjectRef.scalerMetadata; as in KEDA, a "<key>FromEnv" entry is sent with its resolved value and dropped
// when the variable is missing or empty. AuthParams are never sent.
//
// The metric specs come from GetMetricSpec when the trigger is built, so New fails when the scaler cannot be
// reached then (the caller retries the build); later failures are Sample errors for this trigger only. Metric
// names are s<index>-<metricName> as in KEDA; GetMetrics is asked with the scaler's own name, without the
// prefix. Values use metricValueFloat when it is > 0, else metricValue (targets likewise), as KEDA does.
package external

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
	pb "github.com/tidalscale/tidal/scalers/external/externalscaler"
)

// Trigger types served by this package.
const (
	Type     = "external"
	PushType = "external-push"
)

const (
	// rpcTimeout bounds each unary call when the caller's context has no earlier deadline.
	rpcTimeout = 10 * time.Second
	// serviceConfig spreads calls over every address a DNS target resolves to, as KEDA does.
	serviceConfig = `{"loadBalancingConfig": [{"round_robin":{}}]}`
)

// Register adds the external and external-push triggers to r.
func Register(r *scalers.Registry) {
	r.Register(New, Type)
	r.Register(NewPush, PushType)
	r.Describe(Metadata{}, Type, PushType)
	r.RegisterCheck(Check, Type, PushType)
}

// Check validates an external trigger offline: its metadata and TLS material, without dialing the scaler.
// Whether the scaler answers is a run-time condition reported on the object's status.
func Check(cfg *scalers.TriggerConfig) error {
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return err
	}
	if meta.useTLS() {
		if _, err := meta.tlsConfig(); err != nil {
			return cfg.Errorf("%w", err)
		}
	}
	return nil
}

// Metadata is the external trigger's connection metadata.
type Metadata struct {
	ScalerAddress string `tidal:"name=scalerAddress"`
	EnableTLS     bool   `tidal:"name=enableTLS,default=false"`
	UnsafeSsl     bool   `tidal:"name=unsafeSsl,default=false"`
	// TLSCertFile is KEDA's path to a CA file on the operator's filesystem. Tidal refuses it: an object's author
	// must not make the operator read its files. Put the CA PEM in caCert of a TriggerAuthentication instead.
	TLSCertFile   string `tidal:"name=tlsCertFile,order=triggerMetadata;authParams,optional"`
	CACert        string `tidal:"name=caCert,order=authParams,optional"`
	TLSClientCert string `tidal:"name=tlsClientCert,order=authParams,optional"`
	TLSClientKey  string `tidal:"name=tlsClientKey,order=authParams,optional"`
}

// Validate checks cross-field rules.
func (m *Metadata) Validate() error {
	var errs []error
	if strings.TrimSpace(m.ScalerAddress) == "" {
		errs = append(errs, errors.New("scalerAddress: must not be empty"))
	}
	if (m.TLSClientCert == "") != (m.TLSClientKey == "") {
		errs = append(errs, errors.New("tlsClientCert, tlsClientKey: give both or neither"))
	}
	if m.TLSCertFile != "" {
		errs = append(errs, errors.New("tlsCertFile: not supported: Tidal does not read files from its own filesystem on an object's say-so; put the CA certificate (PEM) in caCert of a TriggerAuthentication"))
	}
	return errors.Join(errs...)
}

func (m *Metadata) useTLS() bool {
	return m.EnableTLS || m.UnsafeSsl || m.CACert != "" || m.TLSClientCert != ""
}

// tlsConfig builds the client TLS configuration. Errors never include certificate or key material.
func (m *Metadata) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: m.UnsafeSsl} //nolint:gosec // unsafeSsl is the user's explicit choice, as in KEDA
	if m.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(m.CACert)) {
			return nil, errors.New("caCert: no PEM certificate found")
		}
		cfg.RootCAs = pool
	}
	if m.TLSClientCert != "" {
		pair, err := tls.X509KeyPair([]byte(m.TLSClientCert), []byte(m.TLSClientKey))
		if err != nil {
			return nil, errors.New("tlsClientCert, tlsClientKey: not a matching PEM certificate and key")
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// ParseMetadata parses and validates the connection metadata of an external trigger.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	var m Metadata
	if err := cfg.RefuseUtilization(); err != nil {
		return m, err
	}
	if err := scalers.Parse(cfg, &m); err != nil {
		return m, err
	}
	return m, nil
}

// ScalerMetadata is what the external scaler receives: every trigger metadata entry, with "<key>FromEnv"
// entries resolved from the target's environment (dropped when unresolved), as KEDA sends it.
func ScalerMetadata(cfg *scalers.TriggerConfig) map[string]string {
	out := make(map[string]string, len(cfg.Metadata))
	for k, v := range cfg.Metadata {
		if strings.HasSuffix(k, "FromEnv") {
			if ev, ok := cfg.ResolvedEnv[v]; ok && ev != "" {
				out[k] = ev
			}
			continue
		}
		out[k] = v
	}
	return out
}

// metric pairs Tidal's metric name with the name the external scaler knows.
type metric struct {
	name     string // s<index>-<scaler name>, sanitized
	original string
	spec     autoscalingv2.MetricSpec
}

// Scaler is an external trigger.
type Scaler struct {
	cfg     *scalers.TriggerConfig
	meta    Metadata
	ref     *pb.ScaledObjectRef
	client  pb.ExternalScalerClient
	release func() error
	metrics []metric
	log     *zap.Logger
}

// New builds an external trigger: it connects, and asks the scaler for its metric specs.
// On error the Scaler is a nil interface, never a typed nil *Scaler.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	s, err := build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func build(ctx context.Context, cfg *scalers.TriggerConfig) (*Scaler, error) {
	cfg.Normalize()
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if meta.useTLS() {
		tc, err := meta.tlsConfig()
		if err != nil {
			return nil, cfg.Errorf("%w", err)
		}
		creds = credentials.NewTLS(tc)
	}
	key := scalers.ClientKey(Type, map[string]string{
		"address": meta.ScalerAddress, "tls": fmt.Sprint(meta.useTLS()), "unsafe": fmt.Sprint(meta.UnsafeSsl),
		"ca": meta.CACert, "cert": meta.TLSClientCert, "key": meta.TLSClientKey,
	})
	conn, release, err := scalers.Acquire(cfg.Shared, key,
		func() (*grpc.ClientConn, error) {
			return grpc.NewClient(meta.ScalerAddress, grpc.WithTransportCredentials(creds), grpc.WithDefaultServiceConfig(serviceConfig))
		},
		func(c *grpc.ClientConn) error { return c.Close() })
	if err != nil {
		return nil, cfg.Errorf("scalerAddress: %s", cfg.Redact(err.Error()))
	}
	s := &Scaler{
		cfg:     cfg,
		meta:    meta,
		ref:     &pb.ScaledObjectRef{Name: cfg.ObjectName, Namespace: cfg.ObjectNamespace, ScalerMetadata: ScalerMetadata(cfg)},
		client:  pb.NewExternalScalerClient(conn),
		release: release,
		log:     cfg.Logger.With(zap.String("trigger", cfg.ID()), zap.String("scalerAddress", meta.ScalerAddress)),
	}
	if err := s.loadSpecs(ctx); err != nil {
		_ = release()
		return nil, err
	}
	return s, nil
}

func (s *Scaler) loadSpecs(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := s.client.GetMetricSpec(ctx, s.ref)
	if err != nil {
		return s.rpcError("GetMetricSpec", err)
	}
	if len(resp.GetMetricSpecs()) == 0 {
		return s.cfg.Errorf("scalerAddress %s: GetMetricSpec returned no metric specs", s.meta.ScalerAddress)
	}
	seen := map[string]bool{}
	for i, ms := range resp.GetMetricSpecs() {
		if ms.GetMetricName() == "" {
			return s.cfg.Errorf("scalerAddress %s: GetMetricSpec: metricSpecs[%d].metricName is empty", s.meta.ScalerAddress, i)
		}
		target := ms.GetTargetSizeFloat()
		if target <= 0 {
			target = float64(ms.GetTargetSize())
		}
		if !(target >= scalers.MinTarget && target <= scalers.MaxValue) { // also false for NaN
			return s.cfg.Errorf("scalerAddress %s: GetMetricSpec: metricSpecs[%d] %q: targetSize/targetSizeFloat must be between %g and %g, got %g",
				s.meta.ScalerAddress, i, ms.GetMetricName(), scalers.MinTarget, scalers.MaxValue, target)
		}
		name := s.cfg.MetricName(ms.GetMetricName(), "")
		if seen[name] {
			return s.cfg.Errorf("scalerAddress %s: GetMetricSpec: metric %q appears twice", s.meta.ScalerAddress, ms.GetMetricName())
		}
		seen[name] = true
		s.metrics = append(s.metrics, metric{name: name, original: ms.GetMetricName(), spec: scalers.ExternalMetric(s.cfg, name, target)})
	}
	return nil
}

func (s *Scaler) rpcError(call string, err error) error {
	return s.cfg.Errorf("scalerAddress %s: %s: %s", s.meta.ScalerAddress, call, s.cfg.Redact(err.Error()))
}

// MetricSpecs returns one External metric per spec the external scaler declared.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	out := make([]autoscalingv2.MetricSpec, len(s.metrics))
	for i, m := range s.metrics {
		out[i] = *m.spec.DeepCopy()
	}
	return out
}

// Sample asks the external scaler for each metric's value (GetMetrics; several returned values are summed, as
// the HPA sums external metric items) and for activity (IsActive).
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	out := make([]scalers.Sample, 0, len(s.metrics))
	for _, m := range s.metrics {
		v, err := s.metricValue(ctx, m)
		if err != nil {
			return nil, false, err
		}
		out = append(out, scalers.Sample{MetricName: m.name, Value: v})
	}
	actx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := s.client.IsActive(actx, s.ref)
	if err != nil {
		return nil, false, s.rpcError("IsActive", err)
	}
	return out, resp.GetResult(), nil
}

func (s *Scaler) metricValue(ctx context.Context, m metric) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := s.client.GetMetrics(ctx, &pb.GetMetricsRequest{ScaledObjectRef: s.ref, MetricName: m.original})
	if err != nil {
		return 0, s.rpcError(fmt.Sprintf("GetMetrics %q", m.original), err)
	}
	if len(resp.GetMetricValues()) == 0 {
		return 0, s.cfg.Errorf("scalerAddress %s: GetMetrics %q returned no values", s.meta.ScalerAddress, m.original)
	}
	var sum float64
	for _, mv := range resp.GetMetricValues() {
		v := mv.GetMetricValueFloat()
		if v <= 0 {
			v = float64(mv.GetMetricValue())
		}
		sum += v
	}
	return sum, nil
}

// Close releases the shared gRPC connection.
func (s *Scaler) Close(context.Context) error {
	if s.release == nil {
		return nil
	}
	return s.release()
}
