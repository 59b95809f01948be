package postgresql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const adminConn = "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable"

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// table creates a unique work table and drops it at cleanup.
func table(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminConn)
	if err != nil {
		t.Fatalf("connect to local PostgreSQL: %v", err)
	}
	name := "tidal_pg_" + suffix()
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (id serial PRIMARY KEY, done boolean NOT NULL DEFAULT false, label text)", name)); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+name)
		_ = conn.Close(ctx)
	})
	return name, conn
}

func exec(t testing.TB, conn *pgx.Conn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestSampleLoadAndDrain(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(table string) *scalers.TriggerConfig
	}{
		{
			name: "connection from authParams",
			cfg: func(table string) *scalers.TriggerConfig {
				return &scalers.TriggerConfig{Type: Type, Index: 2,
					Metadata:   map[string]string{"query": "SELECT count(*) FROM " + table + " WHERE done = false", "targetQueryValue": "5", "activationTargetQueryValue": "2"},
					AuthParams: map[string]string{"connection": adminConn}}
			},
		},
		{
			name: "connection URL from env",
			cfg: func(table string) *scalers.TriggerConfig {
				return &scalers.TriggerConfig{Type: Type, Index: 2,
					Metadata:    map[string]string{"query": "SELECT count(*) FROM " + table + " WHERE done = false", "targetQueryValue": "5", "activationTargetQueryValue": "2", "connectionFromEnv": "PG_URL"},
					ResolvedEnv: map[string]string{"PG_URL": "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"}}
			},
		},
		{
			name: "separate fields",
			cfg: func(table string) *scalers.TriggerConfig {
				return &scalers.TriggerConfig{Type: Type, Index: 2,
					Metadata: map[string]string{"query": "SELECT count(*) FROM " + table + " WHERE done = false", "targetQueryValue": "5", "activationTargetQueryValue": "2",
						"host": "127.0.0.1", "port": "5432", "userName": "postgres", "dbName": "test", "sslmode": "disable"}}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tbl, conn := table(t)
			s := scalertest.New[scalers.Scaler](t, New, tc.cfg(tbl))
			scalertest.ExpectMetric(t, s, "s2-postgresql", 5000)
			scalertest.Steps(t, s, []scalertest.Step{
				{Name: "empty"},
				{Name: "two rows (activation 2)", Do: func() { exec(t, conn, "INSERT INTO "+tbl+" (done) VALUES (false), (false)") }, Value: 2},
				{Name: "loaded", Do: func() {
					exec(t, conn, "INSERT INTO "+tbl+" (done) SELECT false FROM generate_series(1, 5)")
					exec(t, conn, "INSERT INTO "+tbl+" (done) VALUES (true)")
				}, Value: 7, Active: true},
				{Name: "drained", Do: func() { exec(t, conn, "UPDATE "+tbl+" SET done = true") }},
			})
		})
	}
}

func TestQueryResultShapes(t *testing.T) {
	tbl, conn := table(t)
	exec(t, conn, "INSERT INTO "+tbl+" (label) VALUES ('a'), ('b')")
	scalertest.QueryTable(t, New, func(query string) *scalers.TriggerConfig {
		return &scalers.TriggerConfig{Type: Type, Name: "jobs",
			Metadata:   map[string]string{"query": query, "targetQueryValue": "1"},
			AuthParams: map[string]string{"connection": adminConn}}
	}, append(scalertest.SQLCases(tbl),
		scalertest.QueryCase{Name: "numeric", Query: "SELECT 2.5::numeric", Want: 2.5},
		scalertest.QueryCase{Name: "float", Query: "SELECT 0.25::float8", Want: 0.25},
		scalertest.QueryCase{Name: "syntax error", Query: "SELEKT 1", WantErr: "query: ERROR: syntax error"},
		scalertest.QueryCase{Name: "missing table", Query: "SELECT count(*) FROM " + tbl + "_nope", WantErr: "does not exist"},
	))
}

func TestSharedPool(t *testing.T) {
	shared := scalers.NewShared()
	scalertest.SharedClient(t, New, shared, func(idx int) *scalers.TriggerConfig {
		return &scalers.TriggerConfig{Type: Type, Index: idx, Shared: shared,
			Metadata:   map[string]string{"query": "SELECT 1", "targetQueryValue": "1"},
			AuthParams: map[string]string{"connection": adminConn}}
	})
}

func TestMetadata(t *testing.T) {
	base := map[string]string{"query": "SELECT 1", "targetQueryValue": "10"}
	fields := map[string]string{"host": "db", "port": "5432", "userName": "u", "dbName": "d", "sslmode": "require"}
	auth := map[string]string{"connection": adminConn}
	withFields := Metadata{Host: "db", Port: "5432", UserName: "u", DBName: "d", SSLMode: "require", Query: "SELECT 1", TargetQueryValue: 10}
	cases := []struct {
		name     string
		meta     map[string]string
		auth     map[string]string
		env      map[string]string
		wantErr  string
		wantMeta Metadata
		mt       autoscalingv2.MetricTargetType
	}{
		{name: "utilization metricType", meta: base, auth: auth, mt: autoscalingv2.UtilizationMetricType, wantErr: "metricType: Utilization is only for cpu and memory"},
		{name: "defaults", meta: base, auth: auth, wantMeta: Metadata{Connection: adminConn, Query: "SELECT 1", TargetQueryValue: 10}},
		{name: "activation", meta: scalertest.Merge(base, map[string]string{"activationTargetQueryValue": "2.5"}), auth: auth,
			wantMeta: Metadata{Connection: adminConn, Query: "SELECT 1", TargetQueryValue: 10, ActivationTargetQueryValue: 2.5}},
		{name: "fields with password", meta: scalertest.Merge(base, fields), auth: map[string]string{"password": "pw"},
			wantMeta: func() Metadata { m := withFields; m.Password = "pw"; return m }()},
		{name: "fields from authParams", meta: base, auth: fields, wantMeta: withFields},
		{name: "password from env", meta: scalertest.Merge(base, fields, map[string]string{"passwordFromEnv": "PGPW"}), env: map[string]string{"PGPW": "envpw"},
			wantMeta: func() Metadata { m := withFields; m.Password = "envpw"; return m }()},
		{name: "missing query", meta: scalertest.Merge(base, map[string]string{"query": scalertest.Delete}), auth: auth, wantErr: `"query"`},
		{name: "empty query", meta: scalertest.Merge(base, map[string]string{"query": " "}), auth: auth, wantErr: "query: must not be empty"},
		{name: "missing targetQueryValue", meta: scalertest.Merge(base, map[string]string{"targetQueryValue": scalertest.Delete}), auth: auth, wantErr: `"targetQueryValue"`},
		{name: "non-numeric targetQueryValue", meta: scalertest.Merge(base, map[string]string{"targetQueryValue": "ten"}), auth: auth, wantErr: "targetQueryValue: want a finite number"},
		{name: "zero targetQueryValue", meta: scalertest.Merge(base, map[string]string{"targetQueryValue": "0"}), auth: auth, wantErr: "targetQueryValue: a metric target must be at least 0.001"},
		{name: "negative targetQueryValue", meta: scalertest.Merge(base, map[string]string{"targetQueryValue": "-1"}), auth: auth, wantErr: "targetQueryValue: a metric target must be at least 0.001"},
		{name: "non-numeric activation", meta: scalertest.Merge(base, map[string]string{"activationTargetQueryValue": "x"}), auth: auth, wantErr: "activationTargetQueryValue: want a finite number"},
		{name: "negative activation", meta: scalertest.Merge(base, map[string]string{"activationTargetQueryValue": "-1"}), auth: auth, wantErr: "activationTargetQueryValue: must be >= 0"},
		{name: "no connection and no host", meta: scalertest.Merge(base, fields, map[string]string{"host": scalertest.Delete}), wantErr: "host: required when connection is not given"},
		{name: "no port", meta: scalertest.Merge(base, fields, map[string]string{"port": scalertest.Delete}), wantErr: "port: required"},
		{name: "no userName", meta: scalertest.Merge(base, fields, map[string]string{"userName": scalertest.Delete}), wantErr: "userName: required"},
		{name: "no dbName", meta: scalertest.Merge(base, fields, map[string]string{"dbName": scalertest.Delete}), wantErr: "dbName: required"},
		{name: "no sslmode", meta: scalertest.Merge(base, fields, map[string]string{"sslmode": scalertest.Delete}), wantErr: "sslmode: required"},
		{name: "connection in plain metadata", meta: scalertest.Merge(base, map[string]string{"connection": adminConn}), wantErr: "connection: must come from authParams"},
		{name: "password in plain metadata", meta: scalertest.Merge(base, fields, map[string]string{"password": "pw"}), wantErr: "password: must come from authParams"},
		{name: "connectionFromEnv missing variable", meta: scalertest.Merge(base, map[string]string{"connectionFromEnv": "NOPE"}), wantErr: "connectionFromEnv"},
		{name: "bad connection string", meta: base, auth: map[string]string{"connection": "postgres://u:pw@[::1"}, wantErr: "connection: cannot parse"},
		{name: "bad sslmode value", meta: scalertest.Merge(base, fields, map[string]string{"sslmode": "sometimes"}), wantErr: "connection: cannot parse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &scalers.TriggerConfig{Type: Type, Name: "pg", Metadata: tc.meta, AuthParams: tc.auth, ResolvedEnv: tc.env, MetricType: tc.mt}
			s, err := New(context.Background(), cfg)
			if tc.wantErr != "" {
				if err == nil {
					_ = s.Close(context.Background())
					t.Fatalf("New succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), `postgresql trigger "pg"`) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q: want it to name the trigger and contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close(context.Background())
			if got := s.(*Scaler).meta; got != tc.wantMeta {
				t.Errorf("meta = %+v\nwant  %+v", got, tc.wantMeta)
			}
			if got := s.MetricSpecs()[0].External.Metric.Name; got != "s0-postgresql" {
				t.Errorf("metric = %q, want s0-postgresql", got)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{name: "plain", in: "abc", want: "abc"},
		{name: "space", in: "a b", want: "'a b'"},
		{name: "quote and backslash", in: `it's\x`, want: `'it\'s\\x'`},
		{name: "empty", in: "", want: "''"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := quote(tc.in); got != tc.want {
				t.Errorf("quote(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestSecretsNeverLeak: the local server uses trust auth, so a wrong password cannot be forced; instead the
// password-bearing connection strings point at an unreachable port and every error and log entry is searched.
func TestSecretsNeverLeak(t *testing.T) {
	const pw = "Sup3r-Secret-PG-pw"
	cases := []struct {
		name string
		cfg  scalers.TriggerConfig
	}{
		{name: "URL connection in authParams", cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "targetQueryValue": "1"},
			AuthParams: map[string]string{"connection": "postgres://postgres:" + pw + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"}}},
		{name: "keyword connection from env", cfg: scalers.TriggerConfig{
			Metadata:    map[string]string{"query": "SELECT 1", "targetQueryValue": "1", "connectionFromEnv": "DB"},
			ResolvedEnv: map[string]string{"DB": "host=127.0.0.1 port=1 user=postgres dbname=test sslmode=disable password=" + pw}}},
		{name: "password from env with fields", cfg: scalers.TriggerConfig{
			Metadata: map[string]string{"query": "SELECT 1", "targetQueryValue": "1", "host": "127.0.0.1", "port": "1", "userName": "postgres",
				"dbName": "test", "sslmode": "disable", "passwordFromEnv": "PW"},
			ResolvedEnv: map[string]string{"PW": pw}}},
		{name: "password in authParams with fields", cfg: scalers.TriggerConfig{
			Metadata: map[string]string{"query": "SELECT 1", "targetQueryValue": "1", "host": "127.0.0.1", "port": "1", "userName": "postgres",
				"dbName": "test", "sslmode": "disable"},
			AuthParams: map[string]string{"password": pw}}},
		{name: "unparsable URL with password", cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "targetQueryValue": "1"},
			AuthParams: map[string]string{"connection": "postgres://postgres:" + pw + "@127.0.0.1:notaport/test"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := scalertest.ObservedLogger()
			cfg := tc.cfg
			cfg.Type, cfg.Name, cfg.Logger = Type, "leak", logger
			var errs []error
			s, err := New(context.Background(), &cfg)
			if err != nil {
				errs = append(errs, err)
			} else {
				defer s.Close(context.Background())
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, _, err = s.Sample(ctx)
				cancel()
				if err == nil {
					t.Fatal("Sample against port 1 succeeded")
				}
				errs = append(errs, err)
			}
			for _, err := range errs {
				t.Logf("error: %v", err)
				if strings.Contains(err.Error(), pw) || strings.Contains(fmt.Sprintf("%+v", err), pw) {
					t.Errorf("error leaks the password: %v", err)
				}
				if !strings.Contains(err.Error(), `postgresql trigger "leak"`) {
					t.Errorf("error %q does not name the trigger", err)
				}
			}
			scalertest.AssertNoSecret(t, pw, "", logs.All())
		})
	}
}

func FuzzParsePostgresqlMetadata(f *testing.F) {
	f.Add("SELECT 1", "5", "0", "host=127.0.0.1 dbname=test", "", "", "")
	f.Add("", "x", "-1", "", "h", "5432", "require")
	f.Add("q", "1e308", "NaN", "postgres://u:p@h:1/d", "", "", "")
	f.Add("q", "1", "", "", "h o'st", "p", "verify-full")
	f.Add("q", "1", "1", "postgres://[::1", "", "", "")
	f.Fuzz(func(t *testing.T, query, target, activation, conn, host, port, sslmode string) {
		meta := map[string]string{"query": query, "targetQueryValue": target, "activationTargetQueryValue": activation,
			"host": host, "port": port, "userName": "u", "dbName": "d", "sslmode": sslmode}
		auth := map[string]string{}
		if conn != "" {
			auth["connection"] = conn
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := New(ctx, &scalers.TriggerConfig{Type: Type, Metadata: meta, AuthParams: auth})
		if err != nil {
			if !strings.Contains(err.Error(), "postgresql trigger") {
				t.Fatalf("error %q does not name the trigger", err)
			}
			return
		}
		defer s.Close(context.Background())
		if specs := s.MetricSpecs(); len(specs) != 1 || specs[0].External.Target.Type != autoscalingv2.AverageValueMetricType {
			t.Fatalf("specs = %+v", specs)
		}
	})
}

func BenchmarkSample(b *testing.B) {
	tbl, conn := table(b)
	exec(b, conn, "INSERT INTO "+tbl+" (done) SELECT false FROM generate_series(1, 100)")
	s := scalertest.New[scalers.Scaler](b, New, &scalers.TriggerConfig{Type: Type,
		Metadata:   map[string]string{"query": "SELECT count(*) FROM " + tbl + " WHERE done = false", "targetQueryValue": "5"},
		AuthParams: map[string]string{"connection": adminConn}})
	scalertest.BenchmarkSample(b, s)
}
