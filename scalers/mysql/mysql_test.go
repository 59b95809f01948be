package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const rootDSN = "root@tcp(127.0.0.1:3306)/test"

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func admin(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", rootDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func exec(t testing.TB, db *sql.DB, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// table creates a unique work table and drops it at cleanup.
func table(t testing.TB) (string, *sql.DB) {
	t.Helper()
	db := admin(t)
	name := "tidal_my_" + suffix()
	exec(t, db, "CREATE TABLE "+name+" (id INT AUTO_INCREMENT PRIMARY KEY, done BOOLEAN NOT NULL DEFAULT FALSE, label VARCHAR(32))")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP TABLE IF EXISTS "+name)
	})
	return name, db
}

var suite = scalertest.SQLSuite{Type: Type, New: New, Target: "queryValue", Activation: "activationQueryValue",
	Auth: map[string]string{"connectionString": rootDSN},
	Table: func(t testing.TB) (string, func(string)) {
		tbl, db := table(t)
		return tbl, func(q string) { exec(t, db, q) }
	},
	Dialect: func(tbl string) []scalertest.QueryCase {
		return []scalertest.QueryCase{
			{Name: "decimal", Query: "SELECT CAST(2.5 AS DECIMAL(4,2))", Want: 2.5},
			{Name: "double", Query: "SELECT 0.25e0", Want: 0.25},
			{Name: "syntax error", Query: "SELEKT 1", WantErr: "query: Error 1064"},
			{Name: "missing table", Query: "SELECT count(*) FROM " + tbl + "_nope", WantErr: "doesn't exist"},
		}
	},
}

func TestSampleLoadAndDrain(t *testing.T) {
	suite.LoadAndDrain(t, []scalertest.LoadCase{
		{Name: "connectionString from authParams", Metric: "s1-mysql-test", Auth: map[string]string{"connectionString": rootDSN}},
		{Name: "connectionString from env with metricName", Metric: "s1-mysql-jobs",
			MD: map[string]string{"connectionStringFromEnv": "DSN", "metricName": "jobs"}, Env: map[string]string{"DSN": rootDSN}},
		{Name: "separate fields", Metric: "s1-mysql-test", MD: map[string]string{"host": "127.0.0.1", "port": "3306", "username": "root", "dbName": "test"}},
	})
}

func TestQueryResultShapes(t *testing.T) { suite.QueryShapes(t) }

func TestSharedHandle(t *testing.T) { suite.Shared(t) }

func TestMetadata(t *testing.T) {
	base := map[string]string{"query": "SELECT 1", "queryValue": "10"}
	fields := map[string]string{"host": "db", "port": "3306", "username": "u", "dbName": "d"}
	auth := map[string]string{"connectionString": rootDSN}
	scalertest.NewTable(t, Type, "my", New, func(s scalers.Scaler) Metadata { return s.(*Scaler).meta }, []scalertest.NewCase[Metadata]{
		{Name: "utilization metricType", MD: base, Auth: auth, MetricType: autoscalingv2.UtilizationMetricType, WantErr: "metricType: Utilization is only for cpu and memory"},
		{Name: "value metricType", MD: base, Auth: auth, MetricType: autoscalingv2.ValueMetricType,
			WantMeta: Metadata{ConnectionString: rootDSN, Query: "SELECT 1", QueryValue: 10}, WantMetric: "s0-mysql-test"},
		{Name: "defaults", MD: base, Auth: auth, WantMeta: Metadata{ConnectionString: rootDSN, Query: "SELECT 1", QueryValue: 10}, WantMetric: "s0-mysql-test"},
		{Name: "activation", MD: scalertest.Merge(base, map[string]string{"activationQueryValue": "0.5"}), Auth: auth,
			WantMeta: Metadata{ConnectionString: rootDSN, Query: "SELECT 1", QueryValue: 10, ActivationQueryValue: 0.5}, WantMetric: "s0-mysql-test"},
		{Name: "fields with password", MD: scalertest.Merge(base, fields), Auth: map[string]string{"password": "pw"},
			WantMeta: Metadata{Host: "db", Port: "3306", Username: "u", DBName: "d", Password: "pw", Query: "SELECT 1", QueryValue: 10}, WantMetric: "s0-mysql-d"},
		{Name: "fields from authParams", MD: base, Auth: fields,
			WantMeta: Metadata{Host: "db", Port: "3306", Username: "u", DBName: "d", Query: "SELECT 1", QueryValue: 10}, WantMetric: "s0-mysql-d"},
		{Name: "password from env", MD: scalertest.Merge(base, fields, map[string]string{"passwordFromEnv": "PW"}), Env: map[string]string{"PW": "envpw"},
			WantMeta: Metadata{Host: "db", Port: "3306", Username: "u", DBName: "d", Password: "envpw", Query: "SELECT 1", QueryValue: 10}, WantMetric: "s0-mysql-d"},
		{Name: "metricName", MD: scalertest.Merge(base, fields, map[string]string{"metricName": "My_Queue"}),
			WantMeta: Metadata{Host: "db", Port: "3306", Username: "u", DBName: "d", Query: "SELECT 1", QueryValue: 10, MetricName: "My_Queue"}, WantMetric: "s0-mysql-my-queue"},
		{Name: "missing query", MD: scalertest.Merge(base, map[string]string{"query": scalertest.Delete}), Auth: auth, WantErr: `"query"`},
		{Name: "empty query", MD: scalertest.Merge(base, map[string]string{"query": ""}), Auth: auth, WantErr: "query: must not be empty"},
		{Name: "missing queryValue", MD: scalertest.Merge(base, map[string]string{"queryValue": scalertest.Delete}), Auth: auth, WantErr: `"queryValue"`},
		{Name: "non-numeric queryValue", MD: scalertest.Merge(base, map[string]string{"queryValue": "ten"}), Auth: auth, WantErr: "queryValue: want a finite number"},
		{Name: "zero queryValue", MD: scalertest.Merge(base, map[string]string{"queryValue": "0"}), Auth: auth, WantErr: "queryValue: a metric target must be at least 0.001"},
		{Name: "negative queryValue", MD: scalertest.Merge(base, map[string]string{"queryValue": "-3"}), Auth: auth, WantErr: "queryValue: a metric target must be at least 0.001"},
		{Name: "non-numeric activation", MD: scalertest.Merge(base, map[string]string{"activationQueryValue": "x"}), Auth: auth, WantErr: "activationQueryValue: want a finite number"},
		{Name: "negative activation", MD: scalertest.Merge(base, map[string]string{"activationQueryValue": "-1"}), Auth: auth, WantErr: "activationQueryValue: must be >= 0"},
		{Name: "no host", MD: scalertest.Merge(base, fields, map[string]string{"host": scalertest.Delete}), WantErr: "host: required when connectionString is not given"},
		{Name: "no port", MD: scalertest.Merge(base, fields, map[string]string{"port": scalertest.Delete}), WantErr: "port: required"},
		{Name: "no username", MD: scalertest.Merge(base, fields, map[string]string{"username": scalertest.Delete}), WantErr: "username: required"},
		{Name: "no dbName", MD: scalertest.Merge(base, fields, map[string]string{"dbName": scalertest.Delete}), WantErr: "dbName: required"},
		{Name: "connectionString in plain metadata", MD: scalertest.Merge(base, map[string]string{"connectionString": rootDSN}), WantErr: "connectionString: must come from authParams"},
		{Name: "password in plain metadata", MD: scalertest.Merge(base, fields, map[string]string{"password": "pw"}), WantErr: "password: must come from authParams"},
		{Name: "connectionStringFromEnv missing variable", MD: scalertest.Merge(base, map[string]string{"connectionStringFromEnv": "NOPE"}), WantErr: "connectionStringFromEnv"},
		{Name: "bad DSN", MD: base, Auth: map[string]string{"connectionString": "root:pw@tcp(127.0.0.1:3306"}, WantErr: "connectionString: cannot parse the DSN"},
	})
}

// TestSecretsNeverLeak uses a real user with a password and logs in with a wrong one.
func TestSecretsNeverLeak(t *testing.T) {
	db := admin(t)
	user := "tidal_" + suffix()
	const rightPW = "Right-Pw-1234"
	exec(t, db, fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", user, rightPW))
	exec(t, db, fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'localhost' IDENTIFIED BY '%s'", user, rightPW))
	exec(t, db, fmt.Sprintf("GRANT SELECT ON test.* TO '%s'@'%%'", user))
	exec(t, db, fmt.Sprintf("GRANT SELECT ON test.* TO '%s'@'localhost'", user))
	t.Cleanup(func() {
		_, _ = db.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user))
		_, _ = db.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'localhost'", user))
	})

	// The right password works: the user is real.
	good := scalertest.New[scalers.Scaler](t, New, &scalers.TriggerConfig{Type: Type,
		Metadata:   map[string]string{"query": "SELECT 3", "queryValue": "1", "host": "127.0.0.1", "port": "3306", "username": user, "dbName": "test"},
		AuthParams: map[string]string{"password": rightPW}})
	if v, _ := scalertest.Sample(t, good, ""); v != 3 {
		t.Fatalf("right password: value %v, want 3", v)
	}

	const wrongPW = "Wrong-Pw-98765"
	scalertest.LeakTable(t, Type, "leak", New, wrongPW, "connection: Error 1045", []scalertest.LeakCase{
		{Name: "password in authParams", Cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "queryValue": "1", "host": "127.0.0.1", "port": "3306", "username": user, "dbName": "test"},
			AuthParams: map[string]string{"password": wrongPW}}},
		{Name: "password from env", Cfg: scalers.TriggerConfig{
			Metadata:    map[string]string{"query": "SELECT 1", "queryValue": "1", "host": "127.0.0.1", "port": "3306", "username": user, "dbName": "test", "passwordFromEnv": "PW"},
			ResolvedEnv: map[string]string{"PW": wrongPW}}},
		{Name: "DSN in authParams", Cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "queryValue": "1"},
			AuthParams: map[string]string{"connectionString": user + ":" + wrongPW + "@tcp(127.0.0.1:3306)/test"}}},
		{Name: "DSN from env", Cfg: scalers.TriggerConfig{
			Metadata:    map[string]string{"query": "SELECT 1", "queryValue": "1", "connectionStringFromEnv": "DSN"},
			ResolvedEnv: map[string]string{"DSN": user + ":" + wrongPW + "@tcp(127.0.0.1:3306)/test"}}},
		{Name: "unparsable DSN", Cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "queryValue": "1"},
			AuthParams: map[string]string{"connectionString": user + ":" + wrongPW + "@tcp(127.0.0.1:3306"}}},
	})
}

func TestUnreachable(t *testing.T) {
	s := scalertest.New[scalers.Scaler](t, New, &scalers.TriggerConfig{Type: Type, Name: "down",
		Metadata: map[string]string{"query": "SELECT 1", "queryValue": "1", "host": "127.0.0.1", "port": "1", "username": "root", "dbName": "test"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := s.Sample(ctx)
	if err == nil || !strings.Contains(err.Error(), `mysql trigger "down": connection:`) {
		t.Fatalf("err = %v, want a connection error naming the trigger", err)
	}
}

func FuzzParseMysqlMetadata(f *testing.F) {
	f.Add("SELECT 1", "5", "0", rootDSN, "", "", "")
	f.Add("", "x", "-1", "", "h", "3306", "d")
	f.Add("q", "1e308", "NaN", "u:p@tcp(h:1)/d?timeout=1s", "", "", "")
	f.Add("q", "1", "", "", "::1", "p", "db")
	f.Add("q", "1", "1", "u:p@tcp(h", "", "", "")
	f.Add("q", "1", "1", "u@/d?readTimeout=bogus", "", "", "")
	f.Fuzz(func(t *testing.T, query, target, activation, dsn, host, port, dbName string) {
		meta := map[string]string{"query": query, "queryValue": target, "activationQueryValue": activation,
			"host": host, "port": port, "username": "u", "dbName": dbName}
		auth := map[string]string{}
		if dsn != "" {
			auth["connectionString"] = dsn
		}
		scalertest.FuzzNew(t, New, &scalers.TriggerConfig{Type: Type, Metadata: meta, AuthParams: auth})
	})
}

func BenchmarkSample(b *testing.B) { suite.Benchmark(b, 3) }
