package httpauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth/oauthtest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const testSecret = "s3cr3t-value"

func TestOAuthValidate(t *testing.T) {
	t.Parallel()
	good := OAuth{TokenURL: "https://idp.example/token", ClientID: "c", ClientSecret: testSecret}
	tests := []struct {
		name   string
		change func(*OAuth)
		want   []string
	}{
		{name: "valid", change: func(*OAuth) {}},
		{name: "no secret (public client or mTLS)", change: func(o *OAuth) { o.ClientSecret = "" }},
		{name: "missing token URL", change: func(o *OAuth) { o.TokenURL = "" }, want: []string{"oauthTokenURI: required by authModes oauth"}},
		{name: "relative token URL", change: func(o *OAuth) { o.TokenURL = "/token?secret=" + testSecret },
			want: []string{"oauthTokenURI: want an absolute http(s) URL"}},
		{name: "missing client ID", change: func(o *OAuth) { o.ClientID = "" }, want: []string{"clientID: required by authModes oauth"}},
		{name: "bad endpoint params", change: func(o *OAuth) { o.EndpointParams = "a=%zz" + testSecret },
			want: []string{"endpointParams: want URL-encoded parameters"}},
		{name: "endpoint params set grant_type", change: func(o *OAuth) { o.EndpointParams = "grant_type=password" },
			want: []string{"endpointParams: must not set grant_type"}},
		{name: "endpoint params set client_secret", change: func(o *OAuth) { o.EndpointParams = "client_secret=x" },
			want: []string{"endpointParams: must not set client_secret"}},
		{name: "scope twice", change: func(o *OAuth) { o.Scopes = []string{"a"}; o.EndpointParams = "scope=b" },
			want: []string{"endpointParams: must not set scope when scopes is set"}},
		{name: "scope only in params", change: func(o *OAuth) { o.EndpointParams = "scope=b" }},
		{name: "everything missing", change: func(o *OAuth) { *o = OAuth{} },
			want: []string{"oauthTokenURI: required", "clientID: required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.change(&o)
			errs := o.Validate("authModes oauth")
			if len(errs) != len(tc.want) {
				t.Fatalf("errors = %v, want %d", errs, len(tc.want))
			}
			for i, want := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), want) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i], want)
				}
				if strings.Contains(errs[i].Error(), testSecret) {
					t.Errorf("error %d repeats the secret: %q", i, errs[i])
				}
			}
		})
	}
}

func TestOAuthValidateNormalizesScopes(t *testing.T) {
	t.Parallel()
	o := OAuth{TokenURL: "http://idp/token", ClientID: "c", Scopes: []string{" read ", "", "write"}}
	if errs := o.Validate("authModes oauth"); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := strings.Join(o.Scopes, "|"); got != "read|write" {
		t.Errorf("scopes = %q, want read|write", got)
	}
}

// resource is a resource server behind idp's bearer check; it records the tokens it admitted.
func resource(t *testing.T, idp *oauthtest.Server) (url string, admitted func() []string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(idp.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		mu.Unlock()
	})))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

func validOAuth(t *testing.T, o OAuth) OAuth {
	t.Helper()
	if errs := o.Validate("authModes oauth"); len(errs) > 0 {
		t.Fatal(errs)
	}
	return o
}

// get sends an authorized GET to url and returns the status.
func get(t *testing.T, ts *TokenSource, url string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Authorize(req.Context(), req); err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestTokenSourceFetchesOnceAndRefreshes: many requests share one token; the request parameters follow RFC 6749
// 4.4.2; once the clock passes the token's expiry (less the refresh margin) a new token is fetched and used.
func TestTokenSourceFetchesOnceAndRefreshes(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t, "tidal", testSecret)
	idp.SetExpiresIn(300)
	api, admitted := resource(t, idp)
	clk := clocktesting.NewFakeClock(time.Now())
	ts, err := NewTokenSource(validOAuth(t, OAuth{TokenURL: idp.TokenURL(), ClientID: "tidal", ClientSecret: testSecret,
		Scopes: []string{"metrics.read", "metrics.list"}, EndpointParams: "audience=prometheus&resource=r1"}), TokenOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, err := get(t, ts, api); err != nil || code != http.StatusOK {
				t.Errorf("GET = %d, %v; want 200", code, err)
			}
		}()
	}
	wg.Wait()
	if n := idp.Fetches(); n != 1 {
		t.Fatalf("token fetches = %d after 10 requests, want 1", n)
	}
	form, basic := idp.LastForm()
	if form.Get("grant_type") != "client_credentials" || form.Get("scope") != "metrics.read metrics.list" ||
		form.Get("audience") != "prometheus" || form.Get("resource") != "r1" || !basic {
		t.Errorf("token request form %v (basic auth %v), want client_credentials, both scopes, the endpoint params, basic auth", form, basic)
	}

	clk.Step(300*time.Second - refreshBefore - time.Second) // still valid with margin to spare
	if code, err := get(t, ts, api); err != nil || code != http.StatusOK {
		t.Fatalf("GET = %d, %v", code, err)
	}
	if n := idp.Fetches(); n != 1 {
		t.Fatalf("token fetches = %d before the refresh margin, want 1", n)
	}
	clk.Step(2 * time.Second) // within refreshBefore of the expiry
	if code, err := get(t, ts, api); err != nil || code != http.StatusOK {
		t.Fatalf("GET after refresh = %d, %v", code, err)
	}
	if n := idp.Fetches(); n != 2 {
		t.Fatalf("token fetches = %d after the token came due, want 2", n)
	}
	seen := admitted()
	if len(seen) != 12 || seen[0] != "at-1" || seen[10] != "at-1" || seen[11] != "at-2" {
		t.Errorf("tokens the resource server saw = %v, want at-1 ×11 then at-2", seen)
	}
}

// TestTokenSourceClientSecretPost: an endpoint that refuses basic client authentication gets the credentials as
// form fields.
func TestTokenSourceClientSecretPost(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t, "tidal", testSecret)
	idp.RefuseBasicAuth()
	api, _ := resource(t, idp)
	ts, err := NewTokenSource(validOAuth(t, OAuth{TokenURL: idp.TokenURL(), ClientID: "tidal", ClientSecret: testSecret}), TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(t, ts, api); err != nil || code != http.StatusOK {
		t.Fatalf("GET = %d, %v", code, err)
	}
	if form, basic := idp.LastForm(); basic || form.Get("client_id") != "tidal" {
		t.Errorf("granted request used basic=%v, client_id=%q; want the form fields", basic, form.Get("client_id"))
	}
}

// TestTokenSourceErrors: a wrong secret and an endpoint that is down are clear errors naming the endpoint,
// without the secret in the error or the logs.
func TestTokenSourceErrors(t *testing.T) {
	t.Parallel()
	idp := oauthtest.New(t, "tidal", testSecret)
	down := oauthtest.New(t, "tidal", testSecret)
	downURL := down.TokenURL()
	down.Close()
	tests := []struct {
		name, tokenURL, secret string
		want                   []string
	}{
		{name: "wrong secret", tokenURL: idp.TokenURL(), secret: "wrong-" + testSecret,
			want: []string{"answered HTTP 401", "invalid_client", "check clientID and clientSecret"}},
		{name: "endpoint down", tokenURL: downURL, secret: testSecret, want: []string{"oauth2 token endpoint " + downURL, "connect"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := scalertest.ObservedLogger()
			ts, err := NewTokenSource(validOAuth(t, OAuth{TokenURL: tc.tokenURL, ClientID: "tidal", ClientSecret: tc.secret}),
				TokenOptions{Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ts.Token(context.Background())
			if err == nil {
				t.Fatal("Token succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to contain %q", err, w)
				}
			}
			scalertest.AssertNoSecret(t, testSecret, err.Error(), logs.All())
		})
	}
	if n := idp.Fetches(); n != 0 {
		t.Errorf("tokens issued = %d, want 0", n)
	}
}

// TestAcquireTokenSourceShares: triggers with the same endpoint, client and scopes share one token source (one
// token); another scope or secret gets a source of its own.
func TestAcquireTokenSourceShares(t *testing.T) {
	t.Parallel()
	shared := scalers.NewShared()
	o := validOAuth(t, OAuth{TokenURL: "http://idp.invalid/token", ClientID: "c", ClientSecret: "s", Scopes: []string{"a"}})
	a, relA, err := AcquireTokenSource(shared, o, TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, relB, err := AcquireTokenSource(shared, o, TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("same endpoint, client and scopes: two token sources, want one")
	}
	other := o
	other.Scopes = []string{"b"}
	c, relC, _ := AcquireTokenSource(shared, other, TokenOptions{})
	other = o
	other.ClientSecret = "s2"
	d, relD, _ := AcquireTokenSource(shared, other, TokenOptions{})
	if c == a || d == a || c == d {
		t.Error("another scope or secret shares a token source")
	}
	if shared.Len() != 3 {
		t.Errorf("shared entries = %d, want 3", shared.Len())
	}
	for _, rel := range []func() error{relA, relB, relC, relD} {
		if err := rel(); err != nil {
			t.Error(err)
		}
	}
	if shared.Len() != 0 {
		t.Errorf("shared entries after release = %d, want 0", shared.Len())
	}
}
