package postgresql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

var suite = scalertest.SQLSuite{Type: Type, New: New, Target: "targetQueryValue", Activation: "activationTargetQueryValue",
	Auth: map[string]string{"connection": adminConn},
	Table: func(t testing.TB) (string, func(string)) {
		tbl, conn := table(t)
		return tbl, func(q string) { exec(t, conn, q) }
	},
	Dialect: func(tbl string) []scalertest.QueryCase {
		return []scalertest.QueryCase{
			{Name: "numeric", Query: "SELECT 2.5::numeric", Want: 2.5},
			{Name: "float", Query: "SELECT 0.25::float8", Want: 0.25},
			{Name: "syntax error", Query: "SELEKT 1", WantErr: "query: ERROR: syntax error"},
			{Name: "missing table", Query: "SELECT count(*) FROM " + tbl + "_nope", WantErr: "does not exist"},
		}
	},
}

func TestSampleLoadAndDrain(t *testing.T) {
	suite.LoadAndDrain(t, []scalertest.LoadCase{
		{Name: "connection from authParams", Metric: "s1-postgresql", Auth: map[string]string{"connection": adminConn}},
		{Name: "connection URL from env", Metric: "s1-postgresql",
			MD: map[string]string{"connectionFromEnv": "PG_URL"}, Env: map[string]string{"PG_URL": "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"}},
		{Name: "separate fields", Metric: "s1-postgresql",
			MD: map[string]string{"host": "127.0.0.1", "port": "5432", "userName": "postgres", "dbName": "test", "sslmode": "disable"}},
	})
}

func TestQueryResultShapes(t *testing.T) { suite.QueryShapes(t) }

func TestSharedPool(t *testing.T) { suite.Shared(t) }

func TestMetadata(t *testing.T) {
	base := map[string]string{"query": "SELECT 1", "targetQueryValue": "10"}
	fields := map[string]string{"host": "db", "port": "5432", "userName": "u", "dbName": "d", "sslmode": "require"}
	auth := map[string]string{"connection": adminConn}
	withFields := Metadata{Host: "db", Port: "5432", UserName: "u", DBName: "d", SSLMode: "require", Query: "SELECT 1", TargetQueryValue: 10}
	cases := []scalertest.NewCase[Metadata]{
		{Name: "utilization metricType", MD: base, Auth: auth, MetricType: autoscalingv2.UtilizationMetricType, WantErr: "metricType: Utilization is only for cpu and memory"},
		{Name: "defaults", MD: base, Auth: auth, WantMeta: Metadata{Connection: adminConn, Query: "SELECT 1", TargetQueryValue: 10}},
		{Name: "activation", MD: scalertest.Merge(base, map[string]string{"activationTargetQueryValue": "2.5"}), Auth: auth,
			WantMeta: Metadata{Connection: adminConn, Query: "SELECT 1", TargetQueryValue: 10, ActivationTargetQueryValue: 2.5}},
		{Name: "fields with password", MD: scalertest.Merge(base, fields), Auth: map[string]string{"password": "pw"},
			WantMeta: func() Metadata { m := withFields; m.Password = "pw"; return m }()},
		{Name: "fields from authParams", MD: base, Auth: fields, WantMeta: withFields},
		{Name: "password from env", MD: scalertest.Merge(base, fields, map[string]string{"passwordFromEnv": "PGPW"}), Env: map[string]string{"PGPW": "envpw"},
			WantMeta: func() Metadata { m := withFields; m.Password = "envpw"; return m }()},
		{Name: "missing query", MD: scalertest.Merge(base, map[string]string{"query": scalertest.Delete}), Auth: auth, WantErr: `"query"`},
		{Name: "empty query", MD: scalertest.Merge(base, map[string]string{"query": " "}), Auth: auth, WantErr: "query: must not be empty"},
		{Name: "missing targetQueryValue", MD: scalertest.Merge(base, map[string]string{"targetQueryValue": scalertest.Delete}), Auth: auth, WantErr: `"targetQueryValue"`},
		{Name: "non-numeric targetQueryValue", MD: scalertest.Merge(base, map[string]string{"targetQueryValue": "ten"}), Auth: auth, WantErr: "targetQueryValue: want a finite number"},
		{Name: "zero targetQueryValue", MD: scalertest.Merge(base, map[string]string{"targetQueryValue": "0"}), Auth: auth, WantErr: "targetQueryValue: a metric target must be at least 0.001"},
		{Name: "negative targetQueryValue", MD: scalertest.Merge(base, map[string]string{"targetQueryValue": "-1"}), Auth: auth, WantErr: "targetQueryValue: a metric target must be at least 0.001"},
		{Name: "non-numeric activation", MD: scalertest.Merge(base, map[string]string{"activationTargetQueryValue": "x"}), Auth: auth, WantErr: "activationTargetQueryValue: want a finite number"},
		{Name: "negative activation", MD: scalertest.Merge(base, map[string]string{"activationTargetQueryValue": "-1"}), Auth: auth, WantErr: "activationTargetQueryValue: must be >= 0"},
		{Name: "no connection and no host", MD: scalertest.Merge(base, fields, map[string]string{"host": scalertest.Delete}), WantErr: "host: required when connection is not given"},
		{Name: "no port", MD: scalertest.Merge(base, fields, map[string]string{"port": scalertest.Delete}), WantErr: "port: required"},
		{Name: "no userName", MD: scalertest.Merge(base, fields, map[string]string{"userName": scalertest.Delete}), WantErr: "userName: required"},
		{Name: "no dbName", MD: scalertest.Merge(base, fields, map[string]string{"dbName": scalertest.Delete}), WantErr: "dbName: required"},
		{Name: "no sslmode", MD: scalertest.Merge(base, fields, map[string]string{"sslmode": scalertest.Delete}), WantErr: "sslmode: required"},
		{Name: "connection in plain metadata", MD: scalertest.Merge(base, map[string]string{"connection": adminConn}), WantErr: "connection: must come from authParams"},
		{Name: "password in plain metadata", MD: scalertest.Merge(base, fields, map[string]string{"password": "pw"}), WantErr: "password: must come from authParams"},
		{Name: "connectionFromEnv missing variable", MD: scalertest.Merge(base, map[string]string{"connectionFromEnv": "NOPE"}), WantErr: "connectionFromEnv"},
		{Name: "bad connection string", MD: base, Auth: map[string]string{"connection": "postgres://u:pw@[::1"}, WantErr: "connection: cannot parse"},
		{Name: "bad sslmode value", MD: scalertest.Merge(base, fields, map[string]string{"sslmode": "sometimes"}), WantErr: "connection: cannot parse"},
	}
	for i := range cases {
		cases[i].WantMetric = "s0-postgresql"
	}
	scalertest.NewTable(t, Type, "pg", New, func(s scalers.Scaler) Metadata { return s.(*Scaler).meta }, cases)
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
	scalertest.LeakTable(t, Type, "leak", New, pw, "", []scalertest.LeakCase{
		{Name: "URL connection in authParams", Cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "targetQueryValue": "1"},
			AuthParams: map[string]string{"connection": "postgres://postgres:" + pw + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"}}},
		{Name: "keyword connection from env", Cfg: scalers.TriggerConfig{
			Metadata:    map[string]string{"query": "SELECT 1", "targetQueryValue": "1", "connectionFromEnv": "DB"},
			ResolvedEnv: map[string]string{"DB": "host=127.0.0.1 port=1 user=postgres dbname=test sslmode=disable password=" + pw}}},
		{Name: "password from env with fields", Cfg: scalers.TriggerConfig{
			Metadata: map[string]string{"query": "SELECT 1", "targetQueryValue": "1", "host": "127.0.0.1", "port": "1", "userName": "postgres",
				"dbName": "test", "sslmode": "disable", "passwordFromEnv": "PW"},
			ResolvedEnv: map[string]string{"PW": pw}}},
		{Name: "password in authParams with fields", Cfg: scalers.TriggerConfig{
			Metadata: map[string]string{"query": "SELECT 1", "targetQueryValue": "1", "host": "127.0.0.1", "port": "1", "userName": "postgres",
				"dbName": "test", "sslmode": "disable"},
			AuthParams: map[string]string{"password": pw}}},
		{Name: "unparsable URL with password", Cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "targetQueryValue": "1"},
			AuthParams: map[string]string{"connection": "postgres://postgres:" + pw + "@127.0.0.1:notaport/test"}}},
	})
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
		scalertest.FuzzNew(t, New, &scalers.TriggerConfig{Type: Type, Metadata: meta, AuthParams: auth})
	})
}

func BenchmarkSample(b *testing.B) { suite.Benchmark(b, 100) }
