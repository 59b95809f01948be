package httpquery

import (
	"context"
	"errors"
	"fmt"
	"io"
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

func TestRequestJSON(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			_, _ = fmt.Fprintf(w, `{"method":%q,"header":%q,"auth":%q,"body":%q}`, r.Method, r.Header.Get("X-A"), r.Header.Get("Authorization"), body)
		case "/html":
			_, _ = w.Write([]byte("<html/>"))
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"bad query"}`))
		}
	}))
	t.Cleanup(srv.Close)
	var got struct{ Method, Header, Auth, Body string }
	_, err := Request{Service: "fake", Method: http.MethodPost, URL: srv.URL + "/echo", Body: []byte("q"), Header: map[string]string{"X-A": "1"},
		Prepare: func(req *http.Request) error { req.SetBasicAuth("u", "p"); return nil }}.JSON(context.Background(), srv.Client(), &got)
	if err != nil || got.Method != "POST" || got.Header != "1" || !strings.HasPrefix(got.Auth, "Basic ") || got.Body != "q" {
		t.Fatalf("echo: %+v, %v", got, err)
	}
	if _, err := (Request{Service: "fake", URL: srv.URL + "/echo"}).JSON(context.Background(), srv.Client(), &got); err != nil || got.Method != "GET" || got.Body != "" {
		t.Fatalf("GET by default: %+v, %v", got, err)
	}
	if _, err := (Request{Service: "fake", URL: srv.URL + "/html"}).JSON(context.Background(), srv.Client(), &got); err == nil || !strings.Contains(err.Error(), "decoding the fake response") {
		t.Fatalf("not JSON: %v", err)
	}
	body, err := Request{Service: "fake", URL: srv.URL + "/bad"}.JSON(context.Background(), srv.Client(), &got)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 400 || string(body) != `{"error":"bad query"}` {
		t.Fatalf("bad: (%q, %v), want the status error and the body", body, err)
	}
	refused := errors.New("no token")
	if _, err := (Request{Service: "fake", URL: srv.URL + "/echo", Prepare: func(*http.Request) error { return refused }}).JSON(context.Background(), srv.Client(), &got); !errors.Is(err, refused) {
		t.Fatalf("Prepare error: %v", err)
	}
	if _, err := (Request{Service: "fake", URL: "http://[::1"}).JSON(context.Background(), srv.Client(), &got); err == nil || !strings.Contains(err.Error(), "building the request") {
		t.Fatalf("bad URL: %v", err)
	}
}
