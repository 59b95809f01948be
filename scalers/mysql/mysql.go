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
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/onemetric"
	"github.com/tidalscale/tidal/scalers/sqlscaler"
)

// Type is the trigger type served by this package.
const Type = "mysql"

const (
	queryTimeout = scalers.CallTimeout
	dialTimeout  = 10 * time.Second
	maxOpenConns = 4
	maxIdleConns = 2
	connMaxIdle  = 5 * time.Minute
)

// Register adds the mysql trigger to r.
func Register(r *scalers.Registry) {
	r.Register(New, Type)
	r.Describe(Metadata{}, Type)
}

// Metadata is the mysql trigger's metadata. Its secret fields list triggerMetadata as sqlscaler.ParseMetadata says.
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
	return sqlscaler.Validate(m.Query, "connectionString", m.ConnectionString,
		sqlscaler.Field{Name: "host", Value: m.Host}, sqlscaler.Field{Name: "port", Value: m.Port},
		sqlscaler.Field{Name: "username", Value: m.Username}, sqlscaler.Field{Name: "dbName", Value: m.DBName})
}

// ParseMetadata parses and validates a mysql trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	return sqlscaler.ParseMetadata[Metadata](cfg, "connectionString", "password")
}

// Scaler is a mysql trigger.
type Scaler struct {
	onemetric.Base
	meta    Metadata
	db      *sql.DB
	secrets []string
}

// New builds a mysql trigger: one External metric, s<index>-mysql-<dbName>, targeting queryValue and active
// above activationQueryValue. The database handle connects lazily: an unreachable server is a Sample error.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return nil, err
	}
	s := &Scaler{meta: meta, secrets: sqlscaler.Secrets(meta.Password, meta.ConnectionString)}
	// The metric is named after the database, known once the DSN is parsed (whose errors name the trigger
	// through the Base): the Base is built again with the name.
	s.Base = onemetric.New(cfg, "", meta.QueryValue, meta.ActivationQueryValue, s.queryValue)
	dc, err := s.driverConfig()
	if err != nil {
		return nil, err
	}
	s.secrets = append(s.secrets, sqlscaler.Secrets(dc.Passwd)...)
	metricSuffix := dc.DBName
	if meta.MetricName != "" {
		metricSuffix = meta.MetricName
	}
	s.Base = onemetric.New(cfg, cfg.MetricName(Type, metricSuffix), meta.QueryValue, meta.ActivationQueryValue, s.queryValue)

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
	s.db, s.Release = db, release
	return s, nil
}

// driverConfig builds the driver configuration from connectionString or the separate fields.
func (s *Scaler) driverConfig() (*drv.Config, error) {
	m := s.meta
	var dc *drv.Config
	if m.ConnectionString != "" {
		parsed, err := drv.ParseDSN(m.ConnectionString)
		if err != nil {
			return nil, s.Cfg.Errorf("connectionString: cannot parse the DSN (%s)", s.redact(err.Error()))
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

// queryValue runs the query and returns its value.
func (s *Scaler) queryValue(ctx context.Context) (float64, error) {
	rows, err := s.db.QueryContext(ctx, s.meta.Query)
	if err != nil {
		return 0, s.Cfg.Errorf("%s: %s", errorField(err), s.redact(err.Error()))
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, s.Cfg.Errorf("query: %s", s.redact(err.Error()))
	}
	return scalers.OneNumber(s.Cfg, s.redact, scalers.QueryResult{Columns: len(cols), Next: rows.Next, Err: rows.Err, Close: rows.Close,
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
