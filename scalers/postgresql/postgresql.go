// Package postgresql implements the postgresql trigger: KEDA's PostgreSQL scaler. It runs a query that returns
// one number and scales on it.
//
// Metadata (KEDA names):
//
//	connection                  a libpq connection string or URL; from authParams or connectionFromEnv only
//	host, port, userName,       used when there is no connection (authParams or metadata); as in KEDA all five
//	dbName, sslmode             are required then
//	password                    authParams or passwordFromEnv; optional (trust/peer auth)
//	query                       required; must return one row whose first and only column is a number. NULL
//	                            counts as 0 (SELECT sum(x) over no rows); only the first row is read, as in KEDA
//	targetQueryValue            required target (float)
//	activationTargetQueryValue  default 0; the trigger is active when the value is above it
//
// Triggers with the same connection share one pgx pool through scalers.Shared.
package postgresql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/onemetric"
	"github.com/tidalscale/tidal/scalers/sqlscaler"
)

// Type is the trigger type served by this package.
const Type = "postgresql"

const (
	// maxPoolConns caps one shared pool: scalers run one short query at a time per trigger.
	maxPoolConns = 4
)

// Register adds the postgresql trigger to r.
func Register(r *scalers.Registry) {
	r.Register(New, Type)
	r.Describe(Metadata{}, Type)
}

// Metadata is the postgresql trigger's metadata. Its secret fields list triggerMetadata as sqlscaler.ParseMetadata says.
type Metadata struct {
	Connection string `tidal:"name=connection,order=authParams;triggerMetadata,optional"`
	Host       string `tidal:"name=host,order=authParams;triggerMetadata,optional"`
	Port       string `tidal:"name=port,order=authParams;triggerMetadata,optional"`
	UserName   string `tidal:"name=userName,order=authParams;triggerMetadata,optional"`
	DBName     string `tidal:"name=dbName,order=authParams;triggerMetadata,optional"`
	SSLMode    string `tidal:"name=sslmode,order=authParams;triggerMetadata,optional"`
	Password   string `tidal:"name=password,order=authParams;triggerMetadata,optional"`

	Query                      string  `tidal:"name=query"`
	TargetQueryValue           float64 `tidal:"name=targetQueryValue,target"`
	ActivationTargetQueryValue float64 `tidal:"name=activationTargetQueryValue,default=0,range=0;"`
}

// Validate checks the cross-field rules: a connection string, or all of host, port, userName, dbName, sslmode.
func (m *Metadata) Validate() error {
	return sqlscaler.Validate(m.Query, "connection", m.Connection,
		sqlscaler.Field{Name: "host", Value: m.Host}, sqlscaler.Field{Name: "port", Value: m.Port},
		sqlscaler.Field{Name: "userName", Value: m.UserName}, sqlscaler.Field{Name: "dbName", Value: m.DBName},
		sqlscaler.Field{Name: "sslmode", Value: m.SSLMode})
}

// connString builds the libpq key=value string from the separate fields.
func (m *Metadata) connString() string {
	if m.Connection != "" {
		return m.Connection
	}
	parts := []string{
		"host=" + quote(m.Host), "port=" + quote(m.Port), "user=" + quote(m.UserName),
		"dbname=" + quote(m.DBName), "sslmode=" + quote(m.SSLMode),
	}
	if m.Password != "" {
		parts = append(parts, "password="+quote(m.Password))
	}
	return strings.Join(parts, " ")
}

// quote renders a libpq keyword value: quoted with \ and ' escaped whenever it is empty or holds a space, quote
// or backslash.
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `'`, `\'`)
	return "'" + v + "'"
}

// Scaler is a postgresql trigger.
type Scaler struct {
	onemetric.Base
	meta    Metadata
	pool    *pgxpool.Pool
	secrets []string
}

// ParseMetadata parses and validates a postgresql trigger's metadata without connecting. A connection string
// carries a password: in plain metadata it is refused (KEDA ignores it there; Tidal says so).
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	return sqlscaler.ParseMetadata[Metadata](cfg, "connection", "password")
}

// New builds a postgresql trigger: one External metric, s<index>-postgresql, targeting targetQueryValue and active
// above activationTargetQueryValue. The pool connects lazily: an unreachable server is a Sample error.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, err := ParseMetadata(cfg)
	if err != nil {
		return nil, err
	}
	connStr := meta.connString()
	s := &Scaler{meta: meta, secrets: sqlscaler.Secrets(meta.Password, meta.Connection, connStr)}
	s.Base = onemetric.New(cfg, cfg.MetricName(Type, ""), meta.TargetQueryValue, meta.ActivationTargetQueryValue, s.queryValue)
	poolCfg, err := pgxpool.ParseConfig(connStr)
	if err != nil {
		// pgconn's parse error may quote the string; never pass it on.
		return nil, cfg.Errorf("connection: cannot parse the connection string (%s)", s.redact(parseErrorKind(err)))
	}
	s.secrets = append(s.secrets, sqlscaler.Secrets(poolCfg.ConnConfig.Password)...)
	poolCfg.MaxConns = maxPoolConns
	poolCfg.MinConns = 0
	poolCfg.MaxConnIdleTime = 5 * time.Minute
	if poolCfg.ConnConfig.ConnectTimeout == 0 {
		poolCfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	key := scalers.ClientKey(Type, map[string]string{"conn": connStr})
	pool, release, err := scalers.Acquire(cfg.Shared, key,
		// The pool outlives this call; with MinConns 0 it opens nothing here.
		func() (*pgxpool.Pool, error) { return pgxpool.NewWithConfig(context.WithoutCancel(ctx), poolCfg) },
		func(p *pgxpool.Pool) error { p.Close(); return nil })
	if err != nil {
		return nil, cfg.Errorf("connection: %s", s.redact(err.Error()))
	}
	s.pool, s.Release = pool, release
	return s, nil
}

func parseErrorKind(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	return "invalid syntax"
}

// redact removes this trigger's password and connection string from s (cfg.Errorf removes authParams values
// again; this also covers passwordFromEnv/connectionFromEnv).
func (s *Scaler) redact(msg string) string { return scalers.RedactSecrets(msg, s.secrets) }

// queryValue runs the query and returns its value.
func (s *Scaler) queryValue(ctx context.Context) (float64, error) {
	rows, err := s.pool.Query(ctx, s.meta.Query)
	if err != nil {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			return 0, s.Cfg.Errorf("connection: %s", s.redact(err.Error()))
		}
		return 0, s.Cfg.Errorf("query: %s", s.redact(err.Error()))
	}
	defer rows.Close()
	return scalers.OneNumber(s.Cfg, s.redact, scalers.QueryResult{Columns: len(rows.FieldDescriptions()), Next: rows.Next, Err: rows.Err,
		Scan: func() (float64, bool, error) {
			var f pgtype.Float8
			if err := rows.Scan(&f); err != nil {
				col := rows.FieldDescriptions()[0]
				return 0, false, fmt.Errorf("column %q is not a number (type oid %d)", col.Name, col.DataTypeOID)
			}
			return f.Float64, !f.Valid, nil
		},
		Close: func() error { rows.Close(); return rows.Err() }})
}
