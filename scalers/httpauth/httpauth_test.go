package httpauth

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
	"github.com/tidalscale/tidal/scalers/tlsauth"
)

func TestParseModes(t *testing.T) {
	t.Parallel()
	allowed := []string{"bearer", "basic", "tls", "custom"}
	tests := []struct {
		name     string
		list     string
		want     map[string]bool
		wantErrs []string
	}{
		{name: "empty", list: "", want: map[string]bool{}},
		{name: "one", list: "bearer", want: map[string]bool{"bearer": true}},
		{name: "spaces and blanks", list: " tls , ,basic,", want: map[string]bool{"tls": true, "basic": true}},
		{name: "repeated", list: "tls,tls", want: map[string]bool{"tls": true}},
		{name: "unknown", list: "bearer,oauth", want: map[string]bool{"bearer": true},
			wantErrs: []string{`authModes: want a comma-separated list of bearer, basic, tls, custom, got "oauth"`}},
		{name: "two unknown in order", list: "x, y", want: map[string]bool{},
			wantErrs: []string{`got "x"`, `got "y"`}},
		{name: "case matters", list: "Bearer", want: map[string]bool{}, wantErrs: []string{`got "Bearer"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := ParseModes("authModes", tc.list, allowed...)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("modes = %v, want %v", got, tc.want)
			}
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("errors = %v, want %d", errs, len(tc.wantErrs))
			}
			for i, want := range tc.wantErrs {
				if !strings.Contains(errs[i].Error(), want) || !strings.HasPrefix(errs[i].Error(), "authModes: ") {
					t.Errorf("error %d = %q, want it to name authModes and contain %q", i, errs[i], want)
				}
			}
		})
	}
}

// TestCredentialsApply sends requests to a real HTTP server and checks the headers it received.
func TestCredentialsApply(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name    string
		creds   Credentials
		preset  map[string]string
		want    map[string]string
		without []string
	}{
		{name: "none", without: []string{"Authorization", "X-Api-Key"}},
		{name: "bearer", creds: Credentials{BearerToken: "tok-1"}, want: map[string]string{"Authorization": "Bearer tok-1"}},
		{name: "basic", creds: Credentials{Username: "u", Password: "p"}, want: map[string]string{"Authorization": "Basic dTpw"}},
		{name: "basic without password", creds: Credentials{Username: "u"}, want: map[string]string{"Authorization": "Basic dTo="}},
		{name: "password alone sends nothing", creds: Credentials{Password: "p"}, without: []string{"Authorization"}},
		{name: "custom header", creds: Credentials{Header: "X-API-KEY", HeaderValue: "k-1"}, want: map[string]string{"X-Api-Key": "k-1"}},
		{name: "custom header replaces a preset one", creds: Credentials{Header: "X-Scope-OrgID", HeaderValue: "tenant-b"},
			preset: map[string]string{"X-Scope-OrgID": "tenant-a"}, want: map[string]string{"X-Scope-Orgid": "tenant-b"}},
		{name: "header and bearer", creds: Credentials{Header: "X-API-KEY", HeaderValue: "k-2", BearerToken: "tok-2"},
			want: map[string]string{"X-Api-Key": "k-2", "Authorization": "Bearer tok-2"}},
		{name: "bearer wins over a custom Authorization header", creds: Credentials{Header: "Authorization", HeaderValue: "Key k", BearerToken: "tok-3"},
			want: map[string]string{"Authorization": "Bearer tok-3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.preset {
				req.Header.Add(k, v)
			}
			tc.creds.Apply(req)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			h := <-got
			for k, v := range tc.want {
				if vals := h.Values(k); len(vals) != 1 || vals[0] != v {
					t.Errorf("header %s = %q, want exactly %q", k, vals, v)
				}
			}
			for _, k := range tc.without {
				if v := h.Get(k); v != "" {
					t.Errorf("header %s = %q, want none", k, v)
				}
			}
		})
	}
}

// TestTransportTLS: the transport trusts the ca, presents the client certificate to a server that asks for one,
// and fails against a server signed by another CA.
func TestTransportTLS(t *testing.T) {
	t.Parallel()
	p := scalertest.NewPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.Server}, ClientCAs: p.Pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tests := []struct {
		name       string
		opts       tlsauth.Options
		wantStatus int
		wantErr    string
	}{
		{name: "client certificate", opts: tlsauth.Options{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey}, wantStatus: http.StatusOK},
		{name: "ca only", opts: tlsauth.Options{CA: p.CA}, wantStatus: http.StatusUnauthorized},
		{name: "unsafeSsl", opts: tlsauth.Options{UnsafeSsl: true}, wantStatus: http.StatusUnauthorized},
		{name: "unknown CA", opts: tlsauth.Options{CA: scalertest.NewPKI(t).CA}, wantErr: "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTransport(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}

// TestAcquireTransport: triggers of one type with equal TLS options share a transport; another type or other
// options get their own; bad TLS input is an error naming the parameter and not quoting it.
func TestAcquireTransport(t *testing.T) {
	t.Parallel()
	p := scalertest.NewPKI(t)
	shared := scalers.NewShared()
	withCert := tlsauth.Options{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey}
	a, relA, err := AcquireTransport(shared, "prometheus", withCert)
	if err != nil {
		t.Fatal(err)
	}
	b, relB, err := AcquireTransport(shared, "prometheus", withCert)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || shared.Len() != 1 {
		t.Fatalf("equal options: same transport %v, %d open; want shared, 1", a == b, shared.Len())
	}
	c, relC, err := AcquireTransport(shared, "metrics-api", withCert)
	if err != nil {
		t.Fatal(err)
	}
	d, relD, err := AcquireTransport(shared, "prometheus", tlsauth.Options{CA: p.CA})
	if err != nil {
		t.Fatal(err)
	}
	if c == a || d == a || shared.Len() != 3 {
		t.Fatalf("other type or options must not share: %v %v, %d open; want 3", c == a, d == a, shared.Len())
	}
	for _, rel := range []func() error{relA, relB, relC, relD} {
		if err := rel(); err != nil {
			t.Fatal(err)
		}
	}
	if shared.Len() != 0 {
		t.Fatalf("%d transports open after every release, want 0", shared.Len())
	}
	const secret = "not-a-pem-secret-77"
	if _, _, err := AcquireTransport(shared, "prometheus", tlsauth.Options{CA: secret}); err == nil || !strings.Contains(err.Error(), "ca:") || strings.Contains(err.Error(), secret) {
		t.Fatalf("bad ca: err = %v, want an error naming ca without its value", err)
	}
	if shared.Len() != 0 {
		t.Fatalf("a failed open left %d transports, want 0", shared.Len())
	}
}
