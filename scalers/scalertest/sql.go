package scalertest

import (
	"context"
	"testing"

	"github.com/tidalscale/tidal/scalers"
)

// SQLSuite is what the tests every SQL query trigger (mysql, postgresql) runs against its local server need to
// know of it: its type and constructor, the names of its target and activation fields, the authParams that
// reach the server, a work table and the dialect's own result-shape cases.
type SQLSuite struct {
	Type string
	New  func(context.Context, *scalers.TriggerConfig) (scalers.Scaler, error)
	// Target and Activation are the metadata keys of the trigger's target and activation values.
	Target, Activation string
	// Auth holds the connection to the local server.
	Auth map[string]string
	// Table creates a fresh work table (id: an auto-incremented integer, done: a boolean defaulting to false,
	// label: text) dropped when t ends, and returns its name and a func that runs a statement on the server.
	Table func(t testing.TB) (name string, exec func(sql string))
	// Dialect returns the dialect's own QueryCases (number types, the server's error texts) against tbl.
	Dialect func(tbl string) []QueryCase
}

// LoadCase is one way of connecting a trigger for SQLSuite.LoadAndDrain: metadata, authParams and resolved
// environment added to the query, target and activation, and the metric name the trigger must serve.
type LoadCase struct {
	Name, Metric  string
	MD, Auth, Env map[string]string
}

// LoadAndDrain runs each case as a subtest: a trigger (index 1) counting the rows not done of a fresh table,
// with target 4 and activation 1, must serve one metric named Metric targeting 4, read 0 on the empty table, 1
// (inactive: not above the activation) after one row, 5 (active) after four more rows not done and one done,
// and 0 once every row is done.
func (s SQLSuite) LoadAndDrain(t *testing.T, cases []LoadCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			tbl, exec := s.Table(t)
			md := Merge(tc.MD, map[string]string{"query": "SELECT count(*) FROM " + tbl + " WHERE done = false", s.Target: "4", s.Activation: "1"})
			sc := New[scalers.Scaler](t, s.New, &scalers.TriggerConfig{Type: s.Type, Index: 1, Metadata: md, AuthParams: tc.Auth, ResolvedEnv: tc.Env})
			ExpectMetric(t, sc, tc.Metric, 4000)
			Steps(t, sc, []Step{
				{Name: "empty"},
				{Name: "one row (activation 1)", Do: func() { exec("INSERT INTO " + tbl + " (done) VALUES (false)") }, Value: 1},
				{Name: "loaded", Do: func() {
					exec("INSERT INTO " + tbl + " (done) VALUES (false), (false), (false), (false), (true)")
				}, Value: 5, Active: true},
				{Name: "drained", Do: func() { exec("UPDATE " + tbl + " SET done = true") }},
			})
		})
	}
}

// QueryShapes runs SQLCases and the Dialect's cases with QueryTable against a table of two labelled rows.
func (s SQLSuite) QueryShapes(t *testing.T) {
	t.Helper()
	tbl, exec := s.Table(t)
	exec("INSERT INTO " + tbl + " (label) VALUES ('a'), ('b')")
	QueryTable(t, s.New, func(query string) *scalers.TriggerConfig {
		return &scalers.TriggerConfig{Type: s.Type, Name: "jobs", Metadata: map[string]string{"query": query, s.Target: "1"}, AuthParams: s.Auth}
	}, append(SQLCases(tbl), s.Dialect(tbl)...))
}

// Shared checks with SharedClient that two triggers on the same server share one client.
func (s SQLSuite) Shared(t *testing.T) {
	t.Helper()
	shared := scalers.NewShared()
	SharedClient(t, s.New, shared, func(idx int) *scalers.TriggerConfig {
		return &scalers.TriggerConfig{Type: s.Type, Index: idx, Shared: shared,
			Metadata: map[string]string{"query": "SELECT 1", s.Target: "1"}, AuthParams: s.Auth}
	})
}

// Benchmark runs BenchmarkSample on a trigger counting the rows not done of a table of rows rows, a third of
// them done.
func (s SQLSuite) Benchmark(b *testing.B, rows int) {
	tbl, exec := s.Table(b)
	for i := 0; i < rows; i++ {
		done := "false"
		if i%3 == 2 {
			done = "true"
		}
		exec("INSERT INTO " + tbl + " (done) VALUES (" + done + ")")
	}
	BenchmarkSample(b, New[scalers.Scaler](b, s.New, &scalers.TriggerConfig{Type: s.Type,
		Metadata: map[string]string{"query": "SELECT count(*) FROM " + tbl + " WHERE done = false", s.Target: "5"}, AuthParams: s.Auth}))
}
