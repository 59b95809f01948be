package httpquery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDo(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(`{"v":1}`))
		default:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte("\n  slow down\nsecond line"))
		}
	}))
	t.Cleanup(srv.Close)
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+path+"?api_key=sekrit-key", nil)
		if err != nil {
			t.Fatal(err)
		}
		return Do(srv.Client(), req, "fake")
	}
	if body, err := get("/ok"); err != nil || string(body) != `{"v":1}` {
		t.Fatalf("ok: (%q, %v)", body, err)
	}
	body, err := get("/busy")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 429 || se.Message != "slow down" || se.Header("Retry-After") != "7" || !strings.Contains(string(body), "second line") {
		t.Fatalf("busy: (%q, %#v)", body, err)
	}
	if err.Error() != "fake returned HTTP 429: slow down" {
		t.Fatalf("message %q", err.Error())
	}
	srv.Close()
	_, err = get("/ok")
	if err == nil || strings.Contains(err.Error(), "sekrit-key") || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("down: %v, want a connection error without the query string", err)
	}
}

func TestFirstLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{in: "", n: 10, want: ""},
		{in: "one", n: 10, want: "one"},
		{in: "\n\n  two  \nthree", n: 10, want: "two"},
		{in: "abcdef", n: 3, want: "abc..."},
	} {
		if got := FirstLine(tc.in, tc.n); got != tc.want {
			t.Errorf("FirstLine(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
