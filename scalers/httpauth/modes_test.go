package httpauth

import (
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		md, auth  map[string]string
		wantErr   string
		wantModes string
		wantCreds Credentials
		wantCert  bool
		wantOAuth bool
	}{
		{name: "none"},
		{name: "bearer and tls", md: map[string]string{"authModes": "tls, bearer"}, auth: map[string]string{"bearerToken": "t", "cert": "c", "key": "k", "ca": "a"},
			wantModes: "bearer tls", wantCreds: Credentials{BearerToken: "t"}, wantCert: true},
		{name: "basic", md: map[string]string{"authModes": "basic"}, auth: map[string]string{"username": "u", "password": "p"},
			wantModes: "basic", wantCreds: Credentials{Username: "u", Password: "p"}},
		{name: "custom", md: map[string]string{"authModes": "custom"}, auth: map[string]string{"customAuthHeader": "X-K", "customAuthValue": "v"},
			wantModes: "custom", wantCreds: Credentials{Header: "X-K", HeaderValue: "v"}},
		{name: "oauth", md: map[string]string{"authModes": "oauth"}, auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c"},
			wantModes: "oauth", wantOAuth: true},
		{name: "unknown", md: map[string]string{"authModes": "kerberos"}, wantErr: "authModes"},
		{name: "exclusive", md: map[string]string{"authModes": "bearer,custom"}, auth: map[string]string{"bearerToken": "t", "customAuthHeader": "X", "customAuthValue": "v"},
			wantErr: "authModes: bearer, basic, custom and oauth cannot be combined"},
		{name: "bearer without token", md: map[string]string{"authModes": "bearer"}, wantErr: "bearerToken: required by authModes bearer"},
		{name: "basic without username", md: map[string]string{"authModes": "basic"}, wantErr: "username: required by authModes basic"},
		{name: "custom without value", md: map[string]string{"authModes": "custom"}, auth: map[string]string{"customAuthHeader": "X"}, wantErr: "customAuthHeader and customAuthValue"},
		{name: "tls without key", md: map[string]string{"authModes": "tls"}, auth: map[string]string{"cert": "c"}, wantErr: "cert and key: required by authModes tls"},
		{name: "oauth without client", md: map[string]string{"authModes": "oauth"}, auth: map[string]string{"oauthTokenURI": "https://idp/token"}, wantErr: "clientID: required by authModes oauth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var a Auth
			if err := scalers.Parse(&scalers.TriggerConfig{Type: "fake", Metadata: tc.md, AuthParams: tc.auth}, &a); err != nil {
				t.Fatal(err)
			}
			errs := a.Check()
			if tc.wantErr != "" {
				if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.wantErr) {
					t.Fatalf("Check = %v, want %q", errs, tc.wantErr)
				}
				return
			}
			if len(errs) != 0 {
				t.Fatalf("Check = %v", errs)
			}
			o := a.ClientOptions(true, time.Second)
			if got := strings.Join(a.Modes(), " "); got != tc.wantModes || a.Credentials() != tc.wantCreds ||
				!o.TLS.UnsafeSsl || o.TLS.CA != a.CA || (o.TLS.Cert != "") != tc.wantCert || (o.OAuth != nil) != tc.wantOAuth || o.Timeout != time.Second {
				t.Fatalf("modes %q credentials %+v options %+v", got, a.Credentials(), o)
			}
		})
	}
}
