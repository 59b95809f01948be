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

func TestSampleLoadAndDrain(t *testing.T) {
	cases := []struct {
		name       string
		wantMetric string
		cfg        func(table string) *scalers.TriggerConfig
	}{
		{
			name:       "connectionString from authParams",
			wantMetric: "s1-mysql-test",
			cfg: func(table string) *scalers.TriggerConfig {
				return &scalers.TriggerConfig{Type: Type, Index: 1,
					Metadata:   map[string]string{"query": "SELECT count(*) FROM " + table + " WHERE done = false", "queryValue": "4", "activationQueryValue": "1"},
					AuthParams: map[string]string{"connectionString": rootDSN}}
			},
		},
		{
			name:       "connectionString from env with metricName",
			wantMetric: "s1-mysql-jobs",
			cfg: func(table string) *scalers.TriggerConfig {
				return &scalers.TriggerConfig{Type: Type, Index: 1,
					Metadata:    map[string]string{"query": "SELECT count(*) FROM " + table + " WHERE done = false", "queryValue": "4", "activationQueryValue": "1", "connectionStringFromEnv": "DSN", "metricName": "jobs"},
					ResolvedEnv: map[string]string{"DSN": rootDSN}}
			},
		},
		{
			name:       "separate fields",
			wantMetric: "s1-mysql-test",
			cfg: func(table string) *scalers.TriggerConfig {
				return &scalers.TriggerConfig{Type: Type, Index: 1,
					Metadata: map[string]string{"query": "SELECT count(*) FROM " + table + " WHERE done = false", "queryValue": "4", "activationQueryValue": "1",
						"host": "127.0.0.1", "port": "3306", "username": "root", "dbName": "test"}}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tbl, db := table(t)
			s := scalertest.New[scalers.Scaler](t, New, tc.cfg(tbl))
			scalertest.ExpectMetric(t, s, tc.wantMetric, 4000)
			scalertest.Steps(t, s, []scalertest.Step{
				{Name: "empty"},
				{Name: "one row (activation 1)", Do: func() { exec(t, db, "INSERT INTO "+tbl+" (done) VALUES (false)") }, Value: 1},
				{Name: "loaded", Do: func() {
					exec(t, db, "INSERT INTO "+tbl+" (done) VALUES (false), (false), (false), (false), (true)")
				}, Value: 5, Active: true},
				{Name: "drained", Do: func() { exec(t, db, "UPDATE "+tbl+" SET done = true") }},
			})
		})
	}
}

func TestQueryResultShapes(t *testing.T) {
	tbl, db := table(t)
	exec(t, db, "INSERT INTO "+tbl+" (label) VALUES ('a'), ('b')")
	scalertest.QueryTable(t, New, func(query string) *scalers.TriggerConfig {
		return &scalers.TriggerConfig{Type: Type, Name: "jobs",
			Metadata:   map[string]string{"query": query, "queryValue": "1"},
			AuthParams: map[string]string{"connectionString": rootDSN}}
	}, append(scalertest.SQLCases(tbl),
		scalertest.QueryCase{Name: "decimal", Query: "SELECT CAST(2.5 AS DECIMAL(4,2))", Want: 2.5},
		scalertest.QueryCase{Name: "double", Query: "SELECT 0.25e0", Want: 0.25},
		scalertest.QueryCase{Name: "syntax error", Query: "SELEKT 1", WantErr: "query: Error 1064"},
		scalertest.QueryCase{Name: "missing table", Query: "SELECT count(*) FROM " + tbl + "_nope", WantErr: "doesn't exist"},
	))
}

func TestSharedHandle(t *testing.T) {
	shared := scalers.NewShared()
	scalertest.SharedClient(t, New, shared, func(idx int) *scalers.TriggerConfig {
		return &scalers.TriggerConfig{Type: Type, Index: idx, Shared: shared,
			Metadata:   map[string]string{"query": "SELECT 1", "queryValue": "1"},
			AuthParams: map[string]string{"connectionString": rootDSN}}
	})
}

func TestMetadata(t *testing.T) {
	base := map[string]string{"query": "SELECT 1", "queryValue": "10"}
	fields := map[string]string{"host": "db", "port": "3306", "username": "u", "dbName": "d"}
	auth := map[string]string{"connectionString": rootDSN}
	cases := []struct {
		name       string
		meta       map[string]string
		auth       map[string]string
		env        map[string]string
		wantErr    string
		wantMeta   Metadata
		wantMetric string
		mt         autoscalingv2.MetricTargetType
	}{
		{name: "utilization metricType", meta: base, auth: auth, mt: autoscalingv2.UtilizationMetricType, wantErr: "metricType: Utilization is only for cpu and memory"},
		{name: "value metricType", meta: base, auth: auth, mt: autoscalingv2.ValueMetricType,
			wantMeta: Metadata{ConnectionString: rootDSN, Query: "SELECT 1", QueryValue: 10}, wantMetric: "s0-mysql-test"},
		{name: "defaults", meta: base, auth: auth, wantMeta: Metadata{ConnectionString: rootDSN, Query: "SELECT 1", QueryValue: 10}, wantMetric: "s0-mysql-test"},
		{name: "activation", meta: scalertest.Merge(base, map[string]string{"activationQueryValue": "0.5"}), auth: auth,
			wantMeta: Metadata{ConnectionString: rootDSN, Query: "SELECT 1", QueryValue: 10, ActivationQueryValue: 0.5}, wantMetric: "s0-mysql-test"},
		{name: "fields with password", meta: scalertest.Merge(base, fields), auth: map[string]string{"password": "pw"},
			wantMeta: Metadata{Host: "db", Port: "3306", Username: "u", DBName: "d", Password: "pw", Query: "SELECT 1", QueryValue: 10}, wantMetric: "s0-mysql-d"},
		{name: "fields from authParams", meta: base, auth: fields,
			wantMeta: Metadata{Host: "db", Port: "3306", Username: "u", DBName: "d", Query: "SELECT 1", QueryValue: 10}, wantMetric: "s0-mysql-d"},
		{name: "password from env", meta: scalertest.Merge(base, fields, map[string]string{"passwordFromEnv": "PW"}), env: map[string]string{"PW": "envpw"},
			wantMeta: Metadata{Host: "db", Port: "3306", Username: "u", DBName: "d", Password: "envpw", Query: "SELECT 1", QueryValue: 10}, wantMetric: "s0-mysql-d"},
		{name: "metricName", meta: scalertest.Merge(base, fields, map[string]string{"metricName": "My_Queue"}),
			wantMeta: Metadata{Host: "db", Port: "3306", Username: "u", DBName: "d", Query: "SELECT 1", QueryValue: 10, MetricName: "My_Queue"}, wantMetric: "s0-mysql-my-queue"},
		{name: "missing query", meta: scalertest.Merge(base, map[string]string{"query": scalertest.Delete}), auth: auth, wantErr: `"query"`},
		{name: "empty query", meta: scalertest.Merge(base, map[string]string{"query": ""}), auth: auth, wantErr: "query: must not be empty"},
		{name: "missing queryValue", meta: scalertest.Merge(base, map[string]string{"queryValue": scalertest.Delete}), auth: auth, wantErr: `"queryValue"`},
		{name: "non-numeric queryValue", meta: scalertest.Merge(base, map[string]string{"queryValue": "ten"}), auth: auth, wantErr: "queryValue: want a finite number"},
		{name: "zero queryValue", meta: scalertest.Merge(base, map[string]string{"queryValue": "0"}), auth: auth, wantErr: "queryValue: a metric target must be at least 0.001"},
		{name: "negative queryValue", meta: scalertest.Merge(base, map[string]string{"queryValue": "-3"}), auth: auth, wantErr: "queryValue: a metric target must be at least 0.001"},
		{name: "non-numeric activation", meta: scalertest.Merge(base, map[string]string{"activationQueryValue": "x"}), auth: auth, wantErr: "activationQueryValue: want a finite number"},
		{name: "negative activation", meta: scalertest.Merge(base, map[string]string{"activationQueryValue": "-1"}), auth: auth, wantErr: "activationQueryValue: must be >= 0"},
		{name: "no host", meta: scalertest.Merge(base, fields, map[string]string{"host": scalertest.Delete}), wantErr: "host: required when connectionString is not given"},
		{name: "no port", meta: scalertest.Merge(base, fields, map[string]string{"port": scalertest.Delete}), wantErr: "port: required"},
		{name: "no username", meta: scalertest.Merge(base, fields, map[string]string{"username": scalertest.Delete}), wantErr: "username: required"},
		{name: "no dbName", meta: scalertest.Merge(base, fields, map[string]string{"dbName": scalertest.Delete}), wantErr: "dbName: required"},
		{name: "connectionString in plain metadata", meta: scalertest.Merge(base, map[string]string{"connectionString": rootDSN}), wantErr: "connectionString: must come from authParams"},
		{name: "password in plain metadata", meta: scalertest.Merge(base, fields, map[string]string{"password": "pw"}), wantErr: "password: must come from authParams"},
		{name: "connectionStringFromEnv missing variable", meta: scalertest.Merge(base, map[string]string{"connectionStringFromEnv": "NOPE"}), wantErr: "connectionStringFromEnv"},
		{name: "bad DSN", meta: base, auth: map[string]string{"connectionString": "root:pw@tcp(127.0.0.1:3306"}, wantErr: "connectionString: cannot parse the DSN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &scalers.TriggerConfig{Type: Type, Name: "my", Metadata: tc.meta, AuthParams: tc.auth, ResolvedEnv: tc.env, MetricType: tc.mt}
			s, err := New(context.Background(), cfg)
			if tc.wantErr != "" {
				if err == nil {
					_ = s.Close(context.Background())
					t.Fatalf("New succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), `mysql trigger "my"`) || !strings.Contains(err.Error(), tc.wantErr) {
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
			spec := s.MetricSpecs()[0].External
			if spec.Metric.Name != tc.wantMetric {
				t.Errorf("metric = %q, want %q", spec.Metric.Name, tc.wantMetric)
			}
			wantType := tc.mt
			if wantType == "" {
				wantType = autoscalingv2.AverageValueMetricType
			}
			if spec.Target.Type != wantType {
				t.Errorf("target type = %s, want %s", spec.Target.Type, wantType)
			}
		})
	}
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
	cases := []struct {
		name string
		cfg  scalers.TriggerConfig
	}{
		{name: "password in authParams", cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "queryValue": "1", "host": "127.0.0.1", "port": "3306", "username": user, "dbName": "test"},
			AuthParams: map[string]string{"password": wrongPW}}},
		{name: "password from env", cfg: scalers.TriggerConfig{
			Metadata:    map[string]string{"query": "SELECT 1", "queryValue": "1", "host": "127.0.0.1", "port": "3306", "username": user, "dbName": "test", "passwordFromEnv": "PW"},
			ResolvedEnv: map[string]string{"PW": wrongPW}}},
		{name: "DSN in authParams", cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "queryValue": "1"},
			AuthParams: map[string]string{"connectionString": user + ":" + wrongPW + "@tcp(127.0.0.1:3306)/test"}}},
		{name: "DSN from env", cfg: scalers.TriggerConfig{
			Metadata:    map[string]string{"query": "SELECT 1", "queryValue": "1", "connectionStringFromEnv": "DSN"},
			ResolvedEnv: map[string]string{"DSN": user + ":" + wrongPW + "@tcp(127.0.0.1:3306)/test"}}},
		{name: "unparsable DSN", cfg: scalers.TriggerConfig{
			Metadata:   map[string]string{"query": "SELECT 1", "queryValue": "1"},
			AuthParams: map[string]string{"connectionString": user + ":" + wrongPW + "@tcp(127.0.0.1:3306"}}},
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
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, _, err = s.Sample(ctx)
				cancel()
				if err == nil {
					t.Fatal("Sample with a wrong password succeeded")
				}
				if !strings.Contains(err.Error(), "connection: Error 1045") {
					t.Errorf("error %q: want an access-denied connection error", err)
				}
				errs = append(errs, err)
			}
			for _, err := range errs {
				t.Logf("error: %v", err)
				if strings.Contains(err.Error(), wrongPW) || strings.Contains(fmt.Sprintf("%+v", err), wrongPW) {
					t.Errorf("error leaks the password: %v", err)
				}
				if !strings.Contains(err.Error(), `mysql trigger "leak"`) {
					t.Errorf("error %q does not name the trigger", err)
				}
			}
			if len(logs.All()) == 0 && s != nil {
				t.Error("expected a debug log entry for the failed query")
			}
			scalertest.AssertNoSecret(t, wrongPW, "", logs.All())
		})
	}
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
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := New(ctx, &scalers.TriggerConfig{Type: Type, Metadata: meta, AuthParams: auth})
		if err != nil {
			if !strings.Contains(err.Error(), "mysql trigger") {
				t.Fatalf("error %q does not name the trigger", err)
			}
			return
		}
		defer s.Close(context.Background())
		if len(s.MetricSpecs()) != 1 {
			t.Fatal("want one spec")
		}
	})
}

func BenchmarkSample(b *testing.B) {
	tbl, db := table(b)
	exec(b, db, "INSERT INTO "+tbl+" (done) VALUES (false), (false), (true)")
	s := scalertest.New[scalers.Scaler](b, New, &scalers.TriggerConfig{Type: Type,
		Metadata:   map[string]string{"query": "SELECT count(*) FROM " + tbl + " WHERE done = false", "queryValue": "5"},
		AuthParams: map[string]string{"connectionString": rootDSN}})
	scalertest.BenchmarkSample(b, s)
}
