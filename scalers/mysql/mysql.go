// Package mysql implements the mysql trigger: KEDA's MySQL scaler (works with MariaDB too). It runs a query that
// returns one number and scales on it.
//
// Metadata (KEDA names):
//
//	connectionString      a go-sql-driver DSN (user:pass@tcp(host:3306)/db); from authParams or
//	                      connectionStringFromEnv only
//	host, port, username, used when there is no connectionString (metadata or authParams); all required then.
//	dbName
//	password              authParams or passwordFromEnv; may be empty
//	query                 required; must return one row whose first and only column is a number. NULL counts
//	                      as 0; only the first row is read, as in KEDA
//	queryValue            required target (float)
//	activationQueryValue  default 0; the trigger is active when the value is above it
//	metricName            deprecated, optional: names the metric instead of dbName
//
// Triggers with the same DSN share one *sql.DB through scalers.Shared.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	drv "github.com/go-sql-driver/mysql"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
)

// Type is the trigger type served by this package.
const Type = "mysql"

const (
	queryTimeout   = scalers.CallTimeout
	dialTimeout    = 10 * time.Second
	maxOpenConns   = 4
	maxIdleConns   = 2
	connMaxIdle    = 5 * time.Minute
	minSecretChars = 3
)

// Register adds the mysql trigger to r.
func Register(r *scalers.Registry) {
	r.Register(New, Type)
	r.Describe(Metadata{}, Type)
}

// Metadata is the mysql trigger's metadata.
//
// The secret fields list triggerMetadata only so that their "<name>FromEnv" form resolves; a plain value in
// metadata is rejected by ParseMetadata.
type Metadata struct {
	ConnectionString string `tidal:"name=connectionString,order=authParams;triggerMetadata,optional"`
	Username         string `tidal:"name=username,order=triggerMetadata;authParams,optional"`
	Password         string `tidal:"name=password,order=authParams;triggerMetadata,optional"`
	Host             string `tidal:"name=host,order=triggerMetadata;authParams,optional"`
	Port             string `tidal:"name=port,order=triggerMetadata;authParams,optional"`
	DBName           string `tidal:"name=dbName,order=triggerMetadata;authParams,optional"`

	Query                string  `tidal:"name=query"`
	QueryValue           float64 `tidal:"name=queryValue,target"`
	ActivationQueryValue float64 `tidal:"name=activationQueryValue,default=0,range=0;"`
	MetricName           string  `tidal:"name=metricName,optional"`
}

// Validate checks the cross-field rules: a connectionString, or all of host, port, username and dbName.
func (m *Metadata) Validate() error {
	var errs []error
	if strings.TrimSpace(m.Query) == "" {
		errs = append(errs, errors.New("query: must not be empty"))
	}
	if m.ConnectionString == "" {
		for _, f := range []struct{ name, val string }{
			{"host", m.Host}, {"port", m.Port}, {"username", m.Username}, {"dbName", m.DBName},
		} {
			if f.val == "" {
				errs = append(errs, fmt.Errorf("%s: required when connectionString is not given", f.name))
			}
		}
	}
	return errors.Join(errs...)
}

// ParseMetadata parses and validates a mysql trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	var m Metadata
	if err := cfg.RefuseUtilization(); err != nil {
		return m, err
	}
	// Secrets belong in a TriggerAuthentication or a *FromEnv variable, never in plain metadata.
	for _, k := range []string{"connectionString", "password"} {
		if _, plain := cfg.Metadata[k]; plain {
			return m, cfg.Errorf("%s: must come from authParams (TriggerAuthentication) or %sFromEnv, not plain metadata", k, k)
		}
	}
	if err := scalers.Parse(cfg, &m); err != nil {
		return m, err
	}
	return m, nil
}

// Scaler is a mysql trigger.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	db         *sql.DB
	release    func() error
	secrets    []string
	log        *zap.Logger
}

// New builds a mysql trigger. The database handle connects lazily: an unreachable server is a Sample error.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return nil, err
	}
	s := &Scaler{cfg: cfg, meta: meta, log: cfg.Logger.With(zap.String("trigger", cfg.ID()))}
	for _, sec := range []string{meta.Password, meta.ConnectionString} {
		if len(sec) >= minSecretChars {
			s.secrets = append(s.secrets, sec)
		}
	}
	dc, err := s.driverConfig()
	if err != nil {
		return nil, err
	}
	if len(dc.Passwd) >= minSecretChars {
		s.secrets = append(s.secrets, dc.Passwd)
	}
	metricSuffix := dc.DBName
	if meta.MetricName != "" {
		metricSuffix = meta.MetricName
	}
	s.metricName = cfg.MetricName(Type, metricSuffix)

	connector, err := drv.NewConnector(dc)
	if err != nil {
		return nil, cfg.Errorf("connectionString: %s", s.redact(err.Error()))
	}
	dsn := dc.FormatDSN()
	key := scalers.ClientKey(Type, map[string]string{"dsn": dsn})
	db, release, err := scalers.Acquire(cfg.Shared, key,
		func() (*sql.DB, error) {
			db := sql.OpenDB(connector)
			db.SetMaxOpenConns(maxOpenConns)
			db.SetMaxIdleConns(maxIdleConns)
			db.SetConnMaxIdleTime(connMaxIdle)
			return db, nil
		},
		func(db *sql.DB) error { return db.Close() })
	if err != nil {
		return nil, cfg.Errorf("connectionString: %s", s.redact(err.Error()))
	}
	s.db, s.release = db, release
	return s, nil
}

// driverConfig builds the driver configuration from connectionString or the separate fields.
func (s *Scaler) driverConfig() (*drv.Config, error) {
	m := s.meta
	var dc *drv.Config
	if m.ConnectionString != "" {
		parsed, err := drv.ParseDSN(m.ConnectionString)
		if err != nil {
			return nil, s.cfg.Errorf("connectionString: cannot parse the DSN (%s)", s.redact(err.Error()))
		}
		dc = parsed
	} else {
		dc = drv.NewConfig()
		dc.Net = "tcp"
		dc.Addr = net.JoinHostPort(m.Host, m.Port)
		dc.User = m.Username
		dc.Passwd = m.Password
		dc.DBName = m.DBName
	}
	if dc.Timeout == 0 {
		dc.Timeout = dialTimeout
	}
	if dc.ReadTimeout == 0 {
		dc.ReadTimeout = queryTimeout
	}
	if dc.WriteTimeout == 0 {
		dc.WriteTimeout = queryTimeout
	}
	// The driver logs some connection problems through its own global logger; keep it quiet so nothing leaves
	// without passing through this trigger's redaction.
	dc.Logger = drv.Logger(discardLogger{})
	return dc, nil
}

type discardLogger struct{}

func (discardLogger) Print(...any) {}

func (s *Scaler) redact(msg string) string { return scalers.RedactSecrets(msg, s.secrets) }

// MetricSpecs returns one External metric, s<index>-mysql-<dbName>, targeting queryValue.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, s.meta.QueryValue)}
}

// Sample runs the query and reports its value; active when above activationQueryValue.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	return scalers.SampleOne(ctx, s.log, "mysql query failed", s.metricName, s.meta.ActivationQueryValue, s.queryValue)
}

func (s *Scaler) queryValue(ctx context.Context) (float64, error) {
	rows, err := s.db.QueryContext(ctx, s.meta.Query)
	if err != nil {
		return 0, s.cfg.Errorf("%s: %s", errorField(err), s.redact(err.Error()))
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, s.cfg.Errorf("query: %s", s.redact(err.Error()))
	}
	return scalers.OneNumber(s.cfg, s.redact, scalers.QueryResult{Columns: len(cols), Next: rows.Next, Err: rows.Err, Close: rows.Close,
		Scan: func() (float64, bool, error) {
			var f sql.NullFloat64
			if err := rows.Scan(&f); err != nil {
				return 0, false, fmt.Errorf("column %q is not a number", cols[0])
			}
			return f.Float64, !f.Valid, nil
		}})
}

// errorField names what an error from QueryContext is about: the server's answer to the query, or reaching
// and logging in to the server.
func errorField(err error) string {
	var me *drv.MySQLError
	if errors.As(err, &me) && me.Number != 1045 && me.Number != 1044 {
		return "query"
	}
	return "connection"
}

// Close releases the shared database handle.
func (s *Scaler) Close(context.Context) error {
	if s.release == nil {
		return nil
	}
	return s.release()
}
