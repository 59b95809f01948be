package scalertest

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidalscale/tidal/scalers"
)

// AuthServers starts handler twice until t ends: on plain HTTP, and on TLS with p's server certificate, asking
// for (not requiring) a client certificate signed by p's CA.
func AuthServers(t testing.TB, p PKI, handler http.Handler) (plain, withTLS *httptest.Server) {
	t.Helper()
	plain = httptest.NewServer(handler)
	t.Cleanup(plain.Close)
	withTLS = httptest.NewUnstartedServer(handler)
	withTLS.TLS = &tls.Config{Certificates: []tls.Certificate{p.Server}, ClientCAs: p.Pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	withTLS.StartTLS()
	t.Cleanup(withTLS.Close)
	return plain, withTLS
}

// AuthCase is one row of AuthTable: the server URL, the metadata set over the trigger's base, the auth
// parameters, and WantErr, a text Sample's error must contain ("" wants the value).
type AuthCase struct {
	Name     string
	URL      string
	MD, Auth map[string]string
	WantErr  string
}

// AuthTable runs each case as a parallel subtest: it builds a scaler of triggerType with newFn from base(URL)
// with the case's metadata set over it and the case's auth parameters, samples it once and wants WantErr in
// the error, or the value want with the trigger active.
func AuthTable[R scalers.Scaler](t *testing.T, triggerType string, newFn func(context.Context, *scalers.TriggerConfig) (R, error),
	base func(url string) map[string]string, want float64, cases []AuthCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			s := New[scalers.Scaler](t, newFn, Config(triggerType, "", With(base(tc.URL), tc.MD), tc.Auth))
			v, active, err := First(s)
			if tc.WantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.WantErr) {
					t.Fatalf("Sample error = %v, want %q", err, tc.WantErr)
				}
				return
			}
			if err != nil || v != want || !active {
				t.Fatalf("Sample = (%v, %v, %v), want (%v, true, nil)", v, active, err, want)
			}
		})
	}
}
