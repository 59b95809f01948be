// Package beanstalkd is Tidal's beanstalkd scaler: trigger type "beanstalkd", with KEDA's metadata names,
// defaults and semantics. The metric is a tube's current-jobs-ready plus current-jobs-reserved (plus
// current-jobs-delayed with includeDelayed), from the stats-tube command of beanstalkd's text protocol, spoken by
// github.com/beanstalkd/go-beanstalk. A tube that does not exist (yet) has 0 jobs.
//
// The connection is opened on first Sample and reopened after a failure; timeout bounds the dial and each
// command. beanstalkd has no authentication.
package beanstalkd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "beanstalkd"

// Metadata is the beanstalkd trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	Server          string        `tidal:"name=server"`
	Tube            string        `tidal:"name=tube"`
	Value           float64       `tidal:"name=value,target"`
	ActivationValue float64       `tidal:"name=activationValue,default=0"`
	IncludeDelayed  bool          `tidal:"name=includeDelayed,default=false"`
	Timeout         time.Duration `tidal:"name=timeout,default=30,range=0.001;"`
}

// Validate checks the server address, tube name, value and timeout.
func (m *Metadata) Validate() error {
	var errs []error
	if host, port, err := net.SplitHostPort(m.Server); err != nil || host == "" || port == "" {
		errs = append(errs, fmt.Errorf("server: want host:port, got %q", m.Server))
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		errs = append(errs, fmt.Errorf("server: port must be 1-65535, got %q", port))
	}
	// Tube names are at most 200 bytes of letters, digits and - + / ; . $ _ ( ), not starting with a hyphen.
	if m.Tube == "" || len(m.Tube) > 200 || strings.HasPrefix(m.Tube, "-") || strings.IndexFunc(m.Tube, badTubeRune) >= 0 {
		errs = append(errs, fmt.Errorf("tube: want a beanstalkd tube name (letters, digits, -+/;.$_(), at most 200 bytes), got %q", m.Tube))
	}
	if m.Value <= 0 {
		errs = append(errs, fmt.Errorf("value: must be a positive number, got %v", m.Value))
	}
	if m.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

func badTubeRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-+/;.$_()", r))
}

// Scaler reads one tube's stats over one connection.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string

	mu   sync.Mutex // serialises commands on conn
	raw  net.Conn
	conn *beanstalk.Conn
}

var _ scalers.Scaler = (*Scaler)(nil)

// Register adds the beanstalkd scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger; the connection is opened by the first Sample.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	return &Scaler{cfg: cfg, meta: meta, metricName: cfg.MetricName("beanstalkd", url.QueryEscape(meta.Tube))}, nil
}

// MetricSpecs returns one External metric with value as its target.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, s.meta.Value)}
}

// Sample reads the tube's stats; the trigger is active when the job count exceeds activationValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	n, err := s.jobs(ctx)
	if err != nil {
		return nil, false, s.cfg.Errorf("server %s: tube %q: %w", s.meta.Server, s.meta.Tube, err)
	}
	return []scalers.Sample{{MetricName: s.metricName, Value: n}}, n > s.meta.ActivationValue, nil
}

func (s *Scaler) jobs(ctx context.Context) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		d := net.Dialer{Timeout: s.meta.Timeout}
		raw, err := d.DialContext(ctx, "tcp", s.meta.Server)
		if err != nil {
			return 0, fmt.Errorf("connecting: %w", err)
		}
		s.raw, s.conn = raw, beanstalk.NewConn(raw)
	}
	deadline := time.Now().Add(s.meta.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = s.raw.SetDeadline(time.Unix(1, 0)) })
	stats, err := beanstalk.NewTube(s.conn, s.meta.Tube).Stats()
	stop()
	if err != nil {
		if errors.Is(err, beanstalk.ErrNotFound) {
			return 0, nil
		}
		// The connection may be mid-response: drop it, the next Sample dials again.
		s.closeLocked()
		if ctx.Err() != nil {
			return 0, fmt.Errorf("stats-tube: %w", ctx.Err())
		}
		return 0, fmt.Errorf("stats-tube: %w", err)
	}
	keys := []string{"current-jobs-ready", "current-jobs-reserved"}
	if s.meta.IncludeDelayed {
		keys = append(keys, "current-jobs-delayed")
	}
	var total float64
	for _, k := range keys {
		v, err := strconv.ParseInt(stats[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stats-tube: %s is %q, want an integer", k, stats[k])
		}
		total += float64(v)
	}
	return total, nil
}

func (s *Scaler) closeLocked() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn, s.raw = nil, nil
	}
}

// Close closes the connection.
func (s *Scaler) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	return nil
}
