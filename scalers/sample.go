package scalers

import (
	"time"
)

// CallTimeout bounds one Sample of a trigger that has no timeout setting of its own, when the caller's context has
// no earlier deadline.
const CallTimeout = 15 * time.Second

// QueryResult is the answer of a query that must return one row with one number (the SQL triggers), as
// OneNumber reads it from the driver's rows.
type QueryResult struct {
	// Columns is how many columns the result has.
	Columns int
	// Next advances to the row; Err is the error that ended the rows when there is none.
	Next func() bool
	Err  func() error
	// Scan reads the row's column; null is a SQL NULL (read as 0). Its error says why the column is not a number.
	Scan func() (v float64, null bool, err error)
	// Close closes the rows and returns the error reading them ended with.
	Close func() error
}

// OneNumber reads r's one row with one number. Errors name the query field; redact removes the trigger's secrets
// from the driver's messages.
func OneNumber(cfg *TriggerConfig, redact func(string) string, r QueryResult) (float64, error) {
	if r.Columns != 1 {
		return 0, cfg.Errorf("query: must return exactly one column, got %d", r.Columns)
	}
	if !r.Next() {
		if err := r.Err(); err != nil {
			return 0, cfg.Errorf("query: %s", redact(err.Error()))
		}
		return 0, cfg.Errorf("query: returned no rows, want one row with one number")
	}
	v, null, err := r.Scan()
	if err != nil {
		return 0, cfg.Errorf("query: %s", err.Error())
	}
	if err := r.Close(); err != nil {
		return 0, cfg.Errorf("query: %s", redact(err.Error()))
	}
	if null {
		return 0, nil
	}
	return v, nil
}
