package scalertest

import (
	"context"
	"testing"

	"github.com/tidalscale/tidal/scalers"
)

// QueryCase is one row of a QueryTable: a query and either the value its one sample must have (Want) or a text
// the Sample error must contain (WantErr).
type QueryCase struct {
	Name, Query string
	Want        float64
	WantErr     string
}

// QueryTable runs each case as a subtest of a query scaler (mysql, postgresql, ...): it builds the scaler from
// cfg(case.Query) with newFn and samples it once. A case with WantErr must fail as SampleFails checks; any other
// must return one value equal to Want.
func QueryTable[R scalers.Scaler](t *testing.T, newFn func(context.Context, *scalers.TriggerConfig) (R, error), cfg func(query string) *scalers.TriggerConfig, cases []QueryCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			c := cfg(tc.Query)
			if tc.WantErr != "" {
				SampleFails(t, newFn, c, tc.WantErr)
				return
			}
			if v, _ := Sample(t, New[scalers.Scaler](t, newFn, c), ""); v != tc.Want {
				t.Errorf("value = %v, want %v", v, tc.Want)
			}
		})
	}
}

// SharedClient checks that two triggers built with newFn from cfg(0) and cfg(1), which must carry the same
// shared and the same connection, open one client in shared, that it stays open while either samples and is
// released when both are closed.
func SharedClient[R scalers.Scaler](t *testing.T, newFn func(context.Context, *scalers.TriggerConfig) (R, error), shared *scalers.Shared, cfg func(index int) *scalers.TriggerConfig) {
	t.Helper()
	a := New[scalers.Scaler](t, newFn, cfg(0))
	b := New[scalers.Scaler](t, newFn, cfg(1))
	if shared.Len() != 1 {
		t.Fatalf("shared clients = %d, want 1", shared.Len())
	}
	Sample(t, a, "")
	Sample(t, b, "")
	_ = a.Close(context.Background())
	if shared.Len() != 1 {
		t.Fatalf("after one close: %d clients, want 1", shared.Len())
	}
	Sample(t, b, "")
	_ = b.Close(context.Background())
	if shared.Len() != 0 {
		t.Fatalf("after both closed: %d clients, want 0", shared.Len())
	}
}

// SQLCases are the QueryCases every SQL query scaler (mysql, postgresql) must pass, whatever its dialect, against
// tbl: a table with an integer id, 1 and 2, and a text label on both rows. The dialect's own rows (number types,
// the server's error texts) are appended by the caller.
func SQLCases(tbl string) []QueryCase {
	return []QueryCase{
		{Name: "count", Query: "SELECT count(*) FROM " + tbl, Want: 2},
		{Name: "null is zero", Query: "SELECT sum(id) FROM " + tbl + " WHERE false", Want: 0},
		{Name: "first row wins", Query: "SELECT id FROM " + tbl + " ORDER BY id DESC", Want: 2},
		{Name: "text column", Query: "SELECT label FROM " + tbl + " LIMIT 1", WantErr: `query: column "label" is not a number`},
		{Name: "no row", Query: "SELECT id FROM " + tbl + " WHERE false", WantErr: "query: returned no rows"},
		{Name: "two columns", Query: "SELECT 1, 2", WantErr: "query: must return exactly one column, got 2"},
	}
}
