package scalers

import (
	"strings"
	"testing"
	"time"
)

func TestParseHTTPTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string
	}{
		{name: "milliseconds", in: "2500", want: 2500 * time.Millisecond},
		{name: "one millisecond", in: "1", want: time.Millisecond},
		{name: "an hour of milliseconds", in: "3600000", want: time.Hour},
		{name: "duration", in: "5s", want: 5 * time.Second},
		{name: "an hour", in: "1h", want: time.Hour},
		{name: "zero", in: "0", wantErr: "between 1 and 3600000"},
		{name: "negative", in: "-5", wantErr: "between 1 and 3600000"},
		{name: "too many milliseconds", in: "3600001", wantErr: "between 1 and 3600000"},
		{name: "negative duration", in: "-1s", wantErr: "duration such as 5s"},
		{name: "over an hour", in: "61m", wantErr: "at most 1h"},
		{name: "garbage", in: "soon", wantErr: `got "soon"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHTTPTimeout(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseHTTPTimeout(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseHTTPTimeout(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}
