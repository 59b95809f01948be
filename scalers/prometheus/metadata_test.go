package prometheus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"serverAddress": "http://prom:9090", "query": "sum(up)", "threshold": "10"}
	base := func(changes map[string]string) map[string]string { return scalertest.With(defaults, changes) }
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(nil), Check: func(t *testing.T, m Metadata) {
			if m.Threshold != 10 || m.ActivationThreshold != 0 || !m.IgnoreNullValues || m.UnsafeSsl || m.timeout != defaultTimeout ||
				m.queryURL.String() != "http://prom:9090/api/v1/query" || len(m.Modes()) != 0 {
				t.Errorf("defaults wrong: %+v url=%s", m, m.queryURL)
			}
		}},
		{Name: "every field", MD: base(map[string]string{
			"serverAddress": "https://thanos:10902/prefix/", "threshold": "2.5", "activationThreshold": "1.5", "namespace": "ns",
			"queryParameters": "a=1,b=2", "customHeaders": "X-A=1", "ignoreNullValues": "false", "unsafeSsl": "true",
			"timeout": "1500", "authModes": "tls,bearer",
		}), Auth: map[string]string{"bearerToken": "t", "cert": "c", "key": "k"}, Check: func(t *testing.T, m Metadata) {
			if m.Threshold != 2.5 || m.ActivationThreshold != 1.5 || m.Namespace != "ns" || m.QueryParameters["b"] != "2" ||
				m.CustomHeaders["X-A"] != "1" || m.IgnoreNullValues || !m.UnsafeSsl || m.timeout != 1500*time.Millisecond ||
				!m.Has("tls") || !m.Has("bearer") || m.queryURL.String() != "https://thanos:10902/prefix/api/v1/query" {
				t.Errorf("fields wrong: %+v url=%s", m, m.queryURL)
			}
		}},
		{Name: "timeout as duration", MD: base(map[string]string{"timeout": "5s"}), Check: func(t *testing.T, m Metadata) {
			if m.timeout != 5*time.Second {
				t.Errorf("timeout = %v", m.timeout)
			}
		}},
		{Name: "missing serverAddress", MD: base(map[string]string{"serverAddress": "<delete>"}), WantErr: "serverAddress"},
		{Name: "relative serverAddress", MD: base(map[string]string{"serverAddress": "prom:9090"}), WantErr: "serverAddress"},
		{Name: "bad scheme", MD: base(map[string]string{"serverAddress": "ftp://prom"}), WantErr: "serverAddress"},
		{Name: "unparsable serverAddress", MD: base(map[string]string{"serverAddress": "http://[::1"}), WantErr: "serverAddress"},
		{Name: "missing query", MD: base(map[string]string{"query": "<delete>"}), WantErr: "query"},
		{Name: "blank query", MD: base(map[string]string{"query": "  "}), WantErr: "query"},
		{Name: "missing threshold", MD: base(map[string]string{"threshold": "<delete>"}), WantErr: "threshold"},
		{Name: "non-numeric threshold", MD: base(map[string]string{"threshold": "AA"}), WantErr: "threshold"},
		{Name: "negative threshold", MD: base(map[string]string{"threshold": "-1"}), WantErr: "threshold"},
		{Name: "NaN threshold", MD: base(map[string]string{"threshold": "NaN"}), WantErr: "threshold"},
		{Name: "non-numeric activationThreshold", MD: base(map[string]string{"activationThreshold": "x"}), WantErr: "activationThreshold"},
		{Name: "bad ignoreNullValues", MD: base(map[string]string{"ignoreNullValues": "perhaps"}), WantErr: "ignoreNullValues"},
		{Name: "bad customHeaders", MD: base(map[string]string{"customHeaders": "novalue"}), WantErr: "customHeaders"},
		{Name: "bad header name", MD: base(map[string]string{"customHeaders": "a b=1"}), WantErr: "customHeaders"},
		{Name: "bad queryParameters", MD: base(map[string]string{"queryParameters": "x"}), WantErr: "queryParameters"},
		{Name: "bad timeout", MD: base(map[string]string{"timeout": "-5"}), WantErr: "timeout"},
		{Name: "unknown authMode", MD: base(map[string]string{"authModes": "kerberos"}), WantErr: "authModes"},
		{Name: "bearer and basic", MD: base(map[string]string{"authModes": "bearer,basic"}), Auth: map[string]string{"bearerToken": "t", "username": "u"}, WantErr: "cannot be combined"},
		{Name: "bearer without token", MD: base(map[string]string{"authModes": "bearer"}), WantErr: "bearerToken"},
		{Name: "basic without username", MD: base(map[string]string{"authModes": "basic"}), WantErr: "username"},
		{Name: "tls without key", MD: base(map[string]string{"authModes": "tls"}), Auth: map[string]string{"cert": "c"}, WantErr: "cert and key"},
		{Name: "oauth", MD: base(map[string]string{"authModes": "oauth"}),
			Auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "clientSecret": "s", "scope": "a, b", "endpointParams": "audience=x"},
			Check: func(t *testing.T, m Metadata) {
				if !m.Has(httpauth.ModeOAuth) || m.TokenURL != "https://idp/token" || m.ClientID != "c" || m.ClientSecret != "s" ||
					strings.Join(m.Scopes, " ") != "a b" || m.EndpointParams != "audience=x" {
					t.Errorf("oauth fields wrong: %+v", m.OAuth)
				}
			}},
		{Name: "oauth and bearer", MD: base(map[string]string{"authModes": "oauth,bearer"}),
			Auth: map[string]string{"bearerToken": "t", "oauthTokenURI": "https://idp/token", "clientID": "c"}, WantErr: "cannot be combined"},
		{Name: "oauth without clientID", MD: base(map[string]string{"authModes": "oauth"}), Auth: map[string]string{"oauthTokenURI": "https://idp/token"}, WantErr: "clientID: required by authModes oauth"},
		{Name: "oauth with bad endpointParams", MD: base(map[string]string{"authModes": "oauth"}),
			Auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "endpointParams": "grant_type=password"}, WantErr: "endpointParams"},
		{Name: "custom without value", MD: base(map[string]string{"authModes": "custom"}), Auth: map[string]string{"customAuthHeader": "X"}, WantErr: "customAuthValue"},
	})
}

func TestBadTLSMaterialIsABuildError(t *testing.T) {
	t.Parallel()
	cfg := &scalers.TriggerConfig{Type: TriggerType,
		Metadata:   map[string]string{"serverAddress": "https://p", "query": "up", "threshold": "1", "authModes": "tls"},
		AuthParams: map[string]string{"cert": "-----BEGIN CERTIFICATE-----\nsecretish\n", "key": "not-a-key-material", "ca": "nope"}}
	cfg.Normalize()
	_, err := New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "prometheus trigger") || !strings.Contains(err.Error(), "ca") {
		t.Fatalf("New error = %v, want one naming the trigger and the ca field", err)
	}
	if strings.Contains(err.Error(), "not-a-key-material") {
		t.Fatalf("error leaks the key: %v", err)
	}
}

func TestMetricSpecs(t *testing.T) {
	t.Parallel()
	s := newScaler(t, map[string]string{"serverAddress": "http://p:9090", "query": "up", "threshold": "2.5"}, nil)
	scalertest.ExpectMetric(t, s, "s0-prometheus", 2500)
}

func FuzzParsePrometheusMetadata(f *testing.F) {
	f.Add("http://prom:9090", "sum(up)", "10", "0", "a=1", "X-A=1", "true", "1000", "bearer")
	f.Add("", "", "x", "-1", "=", ",,=", "maybe", "-1", "tls,basic,custom")
	f.Add("http://[::1", " ", "NaN", "Inf", "a", "Host=x", "false", "1h1s", "bearer,basic")
	f.Add("https://u:p@h/p/", "q", "1e308", "1e-308", "k=v=w", "a b=c", "1", "0.5s", ",")
	f.Fuzz(func(t *testing.T, addr, query, threshold, activation, params, headers, ignoreNull, timeout, modes string) {
		cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{
			"serverAddress": addr, "query": query, "threshold": threshold, "activationThreshold": activation,
			"queryParameters": params, "customHeaders": headers, "ignoreNullValues": ignoreNull, "timeout": timeout,
			"authModes": modes,
		}, AuthParams: map[string]string{"bearerToken": "tok", "username": "u", "password": "p"}}
		// A request must always be buildable from parsed metadata.
		scalertest.Poke(t, New, cfg)
	})
}
